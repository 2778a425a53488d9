"""The llguidance constraint held against emogram's own checkers (``bench/llg/compare.py`` runs them).

The lark conversion's cases (``lark_grammar.py``); texts fed token by token through the constraint,
llguidance's whole mask compared before every token with emogram's matcher over emogram's candidate
tokens, and each verdict with ``emogram.parse``; the same along a decoded token sequence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from constraint import LLGuidanceConstraint
from lark_grammar import NO_FORCING, convert_lark


_PLAIN = {"fuse_runs": False, "forcing": True}  # syntax rules 1-2 only
CONVERSION_CASES: list[tuple[str, str, dict[str, bool]]] = [
    ('start: line ("\\n" LEAD " " line) ~ 0..3', 'start: line ("\\n" LEAD " " line){0,3}', _PLAIN),
    ("group: EMOJI ~ 1..3", "group: EMOJI{1,3}", _PLAIN),
    ("group: EMOJI ~ 2", "group: EMOJI{2}", _PLAIN),
    ("group: (a | b) ~ 2..5", "group: (a | b){2,5}", _PLAIN),
    ('A: "~ 1..2"  // a ~ 1..2 in a comment', 'A: "~ 1..2"  // a ~ 1..2 in a comment', _PLAIN),
    ('S: "\\"~ 3"', 'S: "\\"~ 3"', _PLAIN),
    ("E: /[\\x23\\x2a0-9]\\ufe0f\\u20e3/", "E: /[\\x23\\x2a0-9]\\u{fe0f}\\u{20e3}/", _PLAIN),
    ("E: /\\U0001f6d9|\\\\ufe0f/", "E: /\\u{1f6d9}|\\\\ufe0f/", _PLAIN),
    ("E: /\\N{ZERO WIDTH JOINER}/", "E: /\\u{200d}/", _PLAIN),
    ("E: /[a[&&b~~c]/", "E: /[a\\[&\\&b~\\~c]/", _PLAIN),
    ("E: /[]a]|\\/x/i", "E: /[\\]a]|\\/x/i", _PLAIN),
    ("group: EMOJI ~ 1..3\nT: X ~ 2",
     "group: EMOJI__1_3\nT: X{2}\n// fused runs of a terminal (one lexeme each: see convert_lark)\n"
     "EMOJI__1_3: EMOJI{1,3}\n", {"forcing": True}),
    ("a: B+ c*\n  | (B C)*", "a: B__1_INF c*\n  | (B C)*\n// fused runs of a terminal (one lexeme each: "
     "see convert_lark)\nB__1_INF: B+\n", {"forcing": True}),
    ("start: A", NO_FORCING + "\nstart: A", {}),
]


def check_conversion() -> list[str]:
    failures = []
    for src, want, kwargs in CONVERSION_CASES:
        got = convert_lark(src, **kwargs)
        if got != want:
            failures.append(f"convert_lark({src!r}, **{kwargs}) = {got!r}, expected {want!r}")
    return failures


VALID = ["📄 ➡️ 🔤🔢 ➕ 📍\n➡️ 👀🔄 🟰 🧠\n➡️ 🧱🧱🧱\n➡️ ⚡ 🆚 🐢", "❤️", "👍🏽 ➕ 🇺🇸"]
INVALID = ["❤", "hello", "📄 ➡️ ➡️📬", "📄  ➡️ 📬"]
# more, for the lexing question (adjacent emoji whose first could still grow) and ZWJ sequences
EXTRA_VALID = ["👍👍", "❤️❤️ ➡️ 👍🏽👍", "🧑\u200d💻 ➡️ ✍️📧\n➡️ 🏳️\u200d🌈"]
EXTRA_INVALID = ["👍👍👍👍", "🏽", "👍 👍", "❤️\n➡️"]


class _Oracle:
    """emogram's own recogniser (``emogram.constraint.matcher``) over emogram's candidate tokens
    (``emogram.constraint.prefilter``), for a full-mask comparison with llguidance at a state."""

    def __init__(self, model: Any, grammar: Any) -> None:
        from emogram.constraint.matcher import matcher_for
        from emogram.constraint.prefilter import prefilter
        self.matcher = matcher_for(grammar)
        cands = prefilter(model, self.matcher, ())
        self.content = [int(t) for t in cands.tokens[:cands.n_content]]
        self.ends = [int(t) for t in cands.tokens[cands.n_content:]]
        self.pieces = model.pieces()
        self.outside = np.ones(model.n_vocab, dtype=bool)
        self.outside[self.content] = False
        self.outside[self.ends] = False

    def verdicts(self, state: Any) -> np.ndarray:
        ok = np.zeros(len(self.outside), dtype=bool)
        adv = self.matcher.advance
        for t in self.content:
            ok[t] = adv(state, self.pieces[t]) is not None
        ok[self.ends] = self.matcher.accepting(state)
        return ok

    def compare(self, state: Any, mask: np.ndarray) -> list[str]:
        """Differences between emogram's verdicts and llguidance's mask at ``state``."""
        ours = self.verdicts(state)
        diffs = []
        for t in np.flatnonzero(ours != mask)[:8]:
            where = "" if not self.outside[t] else " (outside emogram's candidates)"
            diffs.append(f"token {t} {self.pieces[t]!r}{where}: emogram {bool(ours[t])}, "
                         f"llguidance {bool(mask[t])}")
        n = int(np.count_nonzero(ours != mask))
        if n > 8:
            diffs.append(f"... {n - 8} more")
        return diffs

    def step(self, state: Any, token: int) -> Any:
        if token in self.ends:
            return state
        nxt = self.matcher.advance(state, self.pieces[token])
        return None if nxt is None else nxt[0]


def _feed(c: LLGuidanceConstraint, model: Any, text: str, oracle: _Oracle | None = None,
          twin: LLGuidanceConstraint | None = None) -> tuple[bool, str, int, list[str]]:
    """Feed ``text``'s tokenization through ``c`` (``allowed`` before each ``accept``), then ask
    ``is_accepting``: (accepted, why, tokens fed, differences). With ``oracle`` the whole mask is
    compared with emogram's recogniser before every token and at the end; with ``twin`` the twin's
    masks must be identical to ``c``'s."""
    c.reset()
    if twin is not None:
        twin.reset()
    diffs: list[str] = []
    state = oracle.matcher.initial if oracle is not None else None
    tokens = model.tokenize(text, add_special=False)
    for k, t in enumerate(tokens):
        if oracle is not None and state is not None:
            diffs += oracle.compare(state, c.mask())
        if twin is not None and not np.array_equal(twin.mask(), c.mask()):
            diffs.append(f"twin grammar's mask differs before token {k}")
        if c.matcher.validate_tokens([t]) != int(c.allowed(t)):
            diffs.append(f"validate_tokens and the mask disagree on token {t}")
        if not c.allowed(t):
            return False, f"token {k} ({model.pieces()[t]!r}) refused", k, diffs
        c.accept(t)
        if twin is not None:
            twin.accept(t)
        if oracle is not None and state is not None:
            state = oracle.step(state, t)
    if oracle is not None and state is not None:
        diffs += oracle.compare(state, c.mask())
    if c.eos_allowed() != c.is_accepting():
        diffs.append("eos_allowed() and is_accepting() disagree at the end")
    if not c.is_accepting():
        return False, "not accepting at the end", len(tokens), diffs
    return True, "accepted", len(tokens), diffs


def check_agreement(model: Any, grammar: Any, c: LLGuidanceConstraint) -> bool:
    """(2): llguidance (converted grammar) against emogram's matcher and ``language.parse``."""
    from emogram import parse
    from emogram.constraint.matcher import matcher_for
    from emogram.errors import ParseError

    emogram_matcher = matcher_for(grammar)
    oracle = _Oracle(model, grammar)
    unfused = LLGuidanceConstraint(model, grammar.lark, fuse_runs=False)
    forcing = LLGuidanceConstraint(model, grammar.lark, forcing=True)
    print(f"  emogram's candidates: {len(oracle.content)} content tokens + end tokens {oracle.ends}; "
          f"the whole llguidance mask is compared with emogram's matcher before every token")
    ok_all = True
    cases = [(True, t, True) for t in VALID] + [(False, t, True) for t in INVALID] + \
        [(True, t, False) for t in EXTRA_VALID] + [(False, t, False) for t in EXTRA_INVALID]
    for expect, text, required in cases:
        got, why, n, diffs = _feed(c, model, text, oracle)
        ours = emogram_matcher.text_accepted(text)
        try:
            parse(text, grammar=grammar)
            parsed = True
        except ParseError:
            parsed = False
        agree = got == ours == parsed == expect and not diffs
        ok_all &= agree
        got_unfused = _feed(unfused, model, text)[0]
        got_forcing, _, _, fdiffs = _feed(forcing, model, text, oracle)
        print(f"  {'OK  ' if agree else 'FAIL'} {'' if required else '(extra) '}{text!r}: "
              f"llguidance {why} after {n} tokens; emogram matcher {ours}; language.parse "
              f"{'parses' if parsed else 'raises'}; expected {'valid' if expect else 'invalid'}; "
              f"mask differences {len(diffs)} | unfused runs: {got_unfused}; with forcing: "
              f"{got_forcing}, mask differences {len(fdiffs)}")
        for d in diffs[:5]:
            print(f"       {d}")
    return ok_all


def check_variants(model: Any, grammar: Any, c: LLGuidanceConstraint) -> bool:
    """Rules 1-2 of convert_lark change nothing for llguidance 1.9 (the raw text compiles to the
    same masks); the tokenizer built from Model.pieces() gives the same masks as the bridge."""
    raw = LLGuidanceConstraint(model, grammar.lark, convert=False)
    syntax_only = LLGuidanceConstraint(model, grammar.lark, fuse_runs=False, forcing=True)
    same_raw = all(not _feed(syntax_only, model, t, twin=raw)[3]
                   for t in VALID + INVALID + EXTRA_VALID + EXTRA_INVALID)
    print(f"  unconverted grammar == syntax-only conversion (rules 1-2), mask by mask: {same_raw}")
    pieces_c = LLGuidanceConstraint(model, grammar.lark, bridge="pieces")
    same_pieces = all(not _feed(pieces_c, model, t, twin=c)[3]
                      for t in VALID + INVALID + EXTRA_VALID + EXTRA_INVALID)
    print(f"  tokenizer from Model.pieces() (TokenizerWrapper) == llama.cpp bridge, mask by mask: "
          f"{same_pieces} (built in {pieces_c.tokenizer_seconds:.2f} s)")
    return same_raw and same_pieces



def replay_check(model: Any, grammar: Any, c: LLGuidanceConstraint, tokens: list[int]) -> list[str]:
    """Full-mask comparison with emogram's recogniser along a decoded token sequence."""
    oracle = _Oracle(model, grammar)
    c.reset()
    state = oracle.matcher.initial
    diffs: list[str] = []
    for t in tokens:
        diffs += oracle.compare(state, c.mask())
        c.accept(t)
        state = oracle.step(state, t)
    diffs += oracle.compare(state, c.mask())
    return diffs
