"""`embedstream embed` and `embedstream model info`, black-box against the built binary."""
import json
import math
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]
OUTPUT_FIELDS = {"id", "original_text", "embedding", "model_name", "timestamp",
                 "embedding_dimension", "processing_timestamp", "input_timestamp", "input_source"}


def parity_cases(n=40):
    lines = (REPO / "tests/fixtures/parity/parity.jsonl").read_text(encoding="utf-8").split("\n")
    cases = [json.loads(l) for l in lines if l.strip()]
    # Texts without newlines survive line framing; keep a varied subset.
    return [c for c in cases if "\n" not in c["text"] and "\r" not in c["text"]
            and c["text"].strip()][:n]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def records(stdout: bytes):
    # split("\n"), not splitlines(): U+2028 and U+0085 inside texts are not line breaks.
    return [json.loads(l) for l in stdout.decode("utf-8").split("\n") if l.strip()]


def test_json_lines_match_sentence_transformers(run):
    cases = parity_cases()
    stdin = "".join(json.dumps({"id": f"c{i}", "text": c["text"], "timestamp": 1699123456.789,
                                "source": "kafka-cli"}) + "\n" for i, c in enumerate(cases))
    p = run(["embed"], stdin.encode())
    assert p.returncode == 0, p.stderr.decode()
    out = records(p.stdout)
    assert [r["id"] for r in out] == [f"c{i}" for i in range(len(cases))]
    for r, c in zip(out, cases):
        assert set(r) == OUTPUT_FIELDS
        assert r["original_text"] == c["text"]
        assert r["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert r["embedding_dimension"] == 384 == len(r["embedding"])
        assert r["timestamp"] == r["input_timestamp"] == 1699123456.789
        assert r["processing_timestamp"] >= r["input_timestamp"]
        assert r["input_source"] == "kafka-cli"
        assert abs(sum(x * x for x in r["embedding"]) - 1.0) < 1e-5
        assert cosine(r["embedding"], c["embedding"]) >= 0.99999, c["name"]


def test_plain_lines_and_defaults(run):
    p = run(["embed", "--source", "file"], b"hello world\r\nsecond line")
    assert p.returncode == 0, p.stderr.decode()
    out = records(p.stdout)
    assert [r["original_text"] for r in out] == ["hello world", "second line"]
    assert all(len(r["id"]) == 36 and r["input_source"] == "file" for r in out)
    assert out[0]["id"] != out[1]["id"]


def test_bad_lines_report_line_numbers_and_the_rest_go_on(run):
    lines = [
        json.dumps({"id": "ok1", "text": "first good line"}),
        '{"id": "broken", "text": ',
        json.dumps({"id": "no-text"}),
        json.dumps({"id": "num", "text": 5}),
        "",
        json.dumps({"id": "ok2", "message": "seed 001 uses message"}),
    ]
    stdin = ("\n".join(lines) + "\n").encode() + b"caf\xc3 invalid utf-8\n" + b'{"id":"ok3","text":"last"}\n'
    p = run(["embed"], stdin)
    assert p.returncode == 1  # some lines rejected
    assert [r["id"] for r in records(p.stdout)] == ["ok1", "ok2", "ok3"]
    errors = [json.loads(l) for l in p.stderr.decode().splitlines() if l.startswith("{")]
    assert [(e["line"], e["error"]) for e in errors] == [
        (2, "invalid_json"), (3, "missing_text"), (4, "wrong_type"), (7, "invalid_utf8")]
    assert all(e["detail"] for e in errors)


def test_same_output_on_repeated_runs_and_across_batchings(run):
    texts = [c["text"] for c in parity_cases(30)]
    stdin = "".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)).encode()
    a = records(run(["embed"], stdin).stdout)
    b = records(run(["embed"], stdin).stdout)
    c = records(run(["embed", "--batch-lines", "1"], stdin).stdout)
    assert [r["embedding"] for r in a] == [r["embedding"] for r in b]
    for x, y in zip(a, c):
        assert max(abs(u - v) for u, v in zip(x["embedding"], y["embedding"])) <= 1e-6


def test_bf16_precision_is_close(run):
    cases = parity_cases(20)
    stdin = "".join(json.dumps({"text": c["text"]}) + "\n" for c in cases).encode()
    p = run(["embed", "--precision", "bf16"], stdin)
    assert p.returncode == 0, p.stderr.decode()
    for r, c in zip(records(p.stdout), cases):
        assert cosine(r["embedding"], c["embedding"]) >= 0.999


def test_model_info(run):
    p = run(["model", "info", "--json"])
    assert p.returncode == 0, p.stderr.decode()
    info = json.loads(p.stdout)
    assert info["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["embedding_dimension"] == 384 and info["layers"] == 6 and info["heads"] == 12
    assert info["max_seq_length"] == 256 and info["pooling"] == "mean" and info["normalize"]
    assert info["precision"] in ("f32", "bf16") and info["cpu_features"]
    text = run(["model", "info"]).stdout.decode()
    assert "all-MiniLM-L6-v2" in text and "384" in text


def test_clear_errors_for_bad_model_dir_and_flags(run, tmp_path):
    p = run(["embed", "--model-dir", str(tmp_path / "missing")], b"x\n")
    assert p.returncode == 2
    assert b"not found" in p.stderr
    (tmp_path / "config.json").write_text("{ nope")
    p = run(["model", "info", "--model-dir", str(tmp_path)])
    assert p.returncode == 2 and b"corrupt" in p.stderr
    p = run(["embed", "--precision", "fp8"], b"x\n")
    assert p.returncode == 2 and b"precision" in p.stderr
    p = run(["embed", "--format", "xml"], b"x\n")
    assert p.returncode != 0


def test_config_file_and_env_precedence(run, tmp_path):
    cfg = tmp_path / "embedstream.yaml"
    cfg.write_text("model:\n  precision: bf16\n  threads: 1\n")
    info = json.loads(run(["model", "info", "--json", "--config", str(cfg)]).stdout)
    assert info["requested_precision"] == "bf16" and info["threads"] == 1
    info = json.loads(run(["model", "info", "--json", "--config", str(cfg)],
                          env_extra={"EMBEDSTREAM_PRECISION": "f32"}).stdout)
    assert info["requested_precision"] == "f32"  # env over file
    info = json.loads(run(["model", "info", "--json", "--config", str(cfg), "--precision", "bf16",
                           "--threads", "2"], env_extra={"EMBEDSTREAM_PRECISION": "f32"}).stdout)
    assert info["requested_precision"] == "bf16" and info["threads"] == 2  # flags over env
