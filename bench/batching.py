"""Batched decoding, measured in one run: the same topics and options through every path.

    python bench/batching.py                 # 24 topics (bench/topics.json), about 4 minutes on 2 cores
    python bench/batching.py --quick         # 8 topics, fewer steps: about a minute and a half
    python bench/batching.py --topics 48 --model smollm2-135m
    python bench/batching.py --sizes 16 1 4 --rounds 2   # which batch size is fastest here (24 topics)

Printed, for the same topics, seeds and options:

* aggregate answer tokens/s and topics/s for sequential decoding (``explain`` per topic, the exact
  path), ``explain_many`` at ``batch_size`` 1 (also exact), 2, 4, 8 and 16; how many texts equal
  the sequential ones; the mean rows per forward pass and the share of wall time in llama.cpp;
* the batched forward-pass limit: the same widths decoded with ``emogram.backend.context.Context``
  directly, argmax only, no constraint, through the output head the engine uses (the
  candidate-only head when ``Context.head_ok``, else llama.cpp's full logits: the script says which);
* best-of-N (``candidates=8``) wall time against one answer, on the same topics and seeds;
* constraint time per token per sequence (``Stats.constraint_us``: drawing, judging and advancing
  one token, without the logits), median and p99, and the candidate head's time per row (timed
  here by wrapping the scheduler's ``_Output.candidates``, not in the library);
* peak RSS (``resource.getrusage``);
* the ratios the batching issue asks for, against its goals, whether met or not.

A warm-up pass (``explain_many`` at batch size 16 over the same topics, untimed) fills the
grammar judge's verdict cache and the prompt cache first, so no path pays for them alone.

With ``--sizes``, only ``explain_many`` runs, at the sizes given, each ``--rounds`` times in
interleaved rounds (a noisy neighbour slows every size alike, where the full run measures each size
once): each run's wall time and share of it inside llama_decode, then the median per size and its
ratio to the first size's. The warm-up is then ``explain_many`` over 4 topics at batch size 4.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emogram import Explainer  # noqa: E402
from emogram.api import _batch_size  # noqa: E402
from emogram.backend import context as context_module  # noqa: E402
from emogram.backend.machine import active_implementation  # noqa: E402
from emogram.decoding import scheduler as scheduler_module  # noqa: E402

WIDTHS = (1, 2, 4, 8, 16)
GOALS = {"speedup": 3.5, "of_limit": 0.9, "best_of_8": 2.5, "constraint_us": 100.0}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs, q: float) -> float:
    if not len(xs):
        return float("nan")
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(q * len(ordered))) - 1))]


class Probe:
    """Wraps (at class level, for this process only) the context's decode and the scheduler's
    candidate-logit call, to split a run's wall time into forward passes, output head and the rest."""

    def __init__(self) -> None:
        self.decode_s = 0.0
        self.decodes = 0
        self.token_rows = 0  # rows of decodes that carried only sampled tokens (one per sequence)
        self.token_decodes = 0
        self.prompt_s = 0.0
        self.rows = 0  # every row of every decode (prompt rows included)
        self.single_s: list[float] = []  # decodes of one sampled token (one row)
        self.head_ns: list[int] = []
        self._decode = context_module.Context.decode
        self._cands = scheduler_module._Output.candidates

    def install(self) -> None:
        probe, decode, cands = self, self._decode, self._cands

        def timed_decode(ctx, tokens, positions, seqs, outputs, **kw):
            t0 = time.perf_counter()
            try:
                return decode(ctx, tokens, positions, seqs, outputs, **kw)
            finally:
                seconds = time.perf_counter() - t0
                probe.decode_s += seconds
                probe.decodes += 1
                probe.rows += len(seqs)
                if not all(outputs):  # a prompt piece (only its last row gives an output)
                    probe.prompt_s += seconds
                if len(seqs) == 1 and outputs[0]:  # one sequence's sampled token
                    probe.single_s.append(seconds)
                if len(set(seqs)) == len(seqs) and all(outputs):  # one sampled token per sequence
                    probe.token_rows += len(seqs)
                    probe.token_decodes += 1

        def timed_candidates(out):
            t0 = time.perf_counter_ns()
            try:
                return cands(out)
            finally:
                probe.head_ns.append(time.perf_counter_ns() - t0)

        context_module.Context.decode = timed_decode
        scheduler_module._Output.candidates = timed_candidates

    def remove(self) -> None:
        context_module.Context.decode = self._decode
        scheduler_module._Output.candidates = self._cands

    def reset(self) -> None:
        self.decode_s, self.decodes, self.token_rows, self.token_decodes = 0.0, 0, 0, 0
        self.rows, self.single_s, self.head_ns, self.prompt_s = 0, [], [], 0.0


def run_path(name: str, fn, probe: Probe) -> dict:
    probe.reset()
    t0 = time.perf_counter()
    explanations = fn()
    wall = time.perf_counter() - t0
    stats = [e.stats for e in explanations]
    tokens = sum(s.eval_tokens for s in stats)
    constraint = [x for s in stats for x in s.constraint_us]
    return dict(name=name, wall=wall, tokens=tokens, n=len(explanations),
                texts=[str(e) for e in explanations],
                tok_s=tokens / wall, topics_s=len(explanations) / wall,
                sampled_s=probe.token_rows / wall,
                width=probe.token_rows / probe.token_decodes if probe.token_decodes else 0.0,
                decode_share=probe.decode_s / wall,
                constraint_med=statistics.median(constraint) if constraint else float("nan"),
                constraint_p99=pct(constraint, 0.99),
                passes=probe.decodes, rows=probe.rows, prompt_s=probe.prompt_s,
                one_row_ms=statistics.median(probe.single_s) * 1e3 if probe.single_s else float("nan"),
                head_med_us=statistics.median(probe.head_ns) / 1e3 if probe.head_ns else float("nan"),
                stops={k: sum(s.stopped_by == k for s in stats) for k in ("model", "grammar", "budget")})


class ForwardLimit:
    """Tokens/s of ``Context.decode`` at each width, argmax only, through the output head the engine
    uses: ``max(widths)`` sequences each hold the engine's prompt, then every step decodes one token
    per sequence and takes the argmax of its logits."""

    def __init__(self, explainer, prompt: list[int], widths, steps: int) -> None:
        model = explainer.model
        self.widths, self.steps, self.prompt = tuple(widths), steps, prompt
        n_seq = max(widths)
        per_seq = -(-(len(prompt) + steps + 16) // 256) * 256  # attention reads only the cells in use
        self.ctx = ctx = context_module.Context(model, n_seq=n_seq, n_ctx=n_seq * per_seq)
        self.trimmed = bool(ctx.head_ok and ctx.head is not None and len(ctx.head.tokens))
        self.how = (f"candidate-only head over {len(ctx.head.tokens)} tokens, as in the engine's emoji phase"
                    if self.trimmed else "llama.cpp's full-vocabulary logits (the head is off, as in the engine)")
        for i in range(0, len(prompt), ctx.n_batch):
            chunk = prompt[i:i + ctx.n_batch]
            last = i + len(chunk) == len(prompt)
            ctx.decode(chunk, range(i, i + len(chunk)), [0] * len(chunk),
                       [last and j == len(chunk) - 1 for j in range(len(chunk))], full_logits=not self.trimmed)
        self.first = self._argmax(0)
        state = ctx.state_get(0)
        for s in range(1, n_seq):
            if not ctx.state_set(s, state):
                raise RuntimeError("llama.cpp refused a sequence state")

    def _argmax(self, k: int) -> int:
        if self.trimmed:
            return int(self.ctx.head.tokens[int(np.argmax(self.ctx.candidate_logits(k)))])
        return int(np.argmax(self.ctx.logits(k)))

    def measure(self) -> dict[int, float]:
        ctx, n = self.ctx, len(self.prompt)
        out = {}
        for width in self.widths:
            toks = [self.first] * width
            for i in range(2 + self.steps):  # two warm-up steps
                if i == 2:
                    t0 = time.perf_counter()
                ctx.decode(toks, [n + i] * width, list(range(width)), [True] * width,
                           full_logits=not self.trimmed)
                toks = [self._argmax(k) for k in range(width)]
            out[width] = width * self.steps / (time.perf_counter() - t0)
            for s in range(width):
                ctx.seq_rm(s, n, -1)
        return out

    def close(self) -> None:
        self.ctx.close()


def capture_prompt(explainer, topic: str, options: dict) -> list[int]:
    """The token ids the engine evaluates for ``topic`` (shared prefix + own part), captured by
    wrapping ``Engine._tokens`` for one call."""
    engine = explainer.engine
    seen: list[list[int]] = []
    original = engine._tokens

    def spy(prompt):
        shared, own = original(prompt)
        seen.append(list(shared) + list(own))
        return shared, own

    engine._tokens = spy
    try:
        explainer.explain(topic, **options)
    finally:
        del engine._tokens
    return max(seen, key=len)


def repeat_sizes(ex, topics: list[str], sizes: list[int], rounds: int, seed: int, options: dict) -> None:
    """``--sizes``: explain_many at each size, in ``rounds`` interleaved rounds; medians per size."""
    ex.explain_many(topics[:4], batch_size=4, seed=seed, progress=False, **options)  # warm-up
    probe = Probe()
    probe.install()
    walls: dict[int, list[float]] = {s: [] for s in sizes}
    try:
        for r in range(rounds):
            for size in sizes:
                row = run_path(f"explain_many bs={size}", lambda w=size: ex.explain_many(
                    topics, batch_size=w, seed=seed, progress=False, **options), probe)
                walls[size].append(row["wall"])
                print(f"round {r + 1} batch size {size:2d}: {row['wall']:6.2f} s, "
                      f"{row['decode_share']:4.0%} in llama_decode", flush=True)
    finally:
        probe.remove()
    print(f"{ex.model_name}, {ex.model.load_info.n_threads} threads, {len(topics)} topics, seed {seed}")
    base = statistics.median(walls[sizes[0]])
    for size in sizes:
        med = statistics.median(walls[size])
        print(f"batch size {size:2d}: median {med:6.2f} s  ({base / med:4.2f}x batch size {sizes[0]})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--topics", type=int, default=None,
                    help="how many topics (default 48; 16 with --quick; 24 with --sizes)")
    ap.add_argument("--quick", action="store_true", help="fewer topics, limit steps and best-of-N topics")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--sizes", type=int, nargs="+", metavar="N",
                    help="only explain_many at these batch sizes, repeated in interleaved rounds")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of --sizes (default 2)")
    args = ap.parse_args(argv)
    if args.sizes and (args.quick or args.json):
        ap.error("--sizes measures batch sizes alone: leave out --quick and --json")
    n_topics = args.topics or (24 if args.sizes else 16 if args.quick else 48)
    limit_steps = 24 if args.quick else 64
    n_best = 3 if args.quick else 6

    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          f"(other processes share this machine: a load above the thread count slows every figure)")
    topics_all = [t["topic"] for t in json.loads((HERE / "topics.json").read_text(encoding="utf-8"))["topics"]]
    topics = [topics_all[k % len(topics_all)] for k in range(n_topics)]
    best_topics = topics[:n_best]
    options = {} if args.max_tokens is None else {"max_tokens": args.max_tokens}

    t0 = time.perf_counter()
    ex = Explainer(args.model)
    load_s = time.perf_counter() - t0
    print(f"model {ex.model_name} (load {load_s:.1f} s), {ex.model.load_info.n_threads} threads, "
          f"{n_topics} topics from bench/topics.json, seeds {args.seed}..{args.seed + n_topics - 1}, "
          f"options {options or 'defaults'}, sampler {active_implementation()}")
    if args.sizes:
        repeat_sizes(ex, topics, args.sizes, args.rounds, args.seed, options)
        ex.close()
        return 0

    t0 = time.perf_counter()
    prompt = capture_prompt(ex, topics[0], {"seed": args.seed, **options})
    ex.explain_many(topics, batch_size=16, seed=args.seed, progress=False, **options)
    for k, t in enumerate(best_topics):
        ex.explain(t, seed=args.seed + k, candidates=args.candidates, **options)
    print(f"warm-up {time.perf_counter() - t0:.1f} s (untimed: explain_many batch_size=16 and best-of-"
          f"{args.candidates} on the same topics, so the grammar judge's verdicts are remembered)")
    rss_engine_warm = rss_mb()

    limit = ForwardLimit(ex, prompt, WIDTHS, limit_steps)
    limit_before = limit.measure()
    probe = Probe()
    probe.install()
    try:
        rows = [run_path("sequential explain", lambda: [ex.explain(t, seed=args.seed + k, **options)
                                                        for k, t in enumerate(topics)], probe)]
        for width in WIDTHS:
            rows.append(run_path(f"explain_many bs={width}", lambda w=width: ex.explain_many(
                topics, batch_size=w, seed=args.seed, progress=False, **options), probe))
        one = run_path("one answer", lambda: [ex.explain(t, seed=args.seed + k, **options)
                                               for k, t in enumerate(best_topics)], probe)
        best = run_path(f"best-of-{args.candidates}", lambda: [
            ex.explain(t, seed=args.seed + k, candidates=args.candidates, **options)
            for k, t in enumerate(best_topics)], probe)
    finally:
        probe.remove()
    limit_after = limit.measure()
    limit.close()
    rss_end = rss_mb()
    lim = {w: max(limit_before[w], limit_after[w]) for w in WIDTHS}

    seq = rows[0]
    print()
    print(f"{'path':20s} {'wall s':>6s} {'tokens':>6s} {'tok/s':>6s} {'topics/s':>8s} {'x seq':>5s} "
          f"{'passes':>6s} {'rows':>5s} {'rows/pass':>9s} {'1-row ms':>8s} {'sampled/s':>9s} {'limit':>6s} {'of limit':>8s} {'in llama':>8s} {'prompt s':>8s} "
          f"{'constraint us med/p99':>21s} {'head us':>7s} {'= seq text':>10s}")
    for r in rows + [one, best]:
        width = int(r["name"].split("=")[1]) if "bs=" in r["name"] else 1
        same = (f"{sum(a == b for a, b in zip(r['texts'], seq['texts'])):4d}/{r['n']:<4d}"
                if "bs=" in r["name"] or r is seq else "")
        of = (f"{r['sampled_s']:9.1f} {lim[width]:6.1f} {r['sampled_s'] / lim[width]:8.2f}" if r in rows
              else f"{r['sampled_s']:9.1f} {'':6s} {'':8s}")
        print(f"{r['name']:20s} {r['wall']:6.1f} {r['tokens']:6d} {r['tok_s']:6.1f} {r['topics_s']:8.3f} "
              f"{r['tok_s'] / seq['tok_s']:5.2f} {r['passes']:6d} {r['rows']:5d} {r['width']:9.2f} {r['one_row_ms']:8.1f} {of} "
              f"{r['decode_share']:8.0%} {r['prompt_s']:8.1f} {r['constraint_med']:9.1f} / {r['constraint_p99']:9.1f} "
              f"{r['head_med_us']:7.1f} {same:>10s}")
    print("  tokens: answer tokens (Stats.eval_tokens); tok/s, topics/s: aggregate over the wall time, prompts "
          "included; x seq: tok/s over sequential's;\n  passes, rows: llama_decode calls and rows "
          "in them (prompts included); rows/pass: mean sequences per forward pass that carried sampled tokens;\n  "
          "1-row ms: median llama_decode of one sampled token; sampled/s: rows carrying a sampled token (words, emoji, separators) per second;\n"
          "  limit: the forward-pass limit (below) at the batch size, of limit: sampled/s over it; in llama: share of the wall\n"
          "  time inside llama_decode; prompt s: of which prompt pieces; constraint: Stats.constraint_us pooled over every token of every sequence; "
          "head: candidate logits per row;\n  = seq text: texts identical to sequential's (same topic, same seed)")
    print()
    print(f"forward-pass limit ({limit_steps} steps per width, argmax only, no constraint; {limit.how}); "
          f"measured before and after the engine paths, the better one kept:")
    for w in WIDTHS:
        print(f"  {w:2d} rows: {lim[w]:6.1f} tok/s ({lim[w] / lim[1]:.2f}x of 1 row)  "
              f"[before {limit_before[w]:.1f}, after {limit_after[w]:.1f}]")
    print(f"best-of-{args.candidates} on {n_best} topics: {best['wall']:.1f} s against {one['wall']:.1f} s for one answer "
          f"each: {best['wall'] / one['wall']:.2f}x the wall time ({best['wall'] / n_best:.2f} s vs "
          f"{one['wall'] / n_best:.2f} s per topic)")
    print(f"peak RSS: {rss_engine_warm:.0f} MB after load, warm-up and the engine's context for 16 sequences; "
          f"{rss_end:.0f} MB at the end (the forward-pass limit's own context included)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    d = _batch_size(None, ex.model.load_info.gpu_offload)  # the default on this machine
    default = next(r for r in rows if r["name"] == f"explain_many bs={d}")
    checks = [
        (f"explain_many at its default batch size ({d}) vs sequential, tokens/s",
         default["tok_s"] / seq["tok_s"], f">= {GOALS['speedup']}", default["tok_s"] / seq["tok_s"] >= GOALS["speedup"]),
        (f"explain_many bs={d}, sampled rows/s vs the forward-pass limit at {d} rows",
         default["sampled_s"] / lim[d], f">= {GOALS['of_limit']}", default["sampled_s"] / lim[d] >= GOALS["of_limit"]),
        (f"best-of-{args.candidates} vs one answer, wall time", best["wall"] / one["wall"],
         f"<= {GOALS['best_of_8']}", best["wall"] / one["wall"] <= GOALS["best_of_8"]),
        (f"constraint median per token per sequence at bs={d}, us", default["constraint_med"],
         f"<= {GOALS['constraint_us']:.0f}", default["constraint_med"] <= GOALS["constraint_us"]),
        ("for scale: the forward-pass limit at 16 rows vs 1 row", lim[16] / lim[1],
         "(no batched path can beat it)", None),
        ("for scale: sequential explain vs the forward-pass limit at 1 row", seq["tok_s"] / lim[1], "", None),
    ]
    print()
    print("ratios against the issue's goals (Gemma 3 270M, this CPU, this run):")
    for what, value, goal, ok in checks:
        verdict = "" if ok is None else ("met" if ok else "NOT met")
        print(f"  {what:68s} {value:7.2f}  {goal:30s} {verdict}")

    if args.json:
        args.json.write_text(json.dumps(dict(
            command=sys.argv, model=ex.model_name, topics=n_topics,
            rows=[{k: v for k, v in r.items() if k != "texts"} for r in rows + [one, best]],
            limit=lim, limit_before=limit_before, limit_after=limit_after, limit_head=limit.how,
            rss_mb=dict(engine=rss_engine_warm, end=rss_end)), indent=1), encoding="utf-8")
    ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
