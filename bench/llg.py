"""llguidance backend for the constrained-decoding speed benchmark.

It constrains decoding with the SAME grammar (emogram's lark text, see ``emogram.language.grammar``) on the
SAME llama.cpp vocabulary as emogram's own engine, so the two can be timed side by side:

* the tokenizer is llguidance's llama.cpp bridge, ``llguidance.llamacpp.lltokenizer_from_vocab``,
  given the ``llama_vocab*`` that emogram's ``Model`` already holds (``model._vocab``, an int
  address in llama-cpp-python 0.3.x, which the bridge passes straight to llama.cpp); token bytes
  are ``llama_token_to_piece(..., special=True)``, exactly what ``Model.pieces()`` returns, with
  control tokens prefixed by 0xFF (llguidance's mark for "special, never matched by grammar text");
* the end tokens are all of the model's end-of-generation tokens (``model.eog_tokens()``), not only
  ``llama_vocab_eos``;
* the grammar is ``convert_lark(lark_text)`` compiled by ``LLMatcher.grammar_from_lark`` and
  checked by ``LLMatcher.validate_grammar_with_warnings``; one ``LLMatcher`` per constraint. Two of
  the conversion's rules change llguidance's behaviour, not only its spelling, and both are needed
  for the mask to be exactly the grammar's (checked token by token against emogram's matcher):
  runs of emoji are fused into one lexeme (llguidance's greedy byte lexer would refuse ``👍👍``),
  and llguidance's byte forcing is turned off (it would allow only the canonical token of forced
  bytes: after ``❤`` the token ``\xef\xb8\x8f`` but not ``\xef``). See ``convert_lark``;
* the mask is computed by ``LLMatcher.unsafe_compute_mask_ptr`` into a preallocated int32 bitmask
  (what ``llguidance.numpy.fill_next_token_bitmask`` does, less its Python asserts), then unpacked
  to one bool per token (``mask()``), or used as is (``bitmask()``).

``python bench/llg.py`` runs the self-check (conversion tests, agreement with emogram's checkers,
a timed 60-token constrained greedy decode with smollm2-135m and gemma3-270m).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llguidance  # noqa: E402
import llguidance.llamacpp  # noqa: E402
import llguidance.numpy  # noqa: E402
from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from single import SingleSequence  # noqa: E402

__all__ = ["LLGuidanceConstraint", "convert_lark", "make_tokenizer"]


# --- lark conversion ----------------------------------------------------------------------------

_REPEAT = re.compile(r"~[ \t]*(\d+)(?:[ \t]*\.\.[ \t]*(\d+))?")
_RULE_HEAD = re.compile(r"[ \t]*[?!]?([a-z_][a-z0-9_]*)(?:\.-?\d+)?[ \t]*:")
_TERM_HEAD = re.compile(r"[ \t]*([A-Z_][A-Z0-9_]*)(?:\.-?\d+)?[ \t]*:")
_TERM_AT_END = re.compile(r"(?<![A-Za-z0-9_])([A-Z_][A-Z0-9_]*)[ \t]*$")
NO_FORCING = '%llguidance {"no_forcing": true}'


def convert_lark(lark_text: str, *, fuse_runs: bool = True, forcing: bool = False) -> str:
    r"""emogram's lark (Python ``lark`` dialect) -> llguidance's lark dialect, same language.

    Rules (outside comments, string literals and regexes unless said otherwise):

    1. repetition: ``item ~ n`` -> ``item{n}``, ``item ~ lo..hi`` -> ``item{lo,hi}`` (the space
       before ``~`` is dropped so the braces bind to the item before them, a name or a group);
    2. regexes (``/.../``, Python ``re`` -> Rust ``regex`` syntax): ``\uXXXX`` -> ``\u{XXXX}``,
       ``\UXXXXXXXX`` -> ``\u{X...}``, ``\N{NAME}`` -> ``\u{X...}``; inside a character class a
       literal ``[`` is escaped and so is the second character of ``&&``, ``~~``, ``--`` (Rust reads
       those as nested classes and set operations, Python as literals); the rest is kept
       (``\xHH``, ``(?:...)``, literal emoji, ``\/``);
    3. fused runs (``fuse_runs``): in a grammar rule, a repeated TERMINAL (``T ~ lo..hi``,
       ``T+``, ``T*``) becomes one new terminal ``T__lo_hi: T{lo,hi}`` (``T__1_INF: T+``,
       ``T__0_INF: T*``). llguidance lexes greedily, byte by byte, with one byte of lookahead, so
       two adjacent lexemes cannot be split where the first could still grow and the next starts
       with the same byte: ``👍👍`` (U+1F44D may take a skin tone, and both the tone and the next
       emoji start with F0 9F) or ``❤️❤️`` (a ZWJ and ❤ both start with E2) would be refused. As
       one lexeme the run is matched by the regex automaton itself, exactly;
    4. no forcing (unless ``forcing``): a first line ``%llguidance {"no_forcing": true}``. Without
       it, where the grammar forces bytes (after ``❤`` only U+FE0F may follow) llguidance allows
       only the canonical tokenization of those bytes (token ``\xef\xb8\x8f``, not ``\xef``): a
       narrower token set than the grammar's, and faster, but not the same constraint.

    Comments and string literals (``"..."`` with their escapes) are kept as they are. llguidance
    1.9 would also read ``~ lo..hi`` and ``\uXXXX`` itself (the self-check compiles the
    unconverted text too and compares): rules 1-2 normalise to the documented spelling.
    """
    out: list[str] = []
    fused: dict[str, str] = {}
    defining = ""  # "rule" or "terminal": the definition the scanner is in
    i, n = 0, len(lark_text)
    at_line_start = True
    while i < n:
        if at_line_start:
            at_line_start = False
            if _RULE_HEAD.match(lark_text, i):
                defining = "rule"
            elif _TERM_HEAD.match(lark_text, i):
                defining = "terminal"
        c = lark_text[i]
        if c == "\n":
            out.append(c)
            i += 1
            at_line_start = True
        elif lark_text.startswith("//", i):  # comment to the end of the line
            j = lark_text.find("\n", i)
            j = n if j < 0 else j
            out.append(lark_text[i:j])
            i = j
        elif c == '"':
            j = _end_of_string(lark_text, i)
            out.append(lark_text[i:j])
            i = j
        elif c == "/":
            j = _end_of_regex(lark_text, i)
            out.append("/" + _convert_regex(lark_text[i + 1:j - 1]) + "/")
            i = j
            while i < n and lark_text[i] in "imslux":  # lark regex flags
                out.append(lark_text[i])
                i += 1
        elif c in "~+*":
            if c == "~":
                m = _REPEAT.match(lark_text, i)
                if not m:
                    raise ValueError(f"cannot read the repetition at offset {i}: {lark_text[i:i + 20]!r}")
                lo, hi = m.group(1), m.group(2)
                hi = lo if hi is None else hi
                i = m.end()
            else:
                lo, hi = ("1" if c == "+" else "0"), "INF"
                i += 1
            while out and out[-1] in (" ", "\t"):
                out.pop()
            brace = "{%s}" % lo if lo == hi else ("{%s,%s}" % (lo, hi) if hi != "INF" else c)
            if fuse_runs and defining == "rule":
                tail = "".join(out[-64:])
                m = _TERM_AT_END.search(tail)
                if m:
                    term = m.group(1)
                    name = f"{term}__{lo}_{hi}"
                    while name not in fused and re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])",
                                                          lark_text):
                        name += "_"
                    fused[name] = term + brace
                    _drop_tail(out, len(term))
                    out.append(name)
                    continue
            out.append(brace)
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    if fused:
        if not text.endswith("\n"):
            text += "\n"
        text += "// fused runs of a terminal (one lexeme each: see convert_lark)\n"
        text += "".join(f"{name}: {body}\n" for name, body in fused.items())
    if not forcing:
        text = NO_FORCING + "\n" + text
    return text


def _drop_tail(out: list[str], k: int) -> None:
    """Remove the last ``k`` characters from a list of string pieces."""
    while k > 0:
        last = out.pop()
        if len(last) > k:
            out.append(last[:-k])
            return
        k -= len(last)


def _end_of_string(text: str, i: int) -> int:
    """Offset just past the string literal opening at ``i`` (and its ``i`` flag)."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == '"':
            j += 1
            if j < len(text) and text[j] == "i":
                j += 1
            return j
        if text[j] == "\n":
            break
        j += 1
    raise ValueError(f"unterminated string literal at offset {i}")


def _end_of_regex(text: str, i: int) -> int:
    """Offset just past the closing ``/`` of the regex opening at ``i`` (flags not included)."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "/":
            return j + 1
        if text[j] == "\n":
            break
        j += 1
    raise ValueError(f"unterminated regex at offset {i}")


_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")


def _convert_regex(body: str) -> str:
    out: list[str] = []
    i, n = 0, len(body)
    in_class = False
    class_start = -1  # offset of the first member of the current class
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            e = body[i + 1]
            if e == "u" and _HEX4.fullmatch(body, i + 2, i + 6):
                out.append("\\u{%x}" % int(body[i + 2:i + 6], 16))
                i += 6
            elif e == "U" and _HEX8.fullmatch(body, i + 2, i + 10):
                out.append("\\u{%x}" % int(body[i + 2:i + 10], 16))
                i += 10
            elif e == "N" and i + 2 < n and body[i + 2] == "{":
                j = body.index("}", i + 3)
                out.append("\\u{%x}" % ord(unicodedata.lookup(body[i + 3:j])))
                i = j + 1
            else:
                out.append(body[i:i + 2])
                i += 2
            continue
        if not in_class:
            if c == "[":
                in_class = True
                out.append(c)
                i += 1
                if i < n and body[i] == "^":
                    out.append("^")
                    i += 1
                class_start = i
                if i < n and body[i] == "]":  # a leading ']' is a literal in Python
                    out.append("\\]")
                    i += 1
                continue
            out.append(c)
            i += 1
            continue
        # inside a character class
        if c == "]":
            in_class = False
            out.append(c)
        elif c == "[":
            out.append("\\[")
        elif c in "&~-" and i > class_start and body[i - 1] == c and not _escaped(body, i - 1):
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _escaped(body: str, i: int) -> bool:
    k = i - 1
    while k >= 0 and body[k] == "\\":
        k -= 1
    return (i - 1 - k) % 2 == 1


# --- tokenizer ----------------------------------------------------------------------------------

_TOKENIZERS: dict[tuple[int, tuple[int, ...], str], tuple[LLTokenizer, float]] = {}


class _PiecesTokenizer:
    """A ``TokenizerWrapper`` source built from ``Model.pieces()`` (fallback for the bridge)."""

    def __init__(self, model: Any, eos: Sequence[int]) -> None:
        self._model = model
        self.eos_token_id = int(eos[0])
        self.bos_token_id = int(model.bos) if model.bos >= 0 else None
        self.special_token_ids = [t for t in range(model.n_vocab) if model.is_control(t)]
        special = set(self.special_token_ids)
        self.tokens = [(b"\xff" + p) if t in special else p for t, p in enumerate(model.pieces())]

    def __call__(self, data: bytes | str) -> list[int]:
        return self._model.tokenize(data, add_special=False, parse_special=False)


def make_tokenizer(model: Any, eos_tokens: Sequence[int] | None = None,
                   bridge: str = "llamacpp") -> tuple[LLTokenizer, float]:
    """llguidance's tokenizer for a loaded emogram model (cached per vocabulary): (tokenizer, seconds
    it took to build). ``bridge="llamacpp"`` uses llguidance's llama.cpp integration (the
    ``llama_vocab*`` and ``llama_tokenize``); ``bridge="pieces"`` builds it from ``Model.pieces()``
    through ``TokenizerWrapper`` (the same bytes, no raw pointers handed to llguidance)."""
    eos = tuple(int(t) for t in (eos_tokens if eos_tokens is not None else model.eog_tokens()))
    if not eos:
        eos = (int(model.eos),)
    key = (int(model._vocab), eos, bridge)
    hit = _TOKENIZERS.get(key)
    if hit is not None:
        return hit[0], 0.0
    t0 = time.perf_counter()
    if bridge == "llamacpp":
        tok = llguidance.llamacpp.lltokenizer_from_vocab(model._vocab, eos_token=list(eos))
    elif bridge == "pieces":
        tok = LLTokenizer(TokenizerWrapper(_PiecesTokenizer(model, eos)), n_vocab=model.n_vocab,
                          eos_token=list(eos))
    else:
        raise ValueError(f"unknown bridge {bridge!r}")
    seconds = time.perf_counter() - t0
    if tok.vocab_size != model.n_vocab:
        raise RuntimeError(f"llguidance sees {tok.vocab_size} tokens, llama.cpp {model.n_vocab}")
    _TOKENIZERS[key] = (tok, seconds)
    return tok, seconds


# --- the constraint -----------------------------------------------------------------------------

class LLGuidanceConstraint:
    """llguidance masking over a llama.cpp vocabulary for an emogram lark grammar."""

    def __init__(self, model: Any, lark_text: str, *, convert: bool = True, fuse_runs: bool = True,
                 forcing: bool = False, eos_tokens: Sequence[int] | None = None,
                 bridge: str = "llamacpp", log_level: int = 0) -> None:
        self.model = model
        self.n_vocab = int(model.n_vocab)
        self.tokenizer, self.tokenizer_seconds = make_tokenizer(model, eos_tokens, bridge)
        self.eos_tokens = np.array(self.tokenizer.eos_tokens, dtype=np.int64)
        self._eos_set = frozenset(int(t) for t in self.eos_tokens)
        t0 = time.perf_counter()
        self.lark = convert_lark(lark_text, fuse_runs=fuse_runs, forcing=forcing) if convert \
            else lark_text
        self.grammar = LLMatcher.grammar_from_lark(self.lark)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(self.grammar, self.tokenizer)
        if is_error:
            raise ValueError(f"llguidance rejected the grammar: {messages[0]}")
        self.warnings = list(messages)
        self.matcher = LLMatcher(self.tokenizer, self.grammar, log_level=log_level)
        if self.matcher.is_error():
            raise ValueError(f"llguidance could not build a matcher: {self.matcher.get_error()}")
        self.compile_seconds = time.perf_counter() - t0
        self._bits = llguidance.numpy.allocate_token_bitmask(1, self.n_vocab)
        self._row = self._bits[0]
        self._ptr = int(self._row.ctypes.data)
        self._nbytes = int(self._row.size * self._row.itemsize)
        self._bool: np.ndarray | None = None
        self._fresh = False  # the bitmask is that of the current state
        t0 = time.perf_counter()
        self.bitmask()
        self.first_mask_seconds = time.perf_counter() - t0

    def reset(self) -> None:
        """Back to the start state for a new answer."""
        if not self.matcher.reset():
            raise RuntimeError(f"llguidance could not reset: {self.matcher.get_error()}")
        self._fresh = False

    def bitmask(self) -> np.ndarray:
        """The allowed next tokens as llguidance's int32 bitmask (bit t%32 of word t//32); a view,
        valid until the next ``accept``/``reset``."""
        if not self._fresh:
            self.matcher.unsafe_compute_mask_ptr(self._ptr, self._nbytes)
            self._bool = None
            self._fresh = True
        return self._row

    def mask(self) -> np.ndarray:
        """The allowed next tokens, one bool per token (length ``n_vocab``)."""
        bits = self.bitmask()
        if self._bool is None:
            self._bool = np.unpackbits(bits.view(np.uint8), bitorder="little")[:self.n_vocab].view(bool)
        return self._bool

    def allowed(self, token: int) -> bool:
        if not 0 <= token < self.n_vocab:
            return False
        return bool((int(self.bitmask()[token >> 5]) >> (token & 31)) & 1)

    def accept(self, token: int) -> None:
        """Advance past ``token``; it must be allowed (checked: a refused token raises)."""
        if not self.allowed(token):
            raise ValueError(f"token {token} is not allowed here")
        ok = self.matcher.consume_token(int(token))
        self._fresh = False
        if not ok:
            raise RuntimeError(f"llguidance refused token {token}: {self.matcher.get_error()}")

    def is_accepting(self) -> bool:
        """The text may end here (the grammar is satisfied)."""
        return bool(self.matcher.is_accepting())

    def eos_allowed(self) -> bool:
        bits = self.bitmask()
        return any((int(bits[t >> 5]) >> (t & 31)) & 1 for t in self._eos_set)

    def only_eos_allowed(self) -> bool:
        """Nothing but an end token may follow (the structure is full)."""
        m = self.mask()
        return int(np.count_nonzero(m)) == int(np.count_nonzero(m[self.eos_tokens]))

    def is_eos(self, token: int) -> bool:
        return int(token) in self._eos_set


# --- self-check ---------------------------------------------------------------------------------

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


def _check_conversion() -> list[str]:
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


def _us(xs: Sequence[float]) -> tuple[float, float]:
    """median and p99 (nearest rank) of seconds, in microseconds."""
    if not xs:
        return 0.0, 0.0
    s = sorted(xs)
    p99 = s[min(len(s) - 1, max(0, int(np.ceil(0.99 * len(s))) - 1))]
    return statistics.median(s) * 1e6, p99 * 1e6


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
    failures = _check_conversion()
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
