#!/usr/bin/env python3
"""cpu_window: run bench_postgres and measure, from /proc, how much CPU the
PostgreSQL server (postmaster + backends + background workers) and the bench
process (encoder + pipeline) used during each catch-up (CQRS drain).

  python3 bench/postgres/cpu_window.py --data DATA_DIR --port PORT -- build/ci/bench/bench_postgres [flags]

(bench/postgres/run.sh does this.) The bench's stdout is passed through; its
stderr is passed through with each line's arrival time noted.
- Every 0.25 s the server's CPU seconds (benchlib.tree_cpu_seconds of the
  postmaster: its own, its reaped children's and its live descendants' utime +
  stime) and the bench process's are sampled.
- Every 0.2 s one psql session counts the rows of bench_pg_embeddings_progress
  (the catch-up's acked rows; function bench_pg_progress_count(), which run.sh
  creates): the first time it reaches the drained rows is the last ack.
- A line "catch-up (with index), run 1: COPY 0.10 s, Drain 21.3 s (4096 rows)[,
  Run 25.9 s, ...]" closes a catch-up: it started Run (or, from older binaries,
  Drain) seconds before the line; it ended at the last ack (Drain seconds after
  its start with a newer binary, the count above with an older one, whose
  Drain includes the finite source's wait for its next poll, up to 5 s).
CPU in a window is interpolated from the samples (error: at most a sample
period at each end).
"""
import argparse
import bisect
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import benchlib  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CATCHUP = re.compile(r"catch-up \((with|no) index\), run (\d+): COPY ([0-9.]+) s, "
                     r"Drain ([0-9.]+) s \((\d+) rows\)(?:, Run ([0-9.]+) s)?"
                     r"(?:, encoder ([0-9.]+) s in (\d+) batches)?")


class ProgressPoller:
    """Counts bench_pg_embeddings_progress rows every `period` s over one psql session."""

    def __init__(self, port, data, period=0.2):
        self.samples = []  # (t, count or -1)
        self.period = period
        self.proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts/pg.sh"), "psql", "--port", str(port), "--data", str(data),
             "--", "-X", "-A", "-t", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            bufsize=1)
        self.proc.stdin.write("SET lock_timeout = '100ms';\n")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            t = time.time()
            try:
                self.proc.stdin.write("SELECT bench_pg_progress_count();\nSELECT 'EOQ';\n")
                self.proc.stdin.flush()
                n = -1
                for line in self.proc.stdout:
                    line = line.strip()
                    if line == "EOQ":
                        break
                    if line.lstrip("-").isdigit():
                        n = int(line)
                else:
                    return  # psql exited
            except (OSError, ValueError):
                return
            self.samples.append((t, n))
            self.done.wait(self.period)

    def first_reaching(self, n, t0, t1):
        for t, c in self.samples:
            if t0 <= t <= t1 + 1 and c >= n:
                return t
        return None

    def stop(self):
        self.done.set()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.thread.join(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the server's data dir (postmaster.pid)")
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--period", type=float, default=0.25)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    pm = benchlib.postmaster_pid(a.data)
    cores = os.cpu_count()
    load0 = benchlib.loadavg()
    poller = ProgressPoller(a.port, a.data)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, bufsize=1)
    samples = []  # (t, server cpu s, bench cpu s)
    done = threading.Event()

    def sample():
        while not done.is_set():
            t = time.time()
            try:
                samples.append((t, benchlib.tree_cpu_seconds(pm), benchlib.cpu_seconds(proc.pid)))
            except OSError:
                pass
            done.wait(a.period)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    catchups = []
    for line in proc.stderr:
        t = time.time()
        sys.stderr.write(line)
        sys.stderr.flush()
        m = CATCHUP.search(line)
        if m:
            catchups.append((t, m))
    rc = proc.wait()
    time.sleep(a.period * 2)
    done.set()
    th.join()
    poller.stop()
    load1 = benchlib.loadavg()
    ts = [s[0] for s in samples]

    def at(t, k):
        i = bisect.bisect_left(ts, t)
        if i <= 0:
            return samples[0][k]
        if i >= len(samples):
            return samples[-1][k]
        (t0, *v0), (t1, *v1) = samples[i - 1], samples[i]
        return v0[k - 1] + (v1[k - 1] - v0[k - 1]) * (t - t0) / max(1e-9, t1 - t0)

    print(f"\nCatch-up windows: from Run() to the last ack; CPU from /proc ({cores} cores; load "
          f"average {load0} at the start, {load1} at the end):\n")
    print("| catch-up | rows | to the last ack, s | rows/s | how the end was found | "
          "PostgreSQL server CPU s | server cores (÷ window) | share of the "
          f"{cores} cores | bench process CPU s (encoder + pipeline) | bench cores | "
          f"idle of the {cores} cores |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t_line, m in catchups:
        name = f"{'HNSW maintained' if m.group(1) == 'with' else 'no index'}, run {m.group(2)}"
        drain, rows = float(m.group(4)), int(m.group(5))
        if m.group(6):  # a binary that reports Run and the last ack apart
            t0 = t_line - float(m.group(6))
            t1, how = t0 + drain, "the bench's last-ack time"
        else:
            t0 = t_line - drain
            t1 = poller.first_reaching(rows, t0, t_line)
            how = "progress rows counted every 0.2 s"
            if t1 is None:
                t1, how = t_line, "Run() returned (no count reached the rows)"
            t1 = min(t1, t_line)
        dur = max(1e-6, t1 - t0)
        srv = at(t1, 1) - at(t0, 1)
        bench = at(t1, 2) - at(t0, 2)
        print(f"| {name} | {rows} | {dur:.2f} | {rows / dur:.0f} | {how} | {srv:.1f} | "
              f"{srv / dur:.2f} | {srv / dur / cores:.0%} | {bench:.1f} | {bench / dur:.2f} | "
              f"{max(0.0, cores - (srv + bench) / dur):.2f} |")
    sys.exit(rc)


if __name__ == "__main__":
    main()
