"""Flash attention on and off on the CPU: milliseconds per one-token forward pass, interleaved.

    python bench/flash_attn.py [--models smollm2-135m gemma3-270m] [--rounds 4]

llama.cpp's "auto" setting (emogram's default, see ``machine.flash_attention``) turns flash
attention on. This measures, in one process and alternating, a one-row decode after a 600-token
prompt in a context shaped like the scheduler's (9 sequence streams), with each setting.
``EMOGRAM_FLASH_ATTN=off`` chooses the other one for emogram.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram import models  # noqa: E402
from emogram.machine import FLASH_ATTN  # noqa: E402


def ms_per_pass(model, setting: int, prefix: int = 600, steps: int = 30) -> float:
    os.environ["EMOGRAM_FLASH_ATTN"] = {v: k for k, v in FLASH_ATTN.items()}[setting]
    try:  # read by Context, as in any emogram process
        ctx = model.new_context(n_seq=9, n_ctx=9 * 1024)
    finally:
        os.environ.pop("EMOGRAM_FLASH_ATTN", None)
    try:
        tokens = [(1000 + i) % model.n_vocab for i in range(prefix)]
        for i in range(0, prefix, 256):
            chunk = tokens[i:i + 256]
            ctx.decode(chunk, range(i, i + len(chunk)), [0] * len(chunk), [False] * len(chunk))
        times = []
        for k in range(steps):
            t0 = time.perf_counter()
            ctx.decode([(model.n_vocab // 2 + k) % model.n_vocab], [prefix + k], [0], [True])
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3
    finally:
        ctx.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    for name in args.models:
        model = models.load(name)
        runs: dict[int, list[float]] = {FLASH_ATTN["auto"]: [], FLASH_ATTN["off"]: []}
        for r in range(args.rounds):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for setting in order:
                runs[setting].append(ms_per_pass(model, setting))
        auto, off = (statistics.median(runs[s]) for s in runs)
        print(f"{name}: auto (on) {auto:.2f} ms, off {off:.2f} ms per pass; off/auto time {off / auto:.2f} "
              f"(rounds: auto {', '.join(f'{x:.1f}' for x in runs[-1])}; off {', '.join(f'{x:.1f}' for x in runs[0])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
