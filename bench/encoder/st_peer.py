#!/usr/bin/env python3
"""sentence-transformers peer for the embedstream encoder benchmark.

Encodes every line of --texts with SentenceTransformer.encode on the CPU and
prints ONE JSON line to stdout with the best of --repeat timed passes:

  {"peer": "sentence-transformers", "version", "torch", "threads", "precision",
   "texts", "tokens", "best_s", "sentences_per_s", "tokens_per_s", ...}

"tokens" is the sum of the real (non-padding) token counts, [CLS]/[SEP]
included, after truncation at the model's max_seq_length, i.e. what the model
actually processes. Everything else (progress, warnings) goes to stderr.
On failure the JSON line carries an "error" field and the exit status is 1.

Texts file: UTF-8, one text per line ('\\n' separated). A single trailing
newline is ignored; empty lines in the middle are kept as empty texts; '\\r'
is not stripped.

Example:
  .cache/venv-ref/bin/python bench/encoder/st_peer.py --model-dir DIR \\
      --texts corpus.txt --threads 2 --batch-size 32 --warmup 1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def log(*a) -> None:
    print("[st_peer]", *a, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True, help="sentence-transformers model directory")
    ap.add_argument("--texts", required=True, help="UTF-8 file, one text per line")
    ap.add_argument("--threads", type=int, required=True, help="intra-op threads (torch.set_num_threads)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes over all texts")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32")
    return ap.parse_args()


def read_texts(path: str) -> list[str]:
    with open(path, "r", encoding="utf-8", newline="") as f:
        data = f.read()
    if data.endswith("\n"):
        data = data[:-1]
    return data.split("\n") if data else []


def cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def main() -> int:
    args = parse_args()
    n = max(1, args.threads)
    # Must be set before torch (and its OpenMP/MKL runtime) is imported.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "RAYON_NUM_THREADS", "RAYON_RS_NUM_CPUS"):
        os.environ[var] = str(n)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if n > 1 else "false")

    result: dict = {"peer": "sentence-transformers", "version": None, "torch": None,
                    "threads": n, "precision": args.precision, "batch_size": args.batch_size,
                    "texts": None, "tokens": None, "best_s": None,
                    "sentences_per_s": None, "tokens_per_s": None}

    def emit(rc: int) -> int:
        print(json.dumps(result), flush=True)
        return rc

    try:
        import torch
        import sentence_transformers
        from sentence_transformers import SentenceTransformer
    except Exception as exc:  # pragma: no cover
        result["error"] = f"import failed: {type(exc).__name__}: {exc}"
        return emit(1)

    result["version"] = sentence_transformers.__version__
    result["torch"] = torch.__version__
    result["cpu"] = cpu_name()
    torch.set_num_threads(n)

    try:
        texts = read_texts(args.texts)
    except Exception as exc:
        result["error"] = f"reading texts failed: {type(exc).__name__}: {exc}"
        return emit(1)
    result["texts"] = len(texts)
    if not texts:
        result["error"] = "no texts"
        return emit(1)

    try:
        t0 = time.perf_counter()
        model = SentenceTransformer(args.model_dir, device="cpu")
        model.eval()
        log(f"loaded {args.model_dir} in {time.perf_counter() - t0:.2f}s; "
            f"max_seq_length={model.max_seq_length}; torch threads={torch.get_num_threads()}")
        result["max_seq_length"] = int(model.max_seq_length)

        # Real tokens per text after truncation (same preprocessing encode() uses).
        tokenize = getattr(model, "preprocess", None) or model.tokenize
        tokens = 0
        for i in range(0, len(texts), 256):
            feats = tokenize(texts[i:i + 256])
            tokens += int(feats["attention_mask"].sum().item())
        result["tokens"] = tokens
        log(f"{len(texts)} texts, {tokens} tokens ({tokens / len(texts):.1f}/text)")
    except Exception as exc:
        result["error"] = f"setup failed: {type(exc).__name__}: {exc}"
        return emit(1)

    def one_pass():
        with torch.inference_mode():
            if args.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True,
                                        show_progress_bar=False)
            return model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True,
                                show_progress_bar=False)

    times: list[float] = []
    try:
        for i in range(args.warmup):
            t0 = time.perf_counter()
            out = one_pass()
            log(f"warmup {i + 1}/{args.warmup}: {time.perf_counter() - t0:.3f}s")
        for i in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            out = one_pass()
            dt = time.perf_counter() - t0
            times.append(dt)
            log(f"pass {i + 1}/{args.repeat}: {dt:.3f}s")
        if out.shape[0] != len(texts):
            raise RuntimeError(f"encode returned {out.shape[0]} rows for {len(texts)} texts")
        result["output_dtype"] = str(out.dtype)
    except Exception as exc:
        result["error"] = f"{args.precision} encode failed: {type(exc).__name__}: {exc}"
        if times:
            result["times_s"] = [round(t, 6) for t in times]
        return emit(1)

    best = min(times)
    result["best_s"] = round(best, 6)
    result["sentences_per_s"] = round(len(texts) / best, 3)
    result["tokens_per_s"] = round(tokens / best, 1)
    result["times_s"] = [round(t, 6) for t in times]
    return emit(0)


if __name__ == "__main__":
    sys.exit(main())
