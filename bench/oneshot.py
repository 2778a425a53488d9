"""The first answer from the shell: `emogram TOPIC` timed as a whole process, cold and warm, in one run.

    python bench/oneshot.py                    # "how tides work", 3 cold and 7 warm runs, then the split
    python bench/oneshot.py --runs 5 --topic "black holes" --no-adapter

Printed, side by side:

* **cold**: each run with an empty set-up and prompt cache (a fresh EMOGRAM_PROMPT_CACHE folder), the
  first run after install (the model's chunks are joined once per machine beforehand, untimed: that
  is a one-time assembly, not a run);
* **warm**: runs sharing one cache folder, after one untimed run that fills it;
* **off**: EMOGRAM_PROMPT_CACHE=0 (nothing read or written);
* for each: median, min and max wall time of the whole process (fork to exit, measured here), and
  the median of what `--verbose` says of it: interpreter start and imports, model load and checks,
  the answer (set-up, prompt, decoding) and output, so the table shows where the time goes;
* in this process: the per-answer time of an `Explainer` over 8 topics, one after another, and
  the constraint's median time a token (the cost a long-lived program pays).

Run it alone: two llama.cpp processes on two cores slow each other several times over.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("process so far", "start, imports", "model and checks", "answer and output")


def _seconds(text: str) -> float:
    text = text.strip()
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def one(topic: str, cache: str, extra: list[str]) -> tuple[float, dict[str, float], str]:
    # as an installed package runs: bytecode compiled (pip compiles at install; a shell that sets
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["EMOGRAM_PROMPT_CACHE"] = cache
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "emogram", topic, "--seed", "0", "--verbose", *extra],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"oneshot: emogram failed:\n{out.stderr[-2000:]}")
    rows = {}
    for line in out.stderr.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in PARTS:
            rows[key.strip()] = _seconds(value)
    return wall, rows, out.stdout.strip()


def row(name: str, runs: list[tuple[float, dict[str, float], str]]) -> str:
    walls = [w for w, _, _ in runs]
    parts = [statistics.median(r[k] for _, r, _ in runs) if all(k in r for _, r, _ in runs) else float("nan")
             for k in PARTS[1:]]
    return (f"{name:<22} {statistics.median(walls):6.2f} {min(walls):6.2f} {max(walls):6.2f}   "
            + "  ".join(f"{p:8.2f}" for p in parts))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topic", default="how tides work")
    p.add_argument("--runs", type=int, default=7, help="warm and off runs (default 7)")
    p.add_argument("--cold", type=int, default=3, help="cold runs (default 3)")
    p.add_argument("--no-adapter", action="store_true", help="the base model without its adapter")
    args = p.parse_args(argv)
    extra = ["--no-adapter"] if args.no_adapter else []
    print(f"$ python bench/oneshot.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    import compileall
    compileall.compile_dir(ROOT / "emogram", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        one(args.topic, "0", extra)  # the model's chunks joined once per machine (untimed)
        cold = []
        for k in range(args.cold):
            folder = Path(tmp) / f"cold{k}"
            cold.append(one(args.topic, str(folder), extra))
        warm_dir = str(Path(tmp) / "warm")
        one(args.topic, warm_dir, extra)  # fills it
        warm = [one(args.topic, warm_dir, extra) for _ in range(args.runs)]
        off = [one(args.topic, "0", extra) for _ in range(args.runs)]
    texts = {t for _, _, t in cold + warm + off}
    print(f"\n`emogram {args.topic!r} --seed 0{' --no-adapter' if extra else ''}`, whole process, seconds "
          f"(the same text every run: {'yes' if len(texts) == 1 else 'NO'}):\n")
    print(f"{'cache':<22} {'median':>6} {'min':>6} {'max':>6}   {'imports':>8}  {'model':>8}  {'answer':>8}")
    print(row(f"cold ({args.cold} runs)", cold))
    print(row(f"warm ({args.runs} runs)", warm))
    print(row(f"off ({args.runs} runs)", off))
    print("  imports: interpreter start to the command's start; model: load, adapter and checks; "
          "answer: set-up, prompt, decoding and output (--verbose's 'process so far' split)")

    from emogram import Explainer  # in this process: what a long-lived program pays per answer
    topics = ["how tides work", "black holes", "how vaccines work", "the water cycle", "photosynthesis",
              "how a bicycle works", "volcanoes", "the french revolution"]
    ex = Explainer(adapter=False if extra else None)
    ex.explain("tea", seed=0)
    start = time.perf_counter()
    stats = [ex.explain(t, seed=0).stats for t in topics]
    per = (time.perf_counter() - start) / len(topics)
    med = statistics.median(s.constraint_median_us for s in stats)
    print(f"\nwarm process, {len(topics)} topics one after another: {per:.3f} s an answer, "
          f"constraint median {med:.0f} µs a token (per answer, median over answers)")
    warm_med = statistics.median(w for w, _, _ in warm)
    cold_med = statistics.median(w for w, _, _ in cold)
    print("\nagainst the issue's goals (this CPU, this run):")
    print(f"  one-shot, warm cache, median s      {warm_med:6.2f}  <= 1.2   {'met' if warm_med <= 1.2 else 'NOT met'}")
    print(f"  one-shot, cold cache, median s      {cold_med:6.2f}  <= 3.0   {'met' if cold_med <= 3.0 else 'NOT met'}")
    print(f"  constraint median, µs a token       {med:6.0f}  <= 100   {'met' if med <= 100 else 'NOT met'}")
    print("  sampled rows/s against the forward-pass limit: python bench/batching.py --quick")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
