"""Extra buffer types on and off: load time and decode speed, interleaved, in one process.

    python bench/extra_bufts.py [--model gemma3-270m] [--rounds 5]

llama.cpp's "extra buffer types" repack weights for faster CPU kernels (and, on CPUs with AMX, use
the AMX kernels). emogram turns them off where the CPU advertises AMX, because some machines that
advertise it die with SIGILL in ggml_backend_amx_mul_mat. This measures what that costs where both
settings can run: the same greedy 64-token decode with each setting, alternating.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram.backend import models  # noqa: E402
from emogram.backend.llama import Model  # noqa: E402
from emogram.backend.machine import cpu_advertises_amx  # noqa: E402
from emogram.backend.single_sequence import SingleSequence  # noqa: E402


def decode(model: Model, tokens: int = 64) -> float:
    prompt = model.tokenize("Topic: photosynthesis\nEmoji:\n", add_special=model.add_bos)
    seq = SingleSequence(model)
    try:
        seq.prefill(prompt)
        t0 = time.perf_counter()
        for _ in range(tokens):
            seq.push(int(seq.logits().argmax()))
        return tokens / (time.perf_counter() - t0)
    finally:
        seq.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=models.DEFAULT_PRESET)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    path = models.resolve(args.model).path
    if cpu_advertises_amx() and os.environ.get("EMOGRAM_EXTRA_BUFTS") != "1":
        print("this CPU advertises AMX: measuring with extra buffers on could crash; set "
              "EMOGRAM_EXTRA_BUFTS=1 to try anyway")
        return 1
    loaded, loads = {}, {}
    for setting in ("1", "0"):
        os.environ["EMOGRAM_EXTRA_BUFTS"] = setting
        t0 = time.perf_counter()
        loaded[setting] = Model(path)
        loads[setting] = time.perf_counter() - t0
    rates: dict[str, list[float]] = {"1": [], "0": []}
    for r in range(args.rounds):
        for setting in (("1", "0") if r % 2 == 0 else ("0", "1")):
            rates[setting].append(decode(loaded[setting]))
    for setting, label in (("1", "extra buffers on (EMOGRAM_EXTRA_BUFTS=1)"), ("0", "extra buffers off (emogram's default)")):
        print(f"{label:38s} load {loads[setting]:.2f} s, decode {statistics.median(rates[setting]):.1f} tok/s "
              f"(median of {args.rounds}; {', '.join(f'{x:.1f}' for x in rates[setting])})")
    ratio = statistics.median(rates["0"]) / statistics.median(rates["1"])
    print(f"off/on: {ratio:.3f}  ({args.model}, {loaded['1'].load_info.n_threads} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
