"""How llama.cpp's forward pass scales with rows on this machine: the ceiling of any batching.

    python bench/forward_rows.py            # Gemma 3 270M: 1, 4 and 16 rows, two output heads

Each of N sequences holds the same 600-token prefix (loaded from one saved state, as the engine
does); then every step decodes one token per sequence, at the same position. Printed: the median
milliseconds per ``llama_decode`` and tokens/s, with emogram's candidate-only head (the graph stops
at the final hidden state) and with llama.cpp's logits over the whole vocabulary (what a glossed
answer's word steps need).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram.backend import models  # noqa: E402
from emogram.backend.llama import Model  # noqa: E402


def ms_per_decode(model, rows: int, full: bool, prefix: int, steps: int, n_seq: int | None = None) -> float:
    """Median ms of a decode of ``rows`` rows (one per sequence) after a ``prefix``-token prompt, in
    a context of ``n_seq`` sequence streams (default: ``rows``)."""
    n_seq = n_seq or rows
    ctx = model.new_context(n_seq=n_seq, n_ctx=n_seq * 1024)
    try:
        tokens = [1000 + i for i in range(prefix)]
        for i in range(0, prefix, 256):
            chunk = tokens[i:i + 256]
            ctx.decode(chunk, range(i, i + len(chunk)), [0] * len(chunk), [False] * len(chunk))
        state = ctx.state_get(0)
        for s in range(1, rows):
            ctx.state_set(s, state)
        times = []
        for k in range(steps):
            t0 = time.perf_counter()
            token = (model.n_vocab // 2 + k) % model.n_vocab  # any id of any model's vocabulary
            ctx.decode([token] * rows, [prefix + k] * rows, list(range(rows)), [True] * rows,
                       full_logits=full)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3
    finally:
        ctx.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--prefix", type=int, default=600)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    model = Model(models.resolve(args.model).path)
    print(f"{model.name}, {model.load_info.n_threads} threads, prefix {args.prefix} tokens, "
          f"median of {args.steps} decodes")
    for full in (False, True):
        head = "whole-vocabulary logits" if full else "candidate-only head (hidden state only)"
        base = None
        for rows in args.rows:
            ms = ms_per_decode(model, rows, full, args.prefix, args.steps)
            rate = rows / ms * 1e3
            base = base or rate
            print(f"  {head:40s} {rows:2d} rows: {ms:6.1f} ms per decode, {rate:6.1f} tokens/s "
                  f"({rate / base:4.2f}x 1 row)")
    model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
