"""The int8 encoder (`--precision int8`) against f32 on real text, black-box
through `embedstream embed`.

Retrieval agreement: a corpus of >= 2,000 real English sentences of varied
length that we did not write: the licence texts Debian ships in every
install (base-files: /usr/share/common-licenses) and the Python language
reference shipped with CPython (libpython3.11-stdlib: pydoc_data.topics).
For 200 queries taken from the corpus, the top-10 neighbours (the query
itself left out) under int8 must overlap those under f32 by >= 0.95 on
average. Also measured: f32 queries against int8-made vectors (a search
served by an f32 encoder over a store filled in int8).
"""
import json
import math
import pathlib
import re

from test_embed import cosine, parity_cases, records

LICENSES = pathlib.Path("/usr/share/common-licenses")


def corpus_sentences():
    texts = []
    if LICENSES.is_dir():
        for p in sorted(LICENSES.iterdir()):
            if p.is_file() and not p.is_symlink():
                texts.append(p.read_text(encoding="utf-8", errors="replace"))
    from pydoc_data.topics import topics  # CPython's own documentation text
    texts.extend(topics[k] for k in sorted(topics))
    seen, out = set(), []
    for text in texts:
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            for s in re.split(r"(?<=[.!?])\s+", para):
                words = s.split()
                if 4 <= len(words) <= 150 and s[0].isupper() and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def embed(run, texts, precision):
    stdin = "".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts))
    p = run(["embed", "--precision", precision], stdin.encode(), timeout=900)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    out = records(p.stdout)
    assert [r["id"] for r in out] == [str(i) for i in range(len(texts))]
    return [r["embedding"] for r in out], p.stderr.decode()


def top_k(query, vectors, skip, k=10):
    scores = [(sum(a * b for a, b in zip(query, v)), j) for j, v in enumerate(vectors) if j != skip]
    return {j for _, j in sorted(scores, reverse=True)[:k]}


def test_int8_retrieval_agrees_with_f32_on_real_sentences(run):
    sentences = corpus_sentences()
    assert len(sentences) >= 2000, f"only {len(sentences)} sentences in the corpus"
    lengths = sorted(len(s.split()) for s in sentences)
    assert lengths[len(lengths) // 10] <= 10 and lengths[-len(lengths) // 10] >= 35, "varied length"
    f32, _ = embed(run, sentences, "f32")
    int8, log = embed(run, sentences, "int8")
    assert "int8" in log and "u8 x s8" in log, "the log names the precision and the kernel"
    step = len(sentences) // 200
    queries = [i * step for i in range(200)]
    same, mixed = [], []
    for q in queries:
        want = top_k(f32[q], f32, q)
        same.append(len(top_k(int8[q], int8, q) & want) / 10)
        mixed.append(len(top_k(f32[q], int8, q) & want) / 10)
    agreement = sum(same) / len(same)
    mixed_agreement = sum(mixed) / len(mixed)
    cosines = [cosine(a, b) for a, b in zip(f32, int8)]
    print(f"[int8] {len(sentences)} sentences, 200 queries: top-10 overlap with f32 "
          f"{agreement:.4f} (int8 queries), {mixed_agreement:.4f} (f32 queries over int8 "
          f"vectors); cosine to f32 mean {sum(cosines) / len(cosines):.5f}, worst "
          f"{min(cosines):.5f}")
    assert agreement >= 0.95
    assert mixed_agreement >= 0.95
    assert sum(cosines) / len(cosines) >= 0.995 and min(cosines) >= 0.98


def test_int8_and_auto_name_what_they_run(run):
    p = run(["model", "info", "--json", "--precision", "int8"])
    assert p.returncode == 0, p.stderr.decode()
    info = json.loads(p.stdout)
    assert info["precision"] == info["requested_precision"] == "int8"
    assert "u8 x s8 -> s32" in info["kernel"] and "f32: " in info["kernel"]
    p = run(["model", "info", "--json", "--precision", "auto"])
    assert p.returncode == 0, p.stderr.decode()
    info = json.loads(p.stdout)
    assert info["requested_precision"] == "auto" and info["precision"] in ("int8", "f32")
    assert info["precision_auto"].endswith(": " + info["precision"]), info["precision_auto"]
    p = run(["model", "info", "--precision", "int4"])
    assert p.returncode == 2 and b"expected f32, bf16, int8 or auto" in p.stderr


def test_int8_parity_subset_through_the_cli(run):
    cases = parity_cases(40)
    stdin = "".join(json.dumps({"text": c["text"]}) + "\n" for c in cases).encode()
    p = run(["embed"], stdin, env_extra={"EMBEDSTREAM_PRECISION": "int8"})
    assert p.returncode == 0, p.stderr.decode()
    cos = [cosine(r["embedding"], c["embedding"]) for r, c in zip(records(p.stdout), cases)]
    assert len(cos) == len(cases)
    assert min(cos) >= 0.98 and sum(cos) / len(cos) >= 0.995
    assert all(abs(math.fsum(x * x for x in r["embedding"]) - 1) < 1e-5 for r in records(p.stdout))
