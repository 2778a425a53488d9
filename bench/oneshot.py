"""The first answer from the shell: `emogram TOPIC` timed as a whole process, cold and warm, in one run.

    python bench/oneshot.py                    # "how tides work", 3 cold and 7 warm runs, then the split
    python bench/oneshot.py --runs 5 --topic "black holes" --no-adapter

Printed, side by side:

* **cold**: each run with an empty set-up and prompt cache (a fresh EMOGRAM_PROMPT_CACHE folder), the
  first run after install (the model's chunks are joined once per machine beforehand, untimed: that
  is a one-time assembly, not a run);
* **warm**: runs sharing one cache folder, after one untimed run that fills it;
* **off**: EMOGRAM_PROMPT_CACHE=0 (nothing read or written);
* **served**: with ``emogram serve`` running (started here, on a private socket of its own, after
  the other rows: never beside them), the command hands it the topic;
* for each: median, min and max wall time of the whole process (fork to exit, measured here), and
  the median of what `--verbose` says of it: interpreter start and imports, model load and checks,
  the answer (set-up, prompt, decoding) and output, so the table shows where the time goes;
* in this process: the per-answer time of an `Explainer` over 8 topics, one after another, the
  constraint's median and p99 time a token (the cost a long-lived program pays), and that time
  against the forward-pass limit of the same mix of steps: each one-token decode timed bare
  (argmax only, one sequence after an answer's own prompt, in a context of the engine's shape)
  with the output it had (llama.cpp's full logits for a word step, the candidate head for an emoji
  step), the faster of two such timings (before and after the answers), and the longer decodes
  (prompts, a named emoji's tokens) at what they took; and the share of the answers' time spent
  inside llama.cpp's decode.

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
sys.path.insert(0, str(ROOT))  # the package beside this folder, not an installed one
PARTS = ("process so far", "start, imports", "model and checks", "answer and output")


def _seconds(text: str) -> float:
    text = text.strip()
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def one(topic: str, cache: str, extra: list[str], serve: str = "0") -> tuple[float, dict[str, float], str]:
    # as an installed package runs: bytecode compiled (pip compiles at install; a shell that sets
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["EMOGRAM_PROMPT_CACHE"] = cache
    env["EMOGRAM_SERVE"] = serve
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
        if key.strip() == "served by":
            rows["served"] = 1.0
    if serve != "0" and "served" not in rows:
        raise SystemExit("oneshot: the server did not answer")
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
        served = serving(args.topic, warm_dir, extra, args.runs, Path(tmp) / "serve")
    texts = {t for _, _, t in cold + warm + off + served}
    print(f"\n`emogram {args.topic!r} --seed 0{' --no-adapter' if extra else ''}`, whole process, seconds "
          f"(the same text every run: {'yes' if len(texts) == 1 else 'NO'}):\n")
    print(f"{'cache':<22} {'median':>6} {'min':>6} {'max':>6}   {'imports':>8}  {'model':>8}  {'answer':>8}")
    print(row(f"cold ({args.cold} runs)", cold))
    print(row(f"warm ({args.runs} runs)", warm))
    print(row(f"off ({args.runs} runs)", off))
    print(row(f"served ({args.runs} runs)", served))
    print("  imports: interpreter start to the command's start; model: load, adapter and checks; "
          "answer: set-up, prompt, decoding and output (--verbose's 'process so far' split; served: "
          "the server's)")

    per, med, p99, limit, steps, rows, inside = in_process(extra)
    print(f"\nwarm process, {len(TOPICS)} topics one after another: {per:.3f} s an answer; constraint "
          f"{med:.0f} µs median, {p99:.0f} µs p99 a token (per answer, median over answers)")
    print(f"  forward-pass limit of the same steps ({steps}): {limit:.3f} s an answer; "
          f"sampled rows {rows / per:.1f}/s against {rows / limit:.1f}/s, {limit / per:.2f} of the limit; "
          f"{inside / per:.0%} of the time inside llama.cpp's decode")
    warm_med = statistics.median(w for w, _, _ in warm)
    cold_med = statistics.median(w for w, _, _ in cold)
    print("\nagainst the issue's goals (this CPU, this run):")
    print(f"  one-shot, warm cache, median s      {warm_med:6.2f}  <= 1.2   {'met' if warm_med <= 1.2 else 'NOT met'}")
    print(f"  one-shot, cold cache, median s      {cold_med:6.2f}  <= 3.0   {'met' if cold_med <= 3.0 else 'NOT met'}")
    served_med = statistics.median(w for w, _, _ in served)
    print(f"  served (emogram serve), median s    {served_med:6.2f}  <= 1.2   {'met' if served_med <= 1.2 else 'NOT met'}")
    print(f"  constraint median, µs a token       {med:6.0f}  <= 100   {'met' if med <= 100 else 'NOT met'}")
    print(f"  sequential, of the forward limit    {limit / per:6.2f}  >= 0.8   {'met' if limit / per >= 0.8 else 'NOT met'}")
    return 0


def serving(topic: str, cache: str, extra: list[str], runs: int, folder: Path) -> list:
    """``runs`` commands answered by an ``emogram serve`` started for them, then stopped."""
    folder.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(EMOGRAM_PROMPT_CACHE=cache, EMOGRAM_SERVE=str(folder))
    proc = subprocess.Popen([sys.executable, "-m", "emogram", "serve", "--idle", "10"], env=env, cwd=ROOT,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        line = proc.stderr.readline()
        if "listening on" not in line:
            raise SystemExit(f"oneshot: emogram serve did not start: {line}")
        one(topic, cache, extra, str(folder))  # a --no-adapter model loads on its first request
        return [one(topic, cache, extra, str(folder)) for _ in range(runs)]
    finally:
        subprocess.run([sys.executable, "-m", "emogram", "serve", "--stop"], env=env, cwd=ROOT,
                       capture_output=True, timeout=60)
        proc.wait(timeout=60)


TOPICS = ["how tides work", "black holes", "how vaccines work", "the water cycle", "photosynthesis",
          "how a bicycle works", "volcanoes", "the french revolution"]


def bare_steps(ex, prompt: list[int]) -> dict[bool, float]:
    """Median seconds of a bare one-token decode with llama.cpp's full logits (True) and with the
    candidate head (False), argmax only, one sequence after ``prompt`` (an answer's own prompt), in
    a context of the engine's shape: attention reads as many cells as in the answers."""
    import numpy as np

    from emogram.backend import context as context_module
    n_seq = ex.engine.scheduler.slots + 1
    ctx = context_module.Context(ex.model, n_seq=n_seq, n_ctx=n_seq * ex.engine.scheduler.CELLS_PER_SEQ)
    try:
        for i in range(0, len(prompt), ctx.n_batch):
            chunk = prompt[i:i + ctx.n_batch]
            ctx.decode(chunk, range(i, i + len(chunk)), [0] * len(chunk),
                       [i + j == len(prompt) - 1 for j in range(len(chunk))], full_logits=True)
        bare: dict[bool, float] = {}
        for full in (True, False):
            if not full and not ctx.head_ok:
                bare[False] = bare[True]
                continue
            pos, tok, times = len(prompt), int(np.argmax(ctx.logits(0))), []
            for _ in range(26):
                t0 = time.perf_counter()
                ctx.decode([tok], [pos], [0], [True], full_logits=full)
                tok = (int(np.argmax(ctx.logits(0))) if full
                       else int(ctx.head.tokens[int(np.argmax(ctx.candidate_logits(0)))]))
                times.append(time.perf_counter() - t0)
                pos += 1
            bare[full] = statistics.median(times[2:])
            ctx.seq_rm(0, len(prompt), -1)
        return bare
    finally:
        ctx.close()


def in_process(extra: list[str]) -> tuple[float, float, float, float, str, float, float]:
    """Per-answer seconds, constraint median and p99 µs, the forward-pass limit's seconds an answer
    for the same decodes, what they were, the sampled rows (word and emoji steps) an answer, and
    the seconds an answer spent inside ``Context.decode``."""
    from emogram import Explainer
    from emogram.backend import context as context_module
    ex = Explainer(adapter=False if extra else None)
    seen: list[list[int]] = []
    tokens = ex.engine._tokens

    def spy(prompt):  # the tokens the engine evaluates for a topic: shared prefix and its own
        shared, own = tokens(prompt)
        seen.append(list(shared) + list(own))
        return shared, own
    ex.engine._tokens = spy
    ex.explain(TOPICS[0], seed=0)
    prompt = seen[0]
    before = bare_steps(ex, prompt)
    calls: list[tuple[int, bool, float]] = []  # (tokens, full logits, seconds)
    original = context_module.Context.decode

    def timed(ctx, tokens, positions, seqs, outputs, **kw):
        t0 = time.perf_counter()
        try:
            return original(ctx, tokens, positions, seqs, outputs, **kw)
        finally:
            calls.append((len(tokens), bool(kw.get("full_logits")), time.perf_counter() - t0))
    context_module.Context.decode = timed
    try:
        start = time.perf_counter()
        stats = [ex.explain(t, seed=0).stats for t in TOPICS]
        per = (time.perf_counter() - start) / len(TOPICS)
    finally:
        context_module.Context.decode = original
    med = statistics.median(s.constraint_median_us for s in stats)
    p99 = statistics.median(s.constraint_p99_us for s in stats)
    # the same decodes, bare (one sequence, one token a step, argmax only), timed before and
    # after the answers; the faster of the two is the limit, so that noise cannot flatter the ratio
    after = bare_steps(ex, prompt)
    bare = {full: min(before[full], after[full]) for full in (True, False)}
    words = sum(1 for n, full, _ in calls if n == 1 and full)
    emoji = sum(1 for n, full, _ in calls if n == 1 and not full)
    longer = sum(t for n, _, t in calls if n > 1)
    limit = (words * bare[True] + emoji * bare[False] + longer) / len(TOPICS)
    what = (f"{words / len(TOPICS):.1f} word steps at {bare[True] * 1000:.1f} ms, {emoji / len(TOPICS):.1f} "
            f"emoji steps at {bare[False] * 1000:.1f} ms, longer decodes {longer / len(TOPICS):.3f} s, an answer")
    inside = sum(t for _, _, t in calls) / len(TOPICS)
    return per, med, p99, limit, what, (words + emoji) / len(TOPICS), inside


if __name__ == "__main__":
    raise SystemExit(main())
