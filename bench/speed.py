"""Speed, side by side in one process: stock llama-cpp-python with and without grammars, llguidance,
and the emogram engine, on the same model, prompts and token budget.

    python bench/speed.py                         # default model, 3 rounds x 4 prompts
    python bench/speed.py --model smollm2-135m --rounds 5
    python bench/speed.py --device gpu            # on a CUDA / Metal build (see bench/gpu.sh)

Paths (interleaved: every round runs each prompt through every path, in a rotating order):
  stock             Llama.create_completion, no grammar: the baseline (ratio 1.00)
  stock+flat-gbnf   the same with one flat alternation of all emoji as literals (the naive grammar),
                    time-capped: it barely moves
  stock+gbnf        the same with emogram's compact GBNF (LlamaGrammar.from_string)
  llguidance        llguidance's mask over the whole vocabulary each step (bench/llg/constraint.py), the same
                    grammar in its lark dialect, sampling among the allowed tokens
  emogram           emogram's engine (pre-filter, rejection sampling, llama.cpp's grammar as judge),
                    with the C sampler, and again with the pure-Python one (EMOGRAM_PURE_PYTHON)

Printed: tokens/s and its ratio to stock, the constraint's own time per token (median and p99, in
microseconds; for stock+gbnf estimated as its time per token minus stock's on the same prompt),
grammar generation and compile times, model load time, time to first emoji, peak RSS.
Written: bench/results/speed-<model>-<date>.json and, when matplotlib is installed, a PNG chart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import json
import platform
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import emoji as emoji_package
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import llama_cpp  # noqa: E402
from llama_cpp import Llama, LlamaGrammar  # noqa: E402

from emogram import compile_grammar  # noqa: E402
from emogram.api import _engine_for, build_request  # noqa: E402
from emogram.backend import forward_thread, models  # noqa: E402
from emogram.backend.grammar_sampler import GrammarSampler  # noqa: E402
from emogram.backend.machine import native_available, use_extra_buffers  # noqa: E402
from emogram.decoding.sampling import SamplingParams, make_sampler  # noqa: E402
from emogram.knowledge import prompts  # noqa: E402
from emogram.language.ebnf import Lit  # noqa: E402
from emogram.language.grammar import structure_rules  # noqa: E402
from emogram.backend.single_sequence import SingleSequence  # noqa: E402

PROMPT_TOPICS = ["transformers (machine learning)", "photosynthesis", "the French Revolution", "making coffee"]
PARAMS = SamplingParams()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


@contextlib.contextmanager
def amx_guard():
    """Stock Llama() cannot set use_extra_bufts: give it emogram's choice (a no-op off AMX)."""
    original = llama_cpp.llama_model_default_params

    def params():
        p = original()
        p.use_extra_bufts = use_extra_buffers()
        return p

    llama_cpp.llama_model_default_params = params
    try:
        yield
    finally:
        llama_cpp.llama_model_default_params = original


def flat_gbnf() -> str:
    """The naive grammar: emogram's structure, but the emoji rule one flat list of literals."""
    from emogram.language.ebnf import _gbnf_expr, simplify
    from emogram.language.grammar import content_emoji
    from emogram.language.unicode import EmojiFilter
    rules = structure_rules(compile_grammar().shape)
    lines = [f"{name} ::= {_gbnf_expr(simplify(expr))}" for name, expr in rules.items()]
    alts = " | ".join(_gbnf_expr(Lit(e)) for e in content_emoji(EmojiFilter()))
    return "\n".join(lines) + f"\nemoji ::= {alts}\n"


class Bench:
    def __init__(self, model_name: str, device: str, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.info: dict = {"model": model_name, "device": device, "max_tokens": max_tokens,
                           "date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                           "llama_cpp_python": llama_cpp.__version__}
        t0 = time.perf_counter()
        self.model = models.load(model_name, device=device)
        self.info["load_seconds_emogram"] = time.perf_counter() - t0
        self.info["rss_mb_after_emogram_load"] = rss_mb()
        self.engine = _engine_for(self.model)
        t0 = time.perf_counter()
        with amx_guard(), contextlib.redirect_stderr(None):
            self.stock = Llama(model_path=str(self.model.path), n_ctx=2048, n_threads=self.model.load_info.n_threads,
                               n_threads_batch=self.model.load_info.n_threads,
                               n_gpu_layers=self.model.load_info.n_gpu_layers, verbose=False, seed=1)
        self.info["load_seconds_stock"] = time.perf_counter() - t0
        self.info["rss_mb_after_stock_load"] = rss_mb()
        # grammar generation and compilation
        compile_grammar.cache_clear()
        t0 = time.perf_counter()
        self.grammar = compile_grammar()
        self.info["grammar_generation_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        GrammarSampler(self.model, self.grammar.gbnf).close()
        self.info["llama_cpp_grammar_compile_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        self.engine.candidates(self.grammar, self._end_texts())
        self.info["emogram_prefilter_ms"] = (time.perf_counter() - t0) * 1e3
        self.gbnf = LlamaGrammar.from_string(self.grammar.gbnf, verbose=False)
        self.flat = LlamaGrammar.from_string(flat_gbnf(), verbose=False)
        self.info["flat_gbnf_bytes"] = len(flat_gbnf().encode())
        try:
            sys.path.insert(0, str(HERE / "llg"))
            from constraint import LLGuidanceConstraint
            t0 = time.perf_counter()
            self.llg = LLGuidanceConstraint(self.model, self.grammar.lark)
            self.info["llguidance_compile_ms"] = (time.perf_counter() - t0) * 1e3
            self.llg_seq = SingleSequence(self.model)
        except ImportError as exc:
            self.llg = None
            self.info["llguidance"] = f"not installed ({exc}); pip install llguidance"
        self.prompts = {t: prompts.build(self.model, t, self.grammar.shape, self.grammar.emoji_filter,
                                         think=False).text for t in PROMPT_TOPICS}

    def _end_texts(self) -> tuple[str, ...]:
        return ("\n\n",) if not self.model.chat_template else ()

    # -- paths: each returns a dict of figures for one answer --
    def run_emogram(self, topic: str, seed: int, implementation: str | None = None) -> dict:
        # The direct few-shot prompt (plan=False), the one every other path reads: this measures
        # the constrained decode itself. The default glossed answers add word steps (plan_tokens).
        request = build_request(seed=seed, max_tokens=self.max_tokens, plan=False)
        t0 = time.perf_counter()
        before = os.environ.get("EMOGRAM_PURE_PYTHON")
        if implementation:  # the same engine with the other sampler implementation (read per sequence)
            os.environ["EMOGRAM_PURE_PYTHON"] = "1" if implementation == "python" else "0"
        try:
            result = self.engine.explain(topic, request)
        finally:
            if before is None:
                os.environ.pop("EMOGRAM_PURE_PYTHON", None)
            else:
                os.environ["EMOGRAM_PURE_PYTHON"] = before
        s = result.stats
        if implementation and s.sampler != implementation:
            raise RuntimeError(f"asked for the {implementation} sampler, the engine used {s.sampler!r}")
        return {"tokens": s.eval_tokens, "seconds": s.eval_seconds, "constraint_us": s.constraint_us,
                "first_emoji_s": s.first_emoji_seconds, "wall_s": time.perf_counter() - t0, "text": result.text}

    def run_stock(self, topic: str, seed: int, grammar=None, cap_seconds: float | None = None) -> dict:
        prompt = self.prompts[topic]
        ctx = self.stock._ctx.ctx
        start = time.perf_counter()
        first_emoji = None
        pieces = []

        def stop_on_time(ids, logits):
            return cap_seconds is not None and time.perf_counter() - start > cap_seconds

        llama_cpp.llama_perf_context_reset(ctx)
        stream = self.stock.create_completion(
            prompt, max_tokens=self.max_tokens, temperature=PARAMS.temperature, top_k=PARAMS.top_k,
            top_p=PARAMS.top_p, min_p=PARAMS.min_p, seed=seed, grammar=grammar, stream=True,
            stopping_criteria=llama_cpp.StoppingCriteriaList([stop_on_time]))
        for chunk in stream:
            text = chunk["choices"][0]["text"]
            pieces.append(text)
            if first_emoji is None and emoji_package.emoji_count(text):
                first_emoji = time.perf_counter() - start
        wall = time.perf_counter() - start
        perf = llama_cpp.llama_perf_context(ctx)
        prompt_s = perf.t_p_eval_ms / 1e3
        tokens = max(perf.n_eval, 1)
        return {"tokens": tokens, "seconds": max(wall - prompt_s, 1e-9), "first_emoji_s": first_emoji,
                "wall_s": wall, "text": "".join(pieces)}

    def run_llguidance(self, topic: str, seed: int) -> dict:
        c = self.llg
        model = self.model
        g = self.grammar
        prompt = prompts.build(model, topic, g.shape, g.emoji_filter, think=False)
        shared, own = self.engine._tokens(prompt)  # the same tokens as emogram's
        seq = self.llg_seq  # kept across calls: the shared prefix is evaluated once, as emogram's is
        t0 = time.perf_counter()
        seq.prefill(list(shared) + own)
        c.reset()
        loop = time.perf_counter()
        prompt_s = loop - t0
        out = bytearray()
        constraint, tokens, first = [], 0, None
        pieces = model.pieces()
        for step in range(self.max_tokens):
            logits = seq.logits()
            s0 = time.perf_counter()
            allowed = np.flatnonzero(c.mask()).astype(np.int32)
            sampler = make_sampler(allowed, PARAMS, seed * 7919 + step)
            i = sampler.sample(logits, np.zeros(len(allowed)), np.zeros(len(allowed), dtype=np.uint8))
            tok = int(allowed[i])
            if c.is_eos(tok):
                constraint.append((time.perf_counter() - s0) * 1e6)
                break
            c.accept(tok)
            constraint.append((time.perf_counter() - s0) * 1e6)
            out += pieces[tok]
            tokens += 1
            if first is None and emoji_package.emoji_count(out.decode("utf-8", "ignore")):
                first = time.perf_counter() - t0
            if c.only_eos_allowed():
                break
            seq.push(tok)
        return {"tokens": tokens, "seconds": time.perf_counter() - loop, "constraint_us": constraint,
                "first_emoji_s": first, "wall_s": time.perf_counter() - t0 + 0 * prompt_s,
                "text": out.decode("utf-8", "replace")}

    def paths(self) -> dict:
        # Stock runs on emogram's forward thread, like every emogram forward pass: two threads running
        # llama.cpp each get an OpenMP team, and libgomp then slows both (bench/two_models.py).
        p = {"stock": lambda t, s: forward_thread.run(self.run_stock, t, s),
             "stock+gbnf": lambda t, s: forward_thread.run(self.run_stock, t, s, self.gbnf),
             "emogram": lambda t, s: self.run_emogram(t, s, "native" if native_available() else None),
             "emogram (python sampler)": lambda t, s: self.run_emogram(t, s, "python")}
        if self.llg is not None:
            p["llguidance"] = self.run_llguidance
        return p


def summarise(b: Bench, runs: dict[str, list[dict]], flat: dict | None) -> dict:
    stock = runs["stock"]
    stock_rate = sum(r["tokens"] for r in stock) / sum(r["seconds"] for r in stock)
    stock_ms_per_token = {r["key"]: r["seconds"] / r["tokens"] for r in stock}
    rows = {}
    for name, rs in runs.items():
        rate = sum(r["tokens"] for r in rs) / sum(r["seconds"] for r in rs)
        cons = [x for r in rs for x in r.get("constraint_us", [])]
        if name == "stock+gbnf":  # estimate: time per token over stock's, prompt by prompt
            cons = [max(0.0, (r["seconds"] / r["tokens"] - stock_ms_per_token[r["key"]]) * 1e6) for r in rs]
        firsts = [r["first_emoji_s"] for r in rs if r["first_emoji_s"] is not None]
        rows[name] = {
            "tokens_per_s": rate, "ratio": rate / stock_rate, "tokens": sum(r["tokens"] for r in rs),
            "constraint_median_us": statistics.median(cons) if cons else None,
            "constraint_p99_us": pct(cons, 0.99) if cons else None,
            "constraint_estimated": name == "stock+gbnf",
            "first_emoji_s": statistics.median(firsts) if firsts else None,
            "emoji_only_answers": sum(_emoji_only(r["text"]) for r in rs), "answers": len(rs),
        }
    if flat is not None:
        rows["stock+flat-gbnf"] = {"tokens_per_s": flat["tokens"] / flat["seconds"],
                                   "ratio": flat["tokens"] / flat["seconds"] / stock_rate,
                                   "tokens": flat["tokens"], "constraint_median_us": None,
                                   "constraint_p99_us": None, "first_emoji_s": flat["first_emoji_s"],
                                   "emoji_only_answers": None, "answers": 1,
                                   "note": f"{flat['tokens']} pieces in a {flat['cap']:.0f} s cap"}
    return rows


def _emoji_only(text: str) -> bool:
    body = text.replace(" ", "").replace("\n", "")
    return bool(body) and emoji_package.purely_emoji(body)


def table(rows: dict, info: dict) -> str:
    order = ["stock", "stock+flat-gbnf", "stock+gbnf", "llguidance", "emogram", "emogram (python sampler)"]
    out = ["| path | tokens/s | vs stock | constraint µs/token (median / p99) | first emoji | emoji-only answers |",
           "|---|---|---|---|---|---|"]
    for name in order:
        if name not in rows:
            continue
        r = rows[name]
        cons = "—" if r["constraint_median_us"] is None else (
            f"{'~' if r.get('constraint_estimated') else ''}{r['constraint_median_us']:.0f} / {r['constraint_p99_us']:.0f}")
        first = "—" if r["first_emoji_s"] is None else f"{r['first_emoji_s'] * 1e3:.0f} ms"
        only = "—" if r["emoji_only_answers"] is None else f"{r['emoji_only_answers']}/{r['answers']}"
        note = f" ({r['note']})" if r.get("note") else ""
        out.append(f"| {name}{note} | {r['tokens_per_s']:.1f} | {r['ratio']:.2f} | {cons} | {first} | {only} |")
    extra = [
        f"model load: emogram {info['load_seconds_emogram']:.2f} s, stock {info['load_seconds_stock']:.2f} s",
        f"grammar generation {info['grammar_generation_ms']:.1f} ms; llama.cpp grammar compile "
        f"{info['llama_cpp_grammar_compile_ms']:.1f} ms; emogram pre-filter {info['emogram_prefilter_ms']:.0f} ms"
        + (f"; llguidance compile {info['llguidance_compile_ms']:.0f} ms" if "llguidance_compile_ms" in info else ""),
        f"peak RSS {info['peak_rss_mb']:.0f} MB (both models loaded; emogram alone {info['rss_mb_after_emogram_load']:.0f} MB)",
    ]
    return "\n".join(out) + "\n\n" + "\n".join(extra)


def chart(rows: dict, path: Path, title: str = "emogram speed benchmark") -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [n for n in ["stock", "stock+flat-gbnf", "stock+gbnf", "llguidance", "emogram",
                         "emogram (python sampler)"] if n in rows]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(names[::-1], [rows[n]["tokens_per_s"] for n in names[::-1]], color="#6a8caf")
    ax.set_xlabel("tokens / s")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def run_flat_capped(model_name: str, device: str, max_tokens: int, cap: float) -> dict:
    """The flat grammar can take minutes for one token, and a llama.cpp call cannot be interrupted,
    so this path runs in a child process that prints a line per streamed piece and is killed at the
    cap. (It is the only path not in this process; its model load is not counted.)"""
    import subprocess
    cmd = [sys.executable, str(Path(__file__).resolve()), "--model", model_name, "--device", device,
           "--max-tokens", str(max_tokens), "--flat-child"]
    import queue
    import threading
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    lines: "queue.Queue[tuple[float, str]]" = queue.Queue()

    def read() -> None:
        for line in child.stdout:  # type: ignore[union-attr]
            lines.put((time.perf_counter(), line))
        lines.put((time.perf_counter(), "END"))

    threading.Thread(target=read, daemon=True).start()
    stamps: list[float] = []
    first_emoji = None
    started = None
    try:
        while True:
            timeout = 600.0 if started is None else started + cap - time.perf_counter()
            if timeout <= 0:
                break
            try:
                now, line = lines.get(timeout=timeout)
            except queue.Empty:
                break
            if line.startswith("START"):
                started = now
                continue
            if line.startswith("END") or started is None:
                if line.startswith("END"):
                    break
                continue
            stamps.append(now)
            if first_emoji is None and emoji_package.emoji_count(json.loads(line)):
                first_emoji = now - started
    finally:
        child.kill()
        child.wait()
    if started is None:
        return {"tokens": 0, "seconds": cap, "first_emoji_s": None, "cap": cap}
    capped = time.perf_counter() >= started + cap
    seconds = cap if capped or not stamps else stamps[-1] - started
    return {"tokens": len(stamps), "seconds": seconds, "first_emoji_s": first_emoji, "cap": cap}


def flat_child(model_name: str, device: str, max_tokens: int) -> int:
    model = models.load(model_name, device=device)
    with amx_guard(), contextlib.redirect_stderr(None):
        llm = Llama(model_path=str(model.path), n_ctx=2048, n_threads=model.load_info.n_threads,
                    n_gpu_layers=model.load_info.n_gpu_layers, verbose=False, seed=1)
    grammar = LlamaGrammar.from_string(flat_gbnf(), verbose=False)
    g = compile_grammar()
    prompt = prompts.build(model, PROMPT_TOPICS[0], g.shape, g.emoji_filter, think=False).text
    print("START", flush=True)
    for chunk in llm.create_completion(prompt, max_tokens=max_tokens, grammar=grammar, stream=True, seed=1,
                                       temperature=PARAMS.temperature, top_k=PARAMS.top_k):
        print(json.dumps(chunk["choices"][0]["text"]), flush=True)
    print("END", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="preset or path (default: the default preset)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--flat-cap", type=float, default=60.0, help="seconds for the flat-GBNF path")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--flat-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    model_name = args.model or models.DEFAULT_PRESET
    if args.flat_child:
        return flat_child(model_name, args.device, args.max_tokens)
    b = Bench(model_name, args.device, args.max_tokens)
    paths = b.paths()
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    for name, fn in paths.items():  # warm-up: one answer each, not counted
        fn(PROMPT_TOPICS[0], 999)
    names = list(paths)
    for rnd in range(args.rounds):
        for k, topic in enumerate(PROMPT_TOPICS):
            shift = (rnd * len(PROMPT_TOPICS) + k) % len(names)
            for name in names[shift:] + names[:shift]:
                r = paths[name](topic, rnd * 100 + k)
                r["key"] = (rnd, topic)
                runs[name].append(r)
            print(f"round {rnd + 1}/{args.rounds}, {topic}: done", file=sys.stderr)
    flat = run_flat_capped(model_name, args.device, args.max_tokens, args.flat_cap) if args.flat_cap > 0 else None
    b.info["peak_rss_mb"] = rss_mb()
    rows = summarise(b, runs, flat)
    print(table(rows, b.info))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"speed-{Path(model_name).stem}-{b.info['date']}"
    (args.out / f"{stem}.json").write_text(json.dumps({"info": b.info, "rows": rows, "rounds": args.rounds,
                                                       "prompts": PROMPT_TOPICS}, indent=2, ensure_ascii=False))
    drew = chart(rows, args.out / f"{stem}.png", f"tokens/s, {model_name}, {b.info['machine']}, {b.info['date']}")
    print(f"\nwrote {args.out / (stem + '.json')}" + (f" and {stem}.png" if drew else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
