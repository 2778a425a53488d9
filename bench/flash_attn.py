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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram.backend import models  # noqa: E402
from forward_rows import ms_per_decode  # noqa: E402


def ms_per_pass(model, setting: str) -> float:
    """One-row passes after a 600-token prompt, in a 9-stream context like the scheduler's."""
    os.environ["EMOGRAM_FLASH_ATTN"] = setting  # read by Context, as in any emogram process
    try:
        return ms_per_decode(model, rows=1, full=False, prefix=600, steps=30, n_seq=9)
    finally:
        os.environ.pop("EMOGRAM_FLASH_ATTN", None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    for name in args.models:
        model = models.load(name)
        runs: dict[str, list[float]] = {"auto": [], "off": []}
        for r in range(args.rounds):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for setting in order:
                runs[setting].append(ms_per_pass(model, setting))
        auto, off = (statistics.median(runs[s]) for s in runs)
        print(f"{name}: auto (on) {auto:.2f} ms, off {off:.2f} ms per pass; off/auto time {off / auto:.2f} "
              f"(rounds: auto {', '.join(f'{x:.1f}' for x in runs['auto'])}; off {', '.join(f'{x:.1f}' for x in runs['off'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
