"""Observability (issue 17): deploy/prometheus (scrape config, alert rules and
their unit tests) and deploy/grafana (the dashboard) against promtool, a real
`embedstream serve` and a real Prometheus.

What these tests prove:

* `promtool check config`, `check rules` and `test rules` pass; every alert
  has a `for:`, a severity, a summary and a description, and alerts_test.yml
  has a case where it fires and one where it must not.
* Every PromQL expression of the dashboard (panel targets, the `instance`
  variable's query; Grafana's variables replaced by valid values) and of the
  rules parses: `promtool check rules` on them written as recording rules.
* Every metric those expressions use is in GET /metrics of a real serve with
  all three sources running (Kafka with good and bad records, the PostgreSQL
  source, HTTP ingest), a search done, an SSE client connected and the Kafka
  events bus on; every label value they select with `=` exists there too.
* A real Prometheus (Debian's, same package as promtool) scraping that serve
  evaluates every expression without error, and every dashboard query returns
  at least one series.

promtool and prometheus come from Debian's package `prometheus`
(scripts/deps/test.txt); scripts/test.sh installs it.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from kafka_broker import kafka_broker  # noqa: F401  (pytest fixture)
from pg_server import pg_server  # noqa: F401  (pytest fixture)
from service import Service, SseReader, free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "deploy" / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "embedstream.json"

# Grafana's variables in the dashboard's queries, replaced by values that make
# the query valid PromQL (the instance variable's "All" is ".*").
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
                "instance": ".*"}
# Metrics that are not embedstream's: Prometheus adds `up` to every target.
PROMETHEUS_OWN = {"up"}
# Target labels Prometheus adds; not in the scrape itself.
TARGET_LABELS = {"job", "instance"}

MISSING_PROMTOOL = ("promtool not found: it comes with Debian's package `prometheus`, listed in "
                    "scripts/deps/test.txt; install it with `scripts/install_deps.sh build test` "
                    "(scripts/test.sh does)")


# ---------------------------------------------------------------- promtool
def tool(name):
    path = shutil.which(name) or f"/usr/bin/{name}"
    return path if os.access(path, os.X_OK) else None


@pytest.fixture(scope="module")
def promtool():
    path = tool("promtool")
    if path is None:
        pytest.fail(MISSING_PROMTOOL)
    return path


def run_promtool(promtool, *args, ok=True):
    p = subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert p.returncode == 0, (f"promtool {' '.join(map(str, args))} exited {p.returncode}:\n"
                                   f"{p.stdout}\n{p.stderr}")
    return p


# ---------------------------------------------------------------- the expressions
def rule_blocks(path):
    """{alert name: its lines} of a rules file written like alerts.yml (`- alert:` items)."""
    blocks, name = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*- (?:alert|record):\s*(\S+)", line)
        if m:
            name = m.group(1)
            assert name not in blocks, f"{path.name}: {name} twice"
            blocks[name] = []
        elif name is not None:
            blocks[name].append(line)
    return blocks


def rule_exprs(path):
    """[(rule name, expr)]: `expr:` on one line (plain or quoted) or as a block scalar."""
    out = []
    for name, lines in rule_blocks(path).items():
        i = 0
        while i < len(lines):
            m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
            i += 1
            if not m:
                continue
            indent, rest = len(m.group(1)), m.group(2).strip()
            if rest in ("|", "|-", "|+", ">", ">-", ">+"):
                body = []
                while i < len(lines) and (not lines[i].strip()
                                          or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    body.append(lines[i].strip())
                    i += 1
                expr = "\n".join(body).strip()
            elif rest.startswith('"'):
                expr = json.loads(rest)
            elif rest.startswith("'"):
                expr = rest[1:-1].replace("''", "'")
            else:
                expr = rest
            out.append((name, expr))
    return out


def substitute(expr):
    """The query with Grafana's $var / ${var} replaced (GRAFANA_VARS); any other is an error."""
    def repl(m):
        name = m.group(1) or m.group(2)
        assert name in GRAFANA_VARS, f"unknown Grafana variable ${name} in {expr!r}"
        return GRAFANA_VARS[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def dashboard_panels(panels):
    for p in panels:
        yield p
        yield from dashboard_panels(p.get("panels", []))


def dashboard_exprs(dash):
    """[(where, PromQL)]: every target's expr, and the query variables' selectors."""
    out = []
    for p in dashboard_panels(dash["panels"]):
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} \"{p['title']}\" {t['refId']}", substitute(t["expr"])))
    for v in dash["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
        out.append((f"variable {v['name']}", substitute(m.group(1) if m else q)))
    return out


def load_dashboard():
    return json.loads(DASHBOARD.read_text())


def all_exprs():
    return ([(f"alerts.yml {name}", e) for name, e in rule_exprs(ALERTS)]
            + [(f"dashboard {where}", e) for where, e in dashboard_exprs(load_dashboard())])


STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}


def metric_names(expr):
    """The metric names a PromQL expression selects: what is left after strings, label
    matchers, grouping lists, ranges, functions/aggregations (a name before "(") and
    keywords are removed."""
    s = re.sub(r"#[^\n]*", " ", expr)
    s = re.sub(STRING, '""', s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(", "(", s)
    names = re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", s)
    return {n for n in names if n.lower() not in KEYWORDS}


def label_equalities(expr):
    """[(metric, label, value)] for every `label="value"` matcher of a selector."""
    out = []
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", re.sub(r"#[^\n]*", " ", expr)):
        for lm in re.finditer(r'(\w+)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2)):
            if lm.group(2) == "=":
                out.append((m.group(1), lm.group(1), json.loads(f'"{lm.group(3)}"')))
    return out


# ---------------------------------------------------------------- the exposition
def parse_exposition(text):
    """({family: type}, {sample name: [labels dict]}) of a Prometheus text exposition."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ.strip()
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+", line)
        assert m, f"not an exposition line: {line!r}"
        labels = {k: json.loads(f'"{v}"') for k, v in
                  re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")}
        samples.setdefault(m.group(1), []).append(labels)
    return types, samples


def family_of(name, types):
    """(family, type) a sample name belongs to: histograms export _bucket/_sum/_count,
    summaries _sum/_count; any other type only its own name."""
    if name in types:
        return name, types[name]
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in kinds:
            return base, types[base]
    return None, None


def missing_in_scrape(names, equalities, text):
    """What the expressions use that this scrape lacks: [(problem)], and a report line per name."""
    types, samples = parse_exposition(text)
    problems, report = [], []
    for name in sorted(names):
        if name in PROMETHEUS_OWN:
            report.append(f"  {name:58s} (Prometheus's own)")
            continue
        family, typ = family_of(name, types)
        if family is None:
            problems.append(f"{name}: no such family in /metrics")
        elif typ == "histogram" and family == name:
            problems.append(f"{name}: a histogram; select {name}_bucket, _sum or _count")
        elif not samples.get(name):
            problems.append(f"{name}: family {family} ({typ}) has no samples")
        else:
            what = f"{typ}" if family == name else f"{typ} {family}"
            report.append(f"  {name:58s} {what}, {len(samples[name])} series")
    for metric, label, value in sorted(set(equalities)):
        if metric in PROMETHEUS_OWN or label in TARGET_LABELS or not samples.get(metric):
            continue
        if not any(s.get(label) == value for s in samples[metric]):
            seen = sorted({s.get(label, "") for s in samples[metric]})
            problems.append(f'{metric}{{{label}="{value}"}}: no such series (values seen: {seen})')
    return problems, report


# ---------------------------------------------------------------- tests without serve
def test_promtool_checks_config_rules_and_rule_unit_tests(promtool):
    p = run_promtool(promtool, "check", "config", PROM_CONFIG)
    print("\n" + (p.stdout + p.stderr).strip())
    p = run_promtool(promtool, "check", "rules", ALERTS)
    print((p.stdout + p.stderr).strip())
    found = re.search(r"SUCCESS: (\d+) rules found", p.stdout + p.stderr)
    assert found, p.stdout + p.stderr
    # The line parser of this test sees every rule promtool sees.
    assert int(found.group(1)) == len(rule_exprs(ALERTS)) == len(rule_blocks(ALERTS))
    p = run_promtool(promtool, "test", "rules", ALERTS_TEST)
    print((p.stdout + p.stderr).strip())


def test_every_alert_is_complete_and_unit_tested():
    blocks = rule_blocks(ALERTS)
    assert len(blocks) >= 10, sorted(blocks)
    for name, lines in blocks.items():
        text = "\n".join(lines)
        assert re.search(r"^\s+for:\s*\d+[smh]\s*$", text, re.M), f"{name}: no for:"
        assert re.search(r"^\s+severity:\s*(critical|warning)\s*$", text, re.M), f"{name}: severity"
        for key in ("summary", "description"):
            assert re.search(rf"^\s+{key}:\s*\S", text, re.M), f"{name}: no {key} annotation"
    # alerts_test.yml: for each alert a case with exp_alerts: [] and one with alerts.
    cases, current = {}, None
    for line in ALERTS_TEST.read_text().splitlines():
        m = re.match(r"^\s*alertname:\s*(\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^\s*exp_alerts:\s*(\[\])?\s*$", line)
        if m and current:
            cases.setdefault(current, set()).add("quiet" if m.group(1) else "fires")
            current = None
    for name in blocks:
        assert cases.get(name) == {"quiet", "fires"}, \
            f"{name}: alerts_test.yml needs a firing and a not-firing case (has {cases.get(name)})"
    assert set(cases) <= set(blocks), f"tests of unknown alerts: {set(cases) - set(blocks)}"
    print(f"\n{len(blocks)} alerts, each with a firing and a not-firing case: {', '.join(blocks)}")


def test_dashboard_shape():
    dash = load_dashboard()
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert variables["instance"]["type"] == "query" and variables["instance"]["includeAll"]
    ids = [p["id"] for p in dashboard_panels(dash["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = []
    for p in dashboard_panels(dash["panels"]):
        if p["type"] == "row":
            continue
        titles.append(p["title"])
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], (p["title"], t["refId"])
            assert 'instance=~"$instance"' in t["expr"], (p["title"], t["refId"], t["expr"])
    # The panels issue 17 asks for.
    for want in ("records/s", "tokens/s", "End-to-end latency", "consumer lag", "Batch size",
                 "Encoder busy", "Sink write latency", "Circuit breaker", "Dead letters/s by reason",
                 "Search latency", "SSE clients", "Events bus delay", "Events bus lag"):
        assert any(want.lower() in t.lower() for t in titles), f"no panel about {want!r}"


def test_every_expression_parses(promtool, tmp_path):
    exprs = all_exprs()
    for where, e in exprs:
        assert "$" not in e, f"{where}: unsubstituted variable in {e!r}"

    def rules_file(items, path):
        lines = ["groups:", "  - name: parse_check", "    rules:"]
        for k, (_, e) in enumerate(items):
            lines += [f"      - record: check:expr_{k}", f"        expr: {json.dumps(e)}"]
        path.write_text("\n".join(lines) + "\n")
        return path

    p = run_promtool(promtool, "check", "rules", rules_file(exprs, tmp_path / "all.yml"), ok=False)
    if p.returncode != 0:  # name the expressions that do not parse
        bad = []
        for k, item in enumerate(exprs):
            one = run_promtool(promtool, "check", "rules",
                               rules_file([item], tmp_path / f"one-{k}.yml"), ok=False)
            if one.returncode != 0:
                bad.append(f"{item[0]}: {item[1]}\n    {(one.stdout + one.stderr).strip()}")
        pytest.fail("PromQL that does not parse:\n" + "\n".join(bad or [p.stdout + p.stderr]))
    print(f"\n{len(exprs)} expressions parse ({sum(w.startswith('alerts') for w, _ in exprs)} "
          f"from alerts.yml, the rest from the dashboard)")


def test_metric_name_extraction():
    """The helpers above on hand-made cases (a wrong extractor would pass anything)."""
    e = ('histogram_quantile(0.99, sum by (source, le) (rate(embedstream_x_bucket'
         '{instance=~".*", outcome="a b"}[1m]))) > 1 and on (source) embedstream_y'
         ' or vector(0) unless count(up{job="embedstream"}) offset 5m')
    assert metric_names(e) == {"embedstream_x_bucket", "embedstream_y", "up"}
    assert label_equalities(e) == [("embedstream_x_bucket", "outcome", "a b"),
                                   ("up", "job", "embedstream")]
    text = ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
            "# TYPE c_total counter\nc_total{k=\"v\"} 3\n# TYPE g gauge\n")
    problems, _ = missing_in_scrape({"h_bucket", "h_sum", "c_total", "up"},
                                    [("c_total", "k", "v")], text)
    assert problems == []
    problems, _ = missing_in_scrape({"h", "g", "nope", "c_total_count"},
                                    [("c_total", "k", "w")], text)
    assert len(problems) == 5, problems


# ---------------------------------------------------------------- against a real serve
def prometheus_query(port, expr, timeout=10):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b'{"status": "error", "error": "HTTP %d"}' % e.code)


class Prometheus:
    """Debian's prometheus on a free port, scraping one serve every second."""

    def __init__(self, binary, target, workdir):
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                       "scrape_configs:\n  - job_name: embedstream\n    static_configs:\n"
                       f"      - targets: ['{target}']\n")
        self.log_path = workdir / "prometheus.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_for(self, expr, ok, timeout, what):
        deadline, last = time.time() + timeout, None
        while time.time() < deadline:
            assert self.proc.poll() is None, f"prometheus exited: {self.tail()}"
            try:
                last = prometheus_query(self.port, expr, timeout=2)
                if ok(last):
                    return last
            except OSError as e:
                last = repr(e)
            time.sleep(0.5)
        raise AssertionError(f"prometheus: {what} not met in {timeout}s (last {last}): {self.tail()}")

    def tail(self, n=20):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def pg_prepare(run, pg, rows):
    pg.psql("DROP TABLE IF EXISTS message_embeddings, message_embeddings_progress, "
            "message_embeddings_dead_letters, message_embeddings_chunks, "
            "message_embeddings_deletes, text_messages CASCADE")
    p = run(["pg", "install"], env_extra=pg.env())
    assert p.returncode == 0, p.stderr.decode()
    values = ", ".join(f"(gen_random_uuid(), '{text}')" for text in rows)
    pg.psql(f"INSERT INTO text_messages (id, message) VALUES {values}")


def kafka_prepare(run, broker, tmp_path, n_good, bad):
    tag = uuid.uuid4().hex[:8]
    topics = {"input": f"text-messages-{tag}", "output": f"embeddings-{tag}",
              "group": f"embedstream-{tag}", "events": f"embedstream-events-{tag}"}
    for t in (topics["input"], topics["output"], topics["input"] + "-dlq"):
        broker.create_topic(t, 3)
    lines = [json.dumps({"id": str(uuid.uuid4()), "text": f"Observability record number {k}.",
                         "timestamp": time.time(), "source": "e2e"}).encode()
             for k in range(n_good)] + bad
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    p = run(["produce", topics["input"], "--raw", "--file", str(path), "-b", broker.bootstrap],
            timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    return topics


def wait(get, ok, timeout, what, svc):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        assert svc.proc.poll() is None, f"serve exited: {svc.tail()}"
        try:
            last = get()
            if ok(last):
                return last
        except (OSError, ValueError, KeyError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.5)
    raise AssertionError(f"{what}: not met in {timeout}s (last {last})\n{svc.tail()}")


def test_every_metric_used_exists_in_a_real_serve(run, binary, model_dir, kafka_broker,
                                                   pg_server, tmp_path):
    exprs = all_exprs()
    names = set().union(*(metric_names(e) for _, e in exprs))
    equalities = [eq for _, e in exprs for eq in label_equalities(e)]

    n_kafka, n_pg = 30, 5
    bad = [b'{"id": "bad-json", "text": ', b'{"id": "bad-missing"}', b'{"id": "bad-type", "text": 1}']
    pg_prepare(run, pg_server, [f"Row {k} of the observability table." for k in range(n_pg)])
    topics = kafka_prepare(run, kafka_broker, tmp_path, n_kafka, bad)
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"events:\n  topic: {topics['events']}\n")
    svc = Service(binary, model_dir,
                  ["--config", str(cfg), "--kafka-brokers", kafka_broker.bootstrap,
                   "--group", topics["group"], "--input-topic", topics["input"],
                   "--output-topic", topics["output"], "--batch-max-wait-ms", "50",
                   "--pg-source", "--events-bus", "kafka"],
                  tmp_path / "serve.log", env_extra=pg_server.env())
    sse = prom = None
    try:
        svc.wait_ready(timeout=120)
        sse = SseReader(svc.port)
        svc.post("/messages", {"message": "Metrics tell how the pipeline is doing.", "user_id": "u1"})

        def sources():
            return svc.stats()["sources"]
        wait(sources, lambda s: s["kafka"]["stored"] >= n_kafka and s["kafka"]["rejected"] >= len(bad)
             and s["postgres"]["stored"] >= n_pg and s["http"]["stored"] >= 1,
             180, "every source's records stored, the bad ones dead letters", svc)
        # The dashboard's dead-letter table (GET /stats dead_letters): the
        # three bad records, newest first, with their reasons.
        stats = svc.stats()
        dead = stats["dead_letters"]
        assert dead["total"] == sum(s["rejected"] for s in stats["sources"].values()), dead
        kafka_dead = [d for d in dead["recent"] if d["source"] == "kafka"]
        assert len(kafka_dead) == len(bad), dead
        assert {d["stage"] for d in kafka_dead} == {"decode"}, dead
        assert "invalid_json" in {d["reason"] for d in kafka_dead}, dead
        assert all(d["detail"] for d in kafka_dead), dead
        times = [d["time"] for d in dead["recent"]]
        assert times == sorted(times, reverse=True), dead
        # The dashboard's charts (GET /stats/series): with a Kafka source the
        # lag series has values, and the records stored show in the rates.
        series = wait(lambda: svc.get("/stats/series")[1], lambda b: any(
            v is not None for v in json.loads(b)["points"]["series"]["kafka_lag"]),
            30, "a kafka_lag point in /stats/series", svc)
        points = json.loads(series)["points"]
        assert len(points["t"]) >= 1 and max(points["series"]["stored_per_s"]) > 0, points
        assert max(points["series"]["dead_letters_per_s"]) > 0, points
        hits = svc.post("/embeddings/search", {"query": "pipeline metrics", "limit": 3})
        assert hits, hits

        def scrape_problems():
            return missing_in_scrape(names, equalities, svc.get("/metrics")[1])
        problems, report = wait(scrape_problems, lambda r: not r[0], 60,
                                "every metric of the dashboard and the rules in /metrics", svc)
        print(f"\n{len(names)} metric names used by the dashboard and alerts.yml, all in the "
              f"scrape of a serve with the kafka, postgres and http sources:")
        print("\n".join(report))
        checked = sorted({f'{m}{{{l}="{v}"}}' for m, l, v in equalities
                          if l not in TARGET_LABELS and m not in PROMETHEUS_OWN})
        print(f"{len(checked)} label values selected with =, all in the scrape:\n  "
              + "\n  ".join(checked))
        assert problems == []

        # A real Prometheus scraping this serve: every expression evaluates, and
        # every dashboard query has data.
        binary_prom = tool("prometheus")
        if binary_prom is None:
            pytest.fail(MISSING_PROMTOOL.replace("promtool", "prometheus", 1))
        prom = Prometheus(binary_prom, f"127.0.0.1:{svc.port}", tmp_path / "prometheus")
        prom.wait_for('count_over_time(up{job="embedstream"}[1m])',
                      lambda r: r.get("status") == "success" and r["data"]["result"]
                      and float(r["data"]["result"][0]["value"][1]) >= 5, 60, "5 scrapes of serve")
        svc.post("/embeddings/search", {"query": "one more search", "limit": 1})
        time.sleep(2)  # two more scrapes with that search in them
        empty, errors = [], []
        for where, e in exprs:
            r = prometheus_query(prom.port, e)
            if r.get("status") != "success":
                errors.append(f"{where}: {r.get('error')}\n    {e}")
            elif where.startswith("dashboard") and not r["data"]["result"]:
                empty.append(f"{where}: {e}")
        assert not errors, "Prometheus refused:\n" + "\n".join(errors)
        assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
        print(f"{len(exprs)} expressions evaluated by Prometheus; "
              f"{sum(w.startswith('dashboard') for w, _ in exprs)} dashboard queries all with data")
    finally:
        if prom is not None:
            prom.stop()
        if sse is not None:
            sse.close()
        assert svc.stop() == 0, svc.tail()
