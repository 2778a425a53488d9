"""Where the constraint's time per token goes, measured inside real decoding (not a microbenchmark:
after each forward pass the caches are cold, which makes everything several times slower).

    py-spy record -r 1000 -f raw -o /tmp/emogram.raw -- python bench/profile_constraint.py
    python bench/profile_constraint.py --report /tmp/emogram.raw

The first command decodes the public topics (two passes: the second with every llama.cpp verdict
already remembered) under py-spy; the second sums the samples taken inside the answer's per-token
step (``EmojiPhase.step`` in ``emogram/decoding/sequence.py``: draw, judge, accept, advance), leaving
out the read of the logits (``candidates``, the output head; the forward pass itself runs in the
scheduler, outside the step), by the function under the step that was running, or by the step's own
line when it was running no Python function (C calls: the sampler, numpy).
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import linecache
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

OUTSIDE = ("candidates",)  # reading the logits: the output head, not the constraint


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


def the_step() -> tuple[str, range]:
    """The file of the per-token step and the lines its body spans (py-spy names a frame by its
    function, file and current line; the file's other ``step`` methods are other phases')."""
    from emogram.decoding.sequence import EmojiPhase
    lines, first = inspect.getsourcelines(EmojiPhase.step)
    return inspect.getsourcefile(EmojiPhase.step) or "", range(first, first + len(lines))


def _frame(frame: str) -> tuple[str, str, int]:
    """``function (file:line)`` -> (function without its class, file, line)."""
    name, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    return name.split(".")[-1], path, int(line) if line.isdigit() else 0


def tally(raw: str, step_file: str, step_lines: range) -> tuple[int, collections.Counter]:
    """Samples inside the step (less ``OUTSIDE``) by what was running under it."""
    in_step = collections.Counter()
    total = 0
    tail = "/".join(Path(step_file).parts[-3:])  # emogram/decoding/sequence.py, however py-spy spells the root
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        idx = next((i for i, (name, path, no) in enumerate(frames)
                    if name == "step" and path.endswith(tail) and no in step_lines), None)
        if idx is None:
            continue
        below = [name for name, _, _ in frames[idx + 1:]]
        if below and below[0] in OUTSIDE:
            continue
        total += int(count)
        if below:
            in_step[below[0] + "()"] += int(count)
        else:
            lineno = frames[idx][2]
            in_step[f"line {lineno}: {linecache.getline(step_file, lineno).strip()[:60]}"] += int(count)
    return total, in_step


def report(path: Path) -> int:
    step_file, step_lines = the_step()
    total, in_step = tally(path.read_text(encoding="utf-8", errors="replace"), step_file, step_lines)
    print(f"{total} samples in the per-token step, outside the forward pass and the logits:")
    for name, n in in_step.most_common(15):
        print(f"  {n / total:6.1%}  {name}")
    if not total:
        print(f"no sample is inside EmojiPhase.step ({step_file}, lines {step_lines.start}-"
              f"{step_lines.stop - 1}): was the profile taken with py-spy's raw format (-f raw) "
              "while this script decoded?", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gemma3-270m")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--report", type=Path, help="sum a py-spy raw profile instead of decoding")
    args = p.parse_args(argv)
    if args.report:
        return report(args.report)
    decode(args.model, args.passes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
