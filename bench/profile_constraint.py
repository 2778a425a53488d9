"""Where the constraint's time per token goes, measured inside real decoding (not a microbenchmark:
after each forward pass the caches are cold, which makes everything several times slower).

    py-spy record -r 1000 -f raw -o /tmp/emogram.raw -- python bench/profile_constraint.py
    python bench/profile_constraint.py --report /tmp/emogram.raw

The first command decodes the public topics (two passes: the second with every llama.cpp verdict
already remembered) under py-spy; the second sums the samples taken inside the engine's per-token
loop, leaving out the forward pass (``push``) and the wait for logits (``logits``), by the function
under the loop that was running.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def decode(model: str, passes: int) -> None:
    from emogram import Explainer
    topics = [t["topic"] for t in json.loads((HERE / "topics.json").read_text(encoding="utf-8"))["topics"]]
    explainer = Explainer(model)
    for p in range(passes):
        medians = []
        for k, topic in enumerate(topics):
            medians.append(explainer.explain(topic, seed=k).stats.constraint_median_us)
        medians.sort()
        print(f"pass {p + 1}: median of per-answer constraint medians {medians[len(medians) // 2]:.0f} µs")


def report(path: Path) -> None:
    import linecache
    engine_file = str(HERE.parent / "emogram" / "decoding" / "engine.py")
    loop = collections.Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        idx = next((i for i, f in enumerate(frames) if f.split(" (")[0].endswith("_emoji_loop")), None)
        if idx is None:
            continue
        below = [f.split(" (")[0].split(".")[-1] for f in frames[idx + 1:]]
        if below and below[0] in ("push", "logits"):
            continue
        total += int(count)
        if below:
            loop[below[0] + "()"] += int(count)
        else:  # time in the loop's own line: C calls (the sampler, numpy) show up here
            lineno = int(frames[idx].rsplit(":", 1)[1].rstrip(")"))
            loop[f"line {lineno}: {linecache.getline(engine_file, lineno).strip()[:60]}"] += int(count)
    print(f"{total} samples in the per-token loop, outside the forward pass:")
    for name, n in loop.most_common(15):
        print(f"  {n / total:6.1%}  {name}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="gemma3-270m")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--report", type=Path)
    args = p.parse_args()
    if args.report:
        report(args.report)
    else:
        decode(args.model, args.passes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
