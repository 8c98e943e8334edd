"""Helpers shared by the Python benchmarks in bench/ (standard library only).

    sys.path.insert(0, str(REPO / "bench"))
    import benchlib

- CPU time from /proc: cpu_seconds(pid) (one process, all its threads),
  tree_cpu_seconds(pid) (a process, its live descendants and the children it
  has reaped: e.g. a PostgreSQL postmaster and its backends), postmaster_pid().
- /metrics: parse_metrics(text) -> {(name, labels): value}; metric_sum(...).
- The peer: standalone_encoder(binary, texts_jsonl, when) runs `embedstream embed`
  and reads the encoder time it logs.
- The machine: loadavg(), busy_processes() (other benches, tests, compilers),
  wait_quiet() (before a measurement), python3 bench/benchlib.py quiet [--max-wait S].
"""
from __future__ import annotations

import os
import pathlib
import re
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def standalone_encoder(binary, texts_jsonl, when: str) -> dict:
    """`embedstream embed --input texts_jsonl`: {"when", "s" (its encoder time: model load
    and JSON excluded), "rate" (records/s), "wall", "load" (load average before -> after)}.
    Exits the bench when embed fails."""
    import subprocess
    load0, t0 = loadavg(), time.time()
    p = subprocess.run([str(binary), "embed", "--input", str(texts_jsonl)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.time() - t0
    m = re.search(rb"encoder time ([0-9.]+) s \(([0-9.]+) records/s\)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"embed failed: {p.stderr.decode()[-2000:]}")
    return {"when": when, "s": float(m.group(1)), "rate": float(m.group(2)), "wall": wall,
            "load": f"{load0} -> {loadavg()}"}


# ----------------------------------------------------------------- /proc CPU time
def _stat(pid: int) -> list:
    """/proc/<pid>/stat fields after the command name (field 3 = index 0)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), in seconds."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / TICK


def _children() -> "dict[int, list[int]]":
    kids: "dict[int, list[int]]" = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat(int(d))[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process tree: the root's utime + stime + cutime + cstime (the
    children it has reaped) plus utime + stime of every live descendant. For a
    PostgreSQL postmaster this is the server's whole work: backends (the HNSW
    insert runs in the backend of the writing connection), WAL writer,
    checkpointer, autovacuum, parallel workers. Take it before and after a window
    and subtract."""
    f = _stat(pid)
    total = sum(int(x) for x in f[11:15]) / TICK
    kids = _children()
    stack = list(kids.get(pid, []))
    while stack:
        p = stack.pop()
        try:
            total += cpu_seconds(p)
        except OSError:  # exited meanwhile (then counted in its parent's cutime, mostly)
            continue
        stack.extend(kids.get(p, []))
    return total


def postmaster_pid(data_dir) -> int:
    """The postmaster's pid from <data_dir>/postmaster.pid."""
    return int(pathlib.Path(data_dir, "postmaster.pid").read_text().split("\n", 1)[0])


# ----------------------------------------------------------------- /metrics
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> "dict[tuple, float]":
    """{(name, frozenset of (label, value)): value} for every sample line."""
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            continue
    return out


def metric_sum(parsed, name: str, **labels) -> "float | None":
    """The sum of the samples of `name` whose labels include `labels`; None if none."""
    want = set(labels.items())
    vals = [v for (n, ls), v in parsed.items() if n == name and want <= set(ls)]
    return sum(vals) if vals else None


def sink_writes(parsed, source: str) -> "dict[str, dict]":
    """Per sink of `source`: writes (batches), seconds (sum of write times), mean_ms."""
    out = {}
    for (n, ls), v in parsed.items():
        d = dict(ls)
        if d.get("source") != source or "sink" not in d:
            continue
        if n == "embedstream_sink_write_seconds_sum":
            out.setdefault(d["sink"], {})["seconds"] = v
        elif n == "embedstream_sink_write_seconds_count":
            out.setdefault(d["sink"], {})["writes"] = v
    for s in out.values():
        s["mean_ms"] = 1000 * s.get("seconds", 0) / s["writes"] if s.get("writes") else 0.0
    return out


def format_sink_writes(sw: "dict[str, dict]", span_s: "float | None" = None) -> str:
    parts = []
    for name, s in sorted(sw.items()):
        busy = f", {s.get('seconds', 0) / span_s:.0%} of the span" if span_s else ""
        parts.append(f"{name} {s.get('seconds', 0):.1f} s in {s.get('writes', 0):.0f} writes "
                     f"({s['mean_ms']:.1f} ms each{busy})")
    return "; ".join(parts) if parts else "(none)"


def wait_acked(svc, n: int, source: str = "kafka", timeout: float = 1800,
               period: float = 0.25) -> "float | None":
    """Poll serve's /stats until sources.<source>.acked >= n (every sink has every
    record, or its dead letter); the time.time() it was first seen, else None."""
    import json
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{svc.port}/stats", timeout=5) as r:
                src = json.loads(r.read()).get("sources", {}).get(source, {})
            if src.get("acked", 0) >= n:
                return time.time()
        except OSError:
            pass
        time.sleep(period)
    return None


def drain_rate(n: int, first_output_s: float, all_acked_s: float, embed_s: "float | None",
               batches: "float | None") -> "tuple[float, float]":
    """(records/s, span s) of a full-load drain: n records over the span from the
    start of the first batch's encode (the first output's timestamp minus one
    average batch's encoder time, from /metrics) to the moment every sink had every
    record. The standalone encoder's figure covers every batch, so this does too."""
    first_batch = (embed_s / batches) if embed_s and batches else 0.0
    span = all_acked_s - first_output_s + first_batch
    return n / span, span


# ----------------------------------------------------------------- the machine
def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


_BUSY = re.compile(r"embedstream serve|pytest|cc1plus|bench_postgres|bench_encoder|ctest")


def busy_processes(exclude_tree_of: int = os.getpid()) -> "list[str]":
    """Other people's work that would disturb a measurement: `embedstream serve`,
    pytest, ctest, compilers, other benches. Our own process tree is excluded."""
    kids = _children()
    mine, stack = set(), [exclude_tree_of]
    while stack:
        p = stack.pop()
        mine.add(p)
        stack.extend(kids.get(p, []))
    # and our ancestors (the shell that started us)
    p = exclude_tree_of
    while p > 1:
        mine.add(p)
        try:
            p = int(_stat(p)[1])
        except (OSError, IndexError, ValueError):
            break
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:
            continue
        if cmd and _BUSY.search(cmd) and "benchlib.py" not in cmd:
            out.append(f"{d} {cmd[:120]}")
    return out


def wait_quiet(max_wait: float = 600, load_below: float = 0.6, settle: float = 10,
               log=lambda s: print(s, file=sys.stderr, flush=True)) -> "tuple[bool, str]":
    """Wait until the 1-minute load average is below `load_below` and nobody else
    runs serve/pytest/compilers, for at most `max_wait` s. Returns (quiet, what was
    seen); a caller that goes on anyway must say that its run was disturbed."""
    deadline = time.time() + max_wait
    last = 0.0
    while True:
        load = float(open("/proc/loadavg").read().split()[0])
        busy = busy_processes()
        if load < load_below and not busy:
            time.sleep(settle)
            load = float(open("/proc/loadavg").read().split()[0])
            busy = busy_processes()
            if load < load_below and not busy:
                seen = f"quiet: load average {loadavg()}"
                log(f"[quiet] {seen}")
                return True, seen
        if time.time() >= deadline:
            seen = (f"NOT quiet after {max_wait:.0f} s: load average {loadavg()}"
                    + (f"; others running: {' | '.join(busy[:4])}" if busy else ""))
            log(f"[quiet] {seen}")
            return False, seen
        if time.time() - last > 60:
            log(f"[quiet] waiting: load average {loadavg()}"
                + (f", others running: {len(busy)} ({busy[0][:80]})" if busy else ""))
            last = time.time()
        time.sleep(5)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="wait for a quiet machine before a measurement")
    ap.add_argument("command", choices=["quiet", "busy"])
    ap.add_argument("--max-wait", type=float, default=600)
    ap.add_argument("--load-below", type=float, default=0.6)
    a = ap.parse_args()
    if a.command == "busy":
        print(loadavg())
        print("\n".join(busy_processes()))
        sys.exit(0)
    quiet, seen = wait_quiet(a.max_wait, a.load_below)
    print(seen)
    sys.exit(0 if quiet else 1)
