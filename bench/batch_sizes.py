"""Which batch size is fastest for explain_many on this machine? Interleaved repeats, so a noisy
neighbour slows every size alike (bench/batching.py measures each size once).

    python bench/batch_sizes.py                      # 24 topics, sizes 16 1 4, twice each
    python bench/batch_sizes.py --sizes 1 2 8 --rounds 3

Prints each run's wall time and the share of it inside llama_decode, then the median per size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emogram import Explainer  # noqa: E402
from emogram.backend import context as context_module  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--topics", type=int, default=24)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 1, 4])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    topics = [t["topic"] for t in json.loads((HERE / "topics.json").read_text(encoding="utf-8"))["topics"]]
    topics = topics[:args.topics]
    ex = Explainer(args.model)
    ex.explain_many(topics[:4], batch_size=4, seed=args.seed, progress=False)  # warm-up
    decode, spent = context_module.Context.decode, [0.0]

    def timed(ctx, *a, **kw):
        t0 = time.perf_counter()
        try:
            return decode(ctx, *a, **kw)
        finally:
            spent[0] += time.perf_counter() - t0

    context_module.Context.decode = timed
    walls: dict[int, list[float]] = {s: [] for s in args.sizes}
    try:
        for r in range(args.rounds):
            for size in args.sizes:
                spent[0] = 0.0
                t0 = time.perf_counter()
                ex.explain_many(topics, batch_size=size, seed=args.seed, progress=False)
                wall = time.perf_counter() - t0
                walls[size].append(wall)
                print(f"round {r + 1} batch size {size:2d}: {wall:6.2f} s, {spent[0] / wall:4.0%} in llama_decode",
                      flush=True)
    finally:
        context_module.Context.decode = decode
    print(f"{ex.model_name}, {ex.model.load_info.n_threads} threads, {len(topics)} topics, seed {args.seed}")
    base = statistics.median(walls[args.sizes[0]])
    for size in args.sizes:
        med = statistics.median(walls[size])
        print(f"batch size {size:2d}: median {med:6.2f} s  ({base / med:4.2f}x batch size {args.sizes[0]})")
    ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
