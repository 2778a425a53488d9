"""The llguidance self-check and decode benchmark: ``python bench/llg/compare.py``.

llguidance constrains decoding with the same grammar on the same llama.cpp vocabulary as emogram's
own engine (``constraint.py``; the grammar converted by ``lark_grammar.py``). This script checks it
(the conversion's cases, agreement with emogram's checkers: ``checks.py``) and times a
60-token constrained greedy decode with smollm2-135m and gemma3-270m.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import llguidance  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checks import (CONVERSION_CASES, check_agreement, check_conversion, check_variants,  # noqa: E402
                        replay_check)
from constraint import LLGuidanceConstraint  # noqa: E402
from lark_grammar import convert_lark  # noqa: E402
from emogram.backend.single_sequence import SingleSequence  # noqa: E402


def _us(xs: Sequence[float]) -> tuple[float, float]:
    """median and p99 (nearest rank) of seconds, in microseconds."""
    if not xs:
        return 0.0, 0.0
    s = sorted(xs)
    p99 = s[min(len(s) - 1, max(0, int(np.ceil(0.99 * len(s))) - 1))]
    return statistics.median(s) * 1e6, p99 * 1e6


def decode(model: Any, c: LLGuidanceConstraint | None, prompt: str, max_tokens: int = 60) -> dict[str, Any]:
    """(3): greedy constrained decode, each mask timed; returns the text and the timings.

    ``c=None`` is the unconstrained baseline (same loop, plain argmax, never stops early), run to
    tell the model's own speed on this (shared, noisy) machine from the constraint's cost."""
    if c is not None:
        c.reset()
    prompt_tokens = model.tokenize(prompt, add_special=True)
    seq = SingleSequence(model)
    try:
        seq.prefill(prompt_tokens)
        mask_s: list[float] = []  # bitmask + unpack to bool
        raw_s: list[float] = []  # llguidance's bitmask alone
        step_s: list[float] = []  # everything but the model: mask, -inf copy, argmax, accept
        eval_s: list[float] = []  # seq.push (one forward pass)
        out: list[int] = []
        stopped = "budget"
        t_start = time.perf_counter()
        for _ in range(max_tokens):
            logits = seq.logits()
            t0 = time.perf_counter()
            if c is None:
                tok = int(np.argmax(logits))
            else:
                c.bitmask()
                t1 = time.perf_counter()
                mask = c.mask()
                t2 = time.perf_counter()
                raw_s.append(t1 - t0)
                mask_s.append(t2 - t0)
                if c.only_eos_allowed():
                    stopped = "grammar (only an end token allowed)"
                    break
                masked = logits.copy()
                masked[~mask] = -np.inf
                tok = int(np.argmax(masked))
                if c.is_eos(tok):
                    if not c.is_accepting():
                        raise RuntimeError("an end token was allowed in a non-accepting state")
                    stopped = "model (argmax is an end token)"
                    break
                c.accept(tok)
            t3 = time.perf_counter()
            step_s.append(t3 - t0)
            out.append(tok)
            seq.push(tok)
            eval_s.append(time.perf_counter() - t3)
        elapsed = time.perf_counter() - t_start
    finally:
        seq.close()
    pieces = model.pieces()
    text = b"".join(pieces[t] for t in out).decode("utf-8", errors="replace")
    med, p99 = _us(mask_s)
    rmed, rp99 = _us(raw_s)
    smed, sp99 = _us(step_s)
    emed, _ = _us(eval_s)
    per_token, _ = _us([a + b for a, b in zip(step_s, eval_s)])
    return {"text": text, "tokens": out, "n": len(out), "seconds": elapsed,
            "tok_s": len(out) / elapsed if elapsed else 0.0, "stopped": stopped,
            "mask_median_us": med, "mask_p99_us": p99, "raw_median_us": rmed, "raw_p99_us": rp99,
            "step_median_us": smed, "step_p99_us": sp99, "eval_median_ms": emed / 1e3,
            "eval_tok_s": 1e6 / emed if emed else 0.0,
            "median_tok_s": 1e6 / per_token if per_token else 0.0,
            "mask_total_ms": sum(mask_s) * 1e3, "steps": len(mask_s),
            "accepting": c.is_accepting() if c is not None else False}



def replay_timing(c: LLGuidanceConstraint, tokens: list[int], repeats: int = 20) -> dict[str, float]:
    """Mask time without the model: the decoded tokens replayed ``repeats`` times, every mask
    computed afresh and timed (more samples than one decode, and no llama.cpp threads running)."""
    mask_s: list[float] = []
    raw_s: list[float] = []
    for _ in range(repeats):
        c.reset()
        for t in tokens + [None]:
            t0 = time.perf_counter()
            c.bitmask()
            t1 = time.perf_counter()
            c.mask()
            t2 = time.perf_counter()
            raw_s.append(t1 - t0)
            mask_s.append(t2 - t0)
            if t is not None:
                c.accept(t)
    med, p99 = _us(mask_s)
    rmed, rp99 = _us(raw_s)
    return {"n": len(mask_s), "mask_median_us": med, "mask_p99_us": p99, "raw_median_us": rmed,
            "raw_p99_us": rp99}


def _show_decode(label: str, r: dict[str, Any]) -> None:
    print(f"  {label}: {r['n']} tokens in {r['seconds'] * 1e3:.0f} ms = {r['tok_s']:.1f} tok/s wall; "
          f"{r['median_tok_s']:.1f} tok/s from the median step (forward pass median "
          f"{r['eval_median_ms']:.1f} ms); stopped by {r['stopped']}")
    if r["steps"]:
        print(f"      mask (bitmask + unpack to bool) median {r['mask_median_us']:.0f} us, p99 "
              f"{r['mask_p99_us']:.0f} us over {r['steps']} steps ({r['mask_total_ms']:.1f} ms in all);"
              f" llguidance bitmask alone {r['raw_median_us']:.0f} / {r['raw_p99_us']:.0f} us; whole "
              f"constraint step (mask, -inf copy, argmax, accept) {r['step_median_us']:.0f} / "
              f"{r['step_p99_us']:.0f} us")


def run_model(name: str, prompt: str, max_tokens: int, full_checks: bool) -> dict[str, Any]:
    from emogram import parse
    from emogram.backend import models
    from emogram.constraint.matcher import matcher_for
    from emogram.language.grammar import compile_grammar, inventory_lark

    print(f"\n=== {name} ===")
    t0 = time.perf_counter()
    model = models.load(name)
    print(f"  model: {model.name}, n_vocab {model.n_vocab}, end tokens {model.eog_tokens()}, "
          f"loaded in {time.perf_counter() - t0:.2f} s, {model.load_info.n_threads} threads")
    grammar = compile_grammar()
    c = LLGuidanceConstraint(model, grammar.lark)
    print(f"  (1) tokenizer (llama.cpp bridge) {c.tokenizer_seconds:.2f} s; grammar convert + compile "
          f"{c.compile_seconds * 1e3:.1f} ms; first mask {c.first_mask_seconds * 1e3:.2f} ms; "
          f"warnings: {c.warnings or 'none'}; end tokens {[int(t) for t in c.eos_tokens]}; "
          f"{int(np.count_nonzero(c.mask()))} tokens allowed at the start")
    inv = LLGuidanceConstraint(model, inventory_lark())
    print(f"      inventory grammar: compiled in {inv.compile_seconds * 1e3:.1f} ms, "
          f"{int(np.count_nonzero(inv.mask()))} tokens allowed at the start")
    ok = True
    if full_checks:
        print("  (2) agreement:")
        ok &= check_agreement(model, grammar, c)
        ok &= check_variants(model, grammar, c)
    print(f"  (3) decode, prompt {prompt!r}, greedy, at most {max_tokens} tokens:")
    cold = decode(model, c, prompt, max_tokens)
    _show_decode("first run (cold llguidance caches)", cold)
    r = decode(model, c, prompt, max_tokens)
    _show_decode("second run", r)
    base = decode(model, None, prompt, r["n"] or 1)
    _show_decode("unconstrained baseline, same number of tokens", base)
    if r["tokens"] != cold["tokens"]:
        print("  ! the two runs produced different tokens")
        ok = False
    forced = LLGuidanceConstraint(model, grammar.lark, forcing=True)
    decode(model, forced, prompt, max_tokens)
    rf = decode(model, forced, prompt, max_tokens)
    _show_decode("with llguidance's byte forcing (not the same constraint; second run)", rf)
    ours = matcher_for(grammar).text_accepted(r["text"])
    try:
        parse(r["text"], grammar=grammar)
        parsed = True
    except Exception:
        parsed = False
    print(f"  text: {r['text']!r}")
    print(f"  complete per llguidance: {r['accepting']}; emogram matcher: {ours}; "
          f"language.parse: {'parses' if parsed else 'raises'}"
          f"{'' if rf['tokens'] == r['tokens'] else '; the forcing run wrote ' + repr(rf['text'])}")
    if r["accepting"]:
        ok &= ours and parsed
    rt = replay_timing(c, r["tokens"])
    rtf = replay_timing(forced, rf["tokens"])
    print(f"  mask timing by replay of the decoded tokens (20 times, {rt['n']} masks, no model): median "
          f"{rt['mask_median_us']:.0f} us, p99 {rt['mask_p99_us']:.0f} us (bitmask alone "
          f"{rt['raw_median_us']:.0f} / {rt['raw_p99_us']:.0f} us); with forcing {rtf['mask_median_us']:.0f}"
          f" / {rtf['mask_p99_us']:.0f} us (bitmask alone {rtf['raw_median_us']:.0f} / "
          f"{rtf['raw_p99_us']:.0f} us)")
    diffs = replay_check(model, grammar, c, r["tokens"])
    print(f"  full-mask comparison with emogram's matcher along the decode: {len(diffs)} differences")
    for d in diffs[:5]:
        print(f"       {d}")
    ok &= not diffs
    r.update(ok=ok, name=name, n_vocab=model.n_vocab, forcing=rf, base=base, replay=rt)
    return r


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="llguidance backend self-check and decode benchmark")
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--prompt", default="Topic: photosynthesis\nEmoji:\n")
    ap.add_argument("--tokens", type=int, default=60)
    args = ap.parse_args(argv)

    print(f"llguidance {llguidance.__version__} ({llguidance.get_version()}), numpy {np.__version__}")
    failures = check_conversion()
    print(f"convert_lark: {len(CONVERSION_CASES) - len(failures)}/{len(CONVERSION_CASES)} cases pass")
    for f in failures:
        print(f"  FAIL {f}")
    from emogram.language.grammar import compile_grammar
    converted = convert_lark(compile_grammar().lark)
    print("converted grammar (comments dropped, EMOJI regex shortened):")
    for line in converted.splitlines():
        if line and not line.startswith("//"):
            print(f"  {line if len(line) < 90 else line[:60] + ' ... ' + line[-12:]}")

    ok = not failures
    results = []
    for k, name in enumerate(args.models):
        r = run_model(name, args.prompt, args.tokens, full_checks=(k == 0))
        ok &= r["ok"]
        results.append(r)
    print("\nsummary (second decode run; mask = llguidance bitmask + unpack to one bool per token;"
          " tok/s is wall clock on a shared 2-core machine, see the baseline)")
    for r in results:
        f, b = r["forcing"], r["base"]
        print(f"  {r['name']:13s} vocab {r['n_vocab']:6d}: {r['tok_s']:6.1f} tok/s wall, "
              f"{r['median_tok_s']:.1f} from the median step ({r['n']} tokens; unconstrained "
              f"{b['tok_s']:.1f} / {b['median_tok_s']:.1f}); mask median {r['mask_median_us']:.0f} us, p99 "
              f"{r['mask_p99_us']:.0f} us (bitmask alone {r['raw_median_us']:.0f} / "
              f"{r['raw_p99_us']:.0f} us; whole step {r['step_median_us']:.0f} / {r['step_p99_us']:.0f}"
              f" us); replayed masks {r['replay']['mask_median_us']:.0f} / {r['replay']['mask_p99_us']:.0f}"
              f" us; with forcing: mask {f['mask_median_us']:.0f} / {f['mask_p99_us']:.0f} us  "
              f"{'OK' if r['ok'] else 'FAIL'}")
    print("self-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
