"""Two models in one process: does the first one keep its speed once the second has answered?

    python bench/two_models.py [--rounds 3]

llama.cpp's CPU backend uses OpenMP, and libgomp gives each thread that starts a parallel region a
team of its own; with more OpenMP threads than cores it stops spinning at barriers and sleeps,
and every forward pass slows down. emogram therefore runs all forward passes on one thread
(``emogram/forward_thread.py``). This prints Gemma's constrained tokens/s alone, after SmolLM2
(a second model, with its own decode thread) has answered, and after stock llama-cpp-python has
run once on the main thread (outside emogram: its own OpenMP team), with the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram import Explainer  # noqa: E402
from emogram.backend import models  # noqa: E402
from emogram.options import build_request  # noqa: E402

TOPICS = ["photosynthesis", "the French Revolution", "making coffee", "transformers"]


def rate(explainer: Explainer) -> float:
    """Tokens/s of the constrained decode (the direct prompt, 64 tokens at most), 4 topics x 2 seeds."""
    tokens = seconds = 0.0
    for k, topic in enumerate(TOPICS * 2):
        stats = explainer.engine.explain(topic, build_request(seed=k, max_tokens=64, plan=False)).stats
        tokens += stats.eval_tokens
        seconds += stats.eval_seconds
    return tokens / seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    gemma = Explainer("gemma3-270m")
    rate(gemma)  # warm: prompt cache, verdicts
    alone = [rate(gemma) for _ in range(args.rounds)]
    Explainer("smollm2-135m").explain("rain", seed=0)
    two = [rate(gemma) for _ in range(args.rounds)]
    from llama_cpp import Llama
    stock = Llama(str(models.resolve("smollm2-135m").path), n_ctx=512, n_threads=2, verbose=False)
    stock("Topic: rain\nEmoji:", max_tokens=8, temperature=0)  # on the main thread: its own team
    mixed = [rate(gemma) for _ in range(args.rounds)]
    a = statistics.median(alone)
    print(f"gemma alone:                                   {a:6.1f} tok/s  (rounds: {', '.join(f'{x:.1f}' for x in alone)})")
    print(f"after a second emogram model answered:         {statistics.median(two):6.1f} tok/s  "
          f"x{statistics.median(two) / a:.2f}  (rounds: {', '.join(f'{x:.1f}' for x in two)})")
    print(f"after stock llama-cpp-python on the main thread: {statistics.median(mixed):6.1f} tok/s  "
          f"x{statistics.median(mixed) / a:.2f}  (rounds: {', '.join(f'{x:.1f}' for x in mixed)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
