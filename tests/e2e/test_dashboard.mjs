// Browser test of the dashboard (GET /) against the real `embedstream serve`
// in its embedded mode (no Kafka): Debian's Chromium driven by playwright-core.
//
//   scripts/install_browser.sh          # once: chromium + tests/e2e/node_modules
//   node tests/e2e/test_dashboard.mjs   # or: ctest -R e2e_dashboard
//
// Environment: EMBEDSTREAM_BIN (default build/release/embedstream),
// EMBEDSTREAM_MODEL_DIR (default models/all-MiniLM-L6-v2), EMBEDSTREAM_CHROMIUM
// (default /usr/bin/chromium), EMBEDSTREAM_E2E_OUT (a folder: on failure the
// screenshot, page HTML and server log are written there), EMBEDSTREAM_TEST_PYTHON
// (default .cache/venv-test/bin/python: checks every response against
// docs/openapi.yaml), EMBEDSTREAM_OPENAPI_CHECK=0 (no such check).
//
// Chromium runs without its sandbox (chromiumSandbox: false, i.e.
// --no-sandbox): it refuses to start as root with one, and CI runs as root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.EMBEDSTREAM_BIN || path.join(REPO, 'build/release/embedstream');
const MODEL_DIR = process.env.EMBEDSTREAM_MODEL_DIR || path.join(REPO, 'models/all-MiniLM-L6-v2');
const CHROMIUM = process.env.EMBEDSTREAM_CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.EMBEDSTREAM_E2E_OUT || '';
// Every response the page and the test receive is checked against
// docs/openapi.yaml by tests/e2e/openapi_check.py (with this Python: ctest
// passes the test venv's) unless EMBEDSTREAM_OPENAPI_CHECK=0.
const PYTHON = process.env.EMBEDSTREAM_TEST_PYTHON || path.join(REPO, '.cache/venv-test/bin/python');
const OPENAPI_CHECK = process.env.EMBEDSTREAM_OPENAPI_CHECK !== '0';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One `embedstream serve` with its own port, data dir and log file.
class Service {
  constructor(extraArgs = []) {
    this.extraArgs = extraArgs;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-dashboard-'));
    this.logPath = path.join(this.dir, 'serve.log');
    this.exited = null;
  }

  async start() {
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const env = { ...process.env, EMBEDSTREAM_MODEL_DIR: MODEL_DIR };
    // Embedded mode: no broker from the environment.
    delete env.KAFKA_BOOTSTRAP_SERVERS;
    delete env.EMBEDSTREAM_AUTH_TOKEN;
    const log = fs.openSync(this.logPath, 'a');
    this.proc = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', String(this.port),
                            '--data-dir', path.join(this.dir, 'data'), ...this.extraArgs],
                      { env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.proc.on('exit', (code, signal) => { this.exited = { code, signal }; });
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(`serve exited (${JSON.stringify(this.exited)}):\n${this.tail()}`);
      }
      try {
        const r = await fetch(`${this.base}/ready`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) return;
      } catch { /* not listening yet */ }
      await sleep(200);
    }
    throw new Error(`serve not ready after 120 s:\n${this.tail()}`);
  }

  async api(method, p, body, token) {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(this.base + p, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const raw = Buffer.from(await r.arrayBuffer());
    this.record(method, p, r.status, Object.fromEntries(r.headers), raw);
    return { status: r.status, body: JSON.parse(raw.toString('utf8')) };
  }

  // Every response of this server the test sees, for checkOpenApi().
  record(method, target, status, headers, body) {
    (this.responses ||= []).push({ method, target, status, headers,
                                   body_base64: body === null ? null : body.toString('base64') });
  }

  tail(n = 40) {
    try {
      return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '';
    }
  }

  // SIGTERM (drain and exit 0), SIGKILL after 30 s. Null when it had
  // already exited (start() reported that).
  async stop() {
    if (!this.proc || this.exited) return null;
    this.proc.kill('SIGTERM');
    const deadline = Date.now() + 30_000;
    while (!this.exited && Date.now() < deadline) await sleep(100);
    if (!this.exited) {
      this.proc.kill('SIGKILL');
      while (!this.exited) await sleep(50);
    }
    return this.exited;
  }

  cleanup() { fs.rmSync(this.dir, { recursive: true, force: true }); }
}

// Starts serve (with `extraArgs`) and a browser page on it; registers the
// cleanup on `t`. Every console error and uncaught exception is recorded in
// `errors` (the test asserts it is empty), except those matching
// `ctx.allowConsole` while the test provokes an HTTP error on purpose
// (Chromium logs 4xx responses); so is any request to another origin.
async function openDashboard(t, extraArgs = []) {
  assert.ok(fs.existsSync(BIN), `${BIN} not built (scripts/build.sh)`);
  assert.ok(fs.existsSync(path.join(MODEL_DIR, 'config.json')),
            `no model in ${MODEL_DIR} (scripts/fetch_model.sh)`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing (scripts/install_browser.sh)`);

  const svc = new Service(extraArgs);
  const ctx = { svc, browser: null, page: null, errors: [], foreign: [], allowConsole: null };
  t.after(async () => {
    if (ctx.browser) await ctx.browser.close().catch(() => {});
    const exit = await svc.stop();
    svc.cleanup();
    // Graceful shutdown is part of the contract, and a crash here is a bug.
    if (exit && exit.code !== 0) {
      throw new Error(`serve exited with ${JSON.stringify(exit)} on SIGTERM`);
    }
  });

  await svc.start();
  ctx.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false });
  const page = await ctx.browser.newPage({ viewport: { width: 1400, height: 1000 } });
  ctx.page = page;
  page.setDefaultTimeout(30_000);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (ctx.allowConsole && ctx.allowConsole.test(text)) return;
    ctx.errors.push(text);
  });
  page.on('pageerror', (err) => ctx.errors.push(`pageerror: ${err.message}`));
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(svc.base) && !u.startsWith('data:')) ctx.foreign.push(u);
  });
  // What the page receives, for checkOpenApi() (a stream's body is not read).
  ctx.pending = [];
  page.on('response', (resp) => {
    if (!resp.url().startsWith(svc.base)) return;
    const headers = resp.headers();
    const target = resp.url().slice(svc.base.length) || '/';
    const streaming = (headers['content-type'] || '').startsWith('text/event-stream');
    ctx.pending.push((streaming ? Promise.resolve(null) : resp.body().catch(() => null)).then((body) =>
      svc.record(resp.request().method(), target, resp.status(), headers, body)));
  });
  return ctx;
}

// What every test ends with: no request to another origin, no console error,
// every response as docs/openapi.yaml says.
async function checkPageHealth(ctx) {
  await checkOpenApi(ctx);
  assert.deepEqual(ctx.foreign, [], 'requests to other origins');
  assert.deepEqual(ctx.errors, [], 'console errors');
}

// Every response the page and the test received, checked against
// docs/openapi.yaml (tests/e2e/openapi_check.py).
async function checkOpenApi(ctx) {
  if (!OPENAPI_CHECK) return;
  await Promise.all(ctx.pending);
  const responses = ctx.svc.responses || [];
  assert.ok(responses.length > 0, 'no responses recorded');
  const file = path.join(ctx.svc.dir, 'responses.jsonl');
  fs.writeFileSync(file, responses.map((r) => JSON.stringify(r)).join('\n') + '\n');
  assert.ok(fs.existsSync(PYTHON), `${PYTHON} missing (scripts/install_test_env.sh), or EMBEDSTREAM_OPENAPI_CHECK=0`);
  const r = spawnSync(PYTHON, [path.join(REPO, 'tests/e2e/openapi_check.py'), file], { encoding: 'utf8' });
  console.error(r.stdout.trim());
  assert.equal(r.status, 0, `responses not as docs/openapi.yaml says:\n${r.stderr}`);
}

// On failure: screenshot, page HTML and server log into $EMBEDSTREAM_E2E_OUT.
async function keepEvidence(ctx, name) {
  if (OUT && ctx.page) {
    fs.mkdirSync(OUT, { recursive: true });
    await ctx.page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true }).catch(() => {});
    fs.writeFileSync(path.join(OUT, `${name}.html`), await ctx.page.content().catch(() => ''));
    fs.copyFileSync(ctx.svc.logPath, path.join(OUT, `${name}-serve.log`));
    console.error(`artifacts in ${OUT}`);
  }
  console.error(`serve log:\n${ctx.svc.tail()}`);
}

// Provokes an HTTP error the page must show; Chromium's console line for
// that status is expected meanwhile.
async function expectingHttpError(ctx, status, fn) {
  ctx.allowConsole = new RegExp(`status of ${status}`);
  try {
    await fn();
    await sleep(300);  // let Chromium's console message for the response arrive
  } finally {
    ctx.allowConsole = null;
  }
}

test('dashboard: create, live events, status, messages, search', { timeout: 300_000 }, async (t) => {
  const ctx = await openDashboard(t);
  const { svc, page } = ctx;
  try {
    // --- the page -------------------------------------------------------
    const resp = await page.goto(`${svc.base}/`);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()['content-type'], /^text\/html/);
    assert.equal(await page.title(), 'embedstream');

    await page.waitForSelector('#conn[data-state="live"]');
    await page.waitForFunction(() => document.querySelector('#tile-model').dataset.value);
    const model = await page.getAttribute('#tile-model', 'data-value');
    assert.match(model, /MiniLM/i);
    assert.equal(await page.getAttribute('#tile-total', 'data-value'), '0');
    // /stats: whatever numbers it has are shown.
    await page.waitForSelector('#stats > div');

    // --- a distractor, through the API ----------------------------------
    const other = await svc.api('POST', '/messages', {
      text: 'Stock markets fell sharply on Tuesday after the central bank raised interest rates.',
      metadata: { user_id: 'someone-else' },
    });
    assert.equal(other.status, 202, JSON.stringify(other.body));

    // --- create a message through the form ------------------------------
    // Markup in the text must come back as text, never as elements.
    const text = 'The violin and the cello are string instruments <b id="injected">played</b> with a bow.';
    await page.fill('#create-text', text);
    await page.fill('#create-metadata', '{"user_id": "dash-e2e", "n": 1}');
    await page.click('#create-submit');
    await page.waitForSelector('#create-result[data-id]');
    const id = await page.getAttribute('#create-result', 'data-id');
    assert.ok(id && id.length > 0);
    assert.equal(await page.textContent('#create-id'), id);
    assert.equal(await page.inputValue('#create-text'), '', 'the form is cleared after a 202');

    // --- the live feed shows its whole lifecycle ------------------------
    const sel = (type) => `#events li[data-type="${type}"][data-id=${JSON.stringify(id)}]`;
    await page.waitForSelector(sel('message_completed'), { timeout: 60_000 });
    const feed = await page.$$eval(`#events li[data-id=${JSON.stringify(id)}]`, (lis) =>
      lis.map((li) => ({ type: li.dataset.type, text: li.textContent })));
    const types = feed.map((e) => e.type);
    assert.equal(types[0], 'message_completed', 'newest on top');
    assert.equal(types[types.length - 1], 'message_received', `feed: ${types.join(', ')}`);
    assert.ok(types.includes('message_processing'), `feed: ${types.join(', ')}`);
    const stages = feed.filter((e) => e.type === 'stage_completed').map((e) => e.text);
    assert.equal(stages.length, 3, `stages: ${stages.join(' | ')}`);
    for (const k of [1, 2, 3]) {
      assert.ok(stages.some((s) => s.includes(`${k}/3`)), `no stage ${k}/3 in ${stages.join(' | ')}`);
    }

    // --- status tiles and the messages table catch up --------------------
    await page.waitForFunction(() => {
      const v = Number(document.querySelector('#tile-embedded').dataset.value);
      return v >= 1;
    }, null, { timeout: 30_000 });
    const row = `#messages tr[data-id=${JSON.stringify(id)}]`;
    await page.waitForSelector(`${row}[data-status="embedded"]`, { timeout: 30_000 });
    assert.equal(await page.textContent(`${row} td.text`), text);
    assert.equal(await page.$('#injected'), null, 'message text was parsed as markup');
    assert.match(await page.textContent(`${row} td.meta`), /dash-e2e/);

    // --- search finds it first -------------------------------------------
    await page.fill('#search-query', 'string instruments in an orchestra');
    await page.click('#search-submit');
    await page.waitForSelector('#search-results li');
    const results = await page.$$eval('#search-results li', (lis) => lis.map((li) => ({
      id: li.dataset.id,
      score: Number(li.querySelector('.score').textContent),
      text: li.querySelector('.text').textContent,
    })));
    assert.ok(results.length >= 1);
    assert.equal(results[0].id, id, `results: ${JSON.stringify(results)}`);
    assert.equal(results[0].text, text);
    assert.ok(results[0].score > 0.2 && results[0].score <= 1.0001, `score ${results[0].score}`);

    // With a metadata filter only the matching message comes back.
    await page.fill('#search-filter', 'metadata.user_id=someone-else');
    await page.click('#search-submit');
    await page.waitForFunction((otherId) => {
      const lis = document.querySelectorAll('#search-results li');
      return lis.length === 1 && lis[0].dataset.id === otherId;
    }, other.body.id, { timeout: 30_000 });

    // --- a server error shows its `detail` --------------------------------
    // Over 64 KiB of metadata: 400 invalid_metadata from the server.
    await expectingHttpError(ctx, 400, async () => {
      await page.fill('#create-text', 'too much metadata');
      await page.fill('#create-metadata', JSON.stringify({ blob: 'x'.repeat(70 * 1024) }));
      await page.click('#create-submit');
      await page.waitForSelector('#create-result.err');
      assert.match(await page.textContent('#create-result'), /invalid_metadata/);
      assert.equal(await page.getAttribute('#create-result', 'data-id'), null);
    });

    await checkPageHealth(ctx);
  } catch (err) {
    await keepEvidence(ctx, 'dashboard-failure');
    throw err;
  }
});

test('dashboard: with auth.token the page, its reads and its stream need the token', { timeout: 300_000 }, async (t) => {
  const token = 'dash-e2e-secret';
  const ctx = await openDashboard(t, ['--auth-token', token]);
  const { svc, page } = ctx;
  try {
    // Without it even the page is refused (every route but /health and /ready).
    await expectingHttpError(ctx, 401, async () => {
      const refused = await page.goto(`${svc.base}/`);
      assert.equal(refused.status(), 401);
    });

    // Opened as /?access_token=: the page, its fetches and its EventSource carry it.
    await page.goto(`${svc.base}/?access_token=${token}`);
    await page.waitForSelector('#conn[data-state="live"]');
    assert.equal(await page.inputValue('#create-token'), token);
    await page.fill('#create-text', 'a message sent with the page token');
    await page.click('#create-submit');
    await page.waitForSelector('#create-result[data-id]');
    const id = await page.getAttribute('#create-result', 'data-id');
    await page.waitForSelector(`#events li[data-type="message_completed"][data-id=${JSON.stringify(id)}]`,
                               { timeout: 60_000 });
    assert.equal((await svc.api('GET', '/status', undefined, token)).body.total, 1);
    assert.equal((await svc.api('GET', '/status')).status, 401);

    // A wrong token in the form: the server's 401 is shown, nothing is stored.
    await expectingHttpError(ctx, 401, async () => {
      await page.fill('#create-token', 'wrong');
      await page.fill('#create-text', 'a message with a wrong token');
      await page.click('#create-submit');
      await page.waitForSelector('#create-result.err');
      assert.match(await page.textContent('#create-result'), /unauthorized/);
      await page.fill('#create-token', token);
    });
    assert.equal((await svc.api('GET', '/status', undefined, token)).body.total, 1);

    // The token survives a reload (localStorage) and is sent again.
    await page.reload();
    assert.equal(await page.inputValue('#create-token'), token);
    await page.fill('#create-text', 'a second message with the remembered token');
    await page.click('#create-submit');
    await page.waitForSelector('#create-result[data-id]');
    await page.waitForFunction(() => Number(document.querySelector('#tile-total').dataset.value) === 2);

    await checkPageHealth(ctx);
  } catch (err) {
    await keepEvidence(ctx, 'dashboard-token-failure');
    throw err;
  }
});

// The charts (GET /stats/series), the pipeline view and the dead letters.
// Messages flow through the API while the page is open: the charts must get
// points, draw lines (a canvas that changes) and move. A screenshot of the
// page is kept in $EMBEDSTREAM_E2E_OUT (build/<preset>/e2e-artifacts under
// ctest) as dashboard-charts.png, pass or fail (taken before the dead-letter
// seam below, so it shows only what the server sent).
test('dashboard: live charts move while messages flow; pipeline view; dead letters', { timeout: 300_000 }, async (t) => {
  const ctx = await openDashboard(t);
  const { svc, page } = ctx;
  const canvasImage = (id) => page.$eval(`#${id} canvas`, (c) => c.toDataURL('image/png'));
  const points = (id) => page.$eval(`#${id}`, (f) => Number(f.dataset.points || 0));
  let shot = null;
  const screenshot = async () => {
    if (!OUT || shot) return;
    fs.mkdirSync(OUT, { recursive: true });
    shot = path.join(OUT, 'dashboard-charts.png');
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`screenshot: ${shot}`);
  };
  try {
    await page.goto(`${svc.base}/`);
    await page.waitForSelector('#conn[data-state="live"]');
    // The first point within one interval (2 s) of the server's start.
    await page.waitForFunction(() => Number(document.querySelector('#chart-records').dataset.points) >= 1,
                               null, { timeout: 15_000 });
    const idle = await canvasImage('chart-records');

    // --- messages flow: about 12 s, 4 a second --------------------------
    const ids = [];
    const flowing = (async () => {
      for (let i = 0; i < 48; i++) {
        const r = await svc.api('POST', '/messages', { text: `chart message number ${i} about rivers and boats`, metadata: { user_id: 'charts' } });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        ids.push(r.body.id);
        await sleep(250);
      }
    })();
    // Lines appear: records/s, tokens/s and the latency get a maximum above 0.
    for (const id of ['chart-records', 'chart-tokens', 'chart-latency']) {
      await page.waitForFunction((fid) => Number(document.querySelector(`#${fid}`).dataset.max) > 0, id,
                                 { timeout: 30_000 });
    }
    const before = { img: await canvasImage('chart-records'), n: await points('chart-records') };
    assert.notEqual(before.img, idle, 'the records chart did not change when records came in');
    // ... and move: two more points later the picture is another one.
    await page.waitForFunction((n) => Number(document.querySelector('#chart-records').dataset.points) >= n + 2,
                               before.n, { timeout: 15_000 });
    const after = await canvasImage('chart-records');
    assert.notEqual(after, before.img, 'the records chart did not move');
    await flowing;

    // What the page drew is what the server kept.
    const series = await svc.api('GET', '/stats/series');
    assert.equal(series.status, 200);
    const stored = series.body.points.series.stored_per_s;
    const serverMax = Math.max(...stored);
    assert.ok(serverMax > 0, `stored_per_s: ${JSON.stringify(stored)}`);
    await page.waitForFunction(() => Number(document.querySelector('#chart-records').dataset.points) >= 1);
    const pageMax = Number(await page.getAttribute('#chart-records', 'data-max'));
    assert.ok(pageMax >= serverMax * 0.999, `page max ${pageMax} < server max ${serverMax}`);
    const ts = series.body.points.t;
    const totalStored = stored.reduce(
      (a, v, i) => a + v * (i === 0 ? series.body.interval_s : ts[i] - ts[i - 1]), 0);
    // Every message is counted once in the series (each rate times its
    // interval; the last few may still be on their way when it was read).
    assert.ok(totalStored <= 48 + 0.5 && totalStored >= 30, `series counts ${totalStored} stored records`);
    const latency = JSON.parse(await page.getAttribute('#chart-latency', 'data-last'));
    assert.ok('latency_p50_s' in latency && 'latency_p99_s' in latency, JSON.stringify(latency));
    // Without Kafka there is no lag line, only records in flight.
    const lagKeys = await page.$$eval('#chart-lag .key', (ks) => ks.map((k) => k.dataset.key));
    assert.deepEqual(lagKeys, ['inflight']);

    // --- the pipeline view ------------------------------------------------
    await page.waitForSelector('#pipeline-sources .node[data-name="http"][data-state="running"]');
    await page.waitForSelector('#pipeline-sinks .node[data-sink="store"][data-state="closed"]');
    await page.waitForSelector('#pipeline-sinks .node[data-sink="dlq"]');
    await page.waitForFunction(() => /read [1-9]/.test(
      document.querySelector('#pipeline-sources .node[data-name="http"] .nums').textContent));
    assert.match(await page.textContent('#pipeline-encoder'), /MiniLM/i);

    await screenshot();

    // --- dead letters: none here, and the page says so ---------------------
    assert.equal((await svc.api('GET', '/stats')).body.dead_letters.total, 0);
    assert.equal(await page.isVisible('#dlq-empty'), true);
    assert.match(await page.textContent('#dlq-total'), /^0 in total/);
    // A seam for the table itself (the embedded mode has no way to make a dead
    // letter): the real /stats with one dead letter added, whose detail holds
    // markup that must stay text.
    await page.route('**/stats', async (route) => {
      const real = await route.fetch();
      const body = await real.json();
      body.dead_letters = { total: 1, recent: [{ time: Date.now() / 1000, source: 'kafka', id: 'bad-1',
        reason: 'invalid_json', stage: 'decode', detail: '<img id="dlq-injected" src=x> not JSON' }] };
      await route.fulfill({ response: real, json: body });
    });
    await page.waitForSelector('#dlq tr[data-reason="invalid_json"]', { timeout: 10_000 });
    assert.match(await page.textContent('#dlq tr'), /bad-1.*invalid_json.*decode.*not JSON/s);
    assert.equal(await page.$('#dlq-injected'), null, 'a dead letter detail was parsed as markup');
    await page.unroute('**/stats');

    await checkPageHealth(ctx);
  } catch (err) {
    await keepEvidence(ctx, 'dashboard-charts-failure');
    throw err;
  } finally {
    await screenshot();  // when it failed before the one above
  }
});
