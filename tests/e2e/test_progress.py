"""Progress of long work on stderr (issue 17): `embed` on a file, `gen`, and the
store's index rebuild show done/total, rate and ETA when stderr is a terminal
(a real pty via util-linux `script`, or EMBEDSTREAM_PROGRESS=1) and stay quiet
in pipes."""
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from service import Service


def lines_file(tmp_path, n):
    p = tmp_path / "in.txt"
    p.write_text("".join(f"line {i} about streaming vectors\n" for i in range(n)) + "\n")
    return p


def test_embed_progress_when_forced_and_quiet_in_a_pipe(run, tmp_path):
    src = lines_file(tmp_path, 300)  # 300 texts and an empty line
    forced = run(["embed", "-i", str(src)], env_extra={"EMBEDSTREAM_PROGRESS": "1"})
    assert forced.returncode == 0, forced.stderr.decode()
    err = forced.stderr.decode()
    assert re.search(r"^embed: 301/301 lines \(100\.0%\)  [\d,]+/s  in \d+s$", err, re.M), err
    assert len(forced.stdout.decode().splitlines()) == 300  # stdout untouched
    piped = run(["embed", "-i", str(src)])
    assert piped.returncode == 0
    assert "embed: " not in piped.stderr.decode()
    assert len(piped.stdout.decode().splitlines()) == 300


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux script(1) is missing")
def test_gen_progress_on_a_real_terminal_redraws_one_line(binary, tmp_path):
    out = tmp_path / "events.jsonl"
    # script(1) runs the command on a pseudo-terminal: stderr is a tty there.
    cmd = f"{binary} gen ecommerce --count 20000 --output {out}"
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=120,
                       env={**os.environ, "EMBEDSTREAM_PROGRESS": ""})
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    tty = r.stdout.decode(errors="replace")
    assert "\r" in tty and "\x1b[K" in tty, repr(tty[-300:])
    assert re.search(r"gen: 20,000/20,000 events \(100\.0%\)", tty), repr(tty[-300:])
    assert len(out.read_text().splitlines()) == 20000
    # The same command in a pipe: no progress at all.
    piped = subprocess.run([str(binary), "gen", "ecommerce", "--count", "2000", "--output",
                            str(out)], capture_output=True, timeout=120)
    assert piped.returncode == 0
    assert not re.search(r"gen: [\d,]+/[\d,]+ events \(", piped.stderr.decode())
    assert "gen: 2000 events to" in piped.stderr.decode()  # the summary line stays


def test_store_index_rebuild_shows_progress(binary, model_dir, tmp_path):
    data = tmp_path / "store"
    svc = Service(binary, model_dir, ["--data-dir", str(data)], tmp_path / "a.log")
    svc.wait_ready()
    for i in range(40):
        svc.post("/messages", {"id": f"m{i}", "message": f"message {i} about vectors"})
    deadline = time.time() + 60
    while svc.stats()["store"]["embedded"] < 40 and time.time() < deadline:
        time.sleep(0.1)
    assert svc.stop() == 0
    for name in ("index.hnsw", "index.meta"):
        (data / name).unlink()  # lost: the index is rebuilt from SQLite
    again = Service(binary, model_dir, ["--data-dir", str(data)], tmp_path / "b.log",
                    env_extra={"EMBEDSTREAM_PROGRESS": "1"})
    again.wait_ready()
    assert again.stop() == 0
    log = pathlib.Path(tmp_path / "b.log").read_text()
    assert re.search(r"^store index rebuild: 40/40 rows \(100\.0%\)", log, re.M), log[-2000:]
