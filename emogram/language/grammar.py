"""Grammar compiler: one description of the emogram language, written out as GBNF and as lark.

The language (see docs/language.md) is described once, as a handful of rules in a tiny EBNF
(``Lit``, ``Ref``, ``Seq``, ``Alt``, ``Rep``, in ``ebnf.py``). Two writers turn it into text: GBNF for llama.cpp's
sampler and a lark grammar for the parser, so the two cannot drift. The ``emoji`` rule is the
inventory, compiled to a minimised code-point trie: GBNF rules whose leaves are character classes
(llama.cpp keeps one stack per alternative, so a flat list of 3,963 strings never finishes), and one
greedy regular expression for lark.

Regenerate the checked-in files with ``emogram grammar --write grammars`` (from the repository root).
"""

from __future__ import annotations

import enum
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, InputTypeError
from .ebnf import (EMOJI_RULE, NEWLINE, SPACE, Alt, EmojiTrie, Expr, Lit, Ref, Rep, Seq, write_gbnf,
                   write_lark)
from .unicode import DEFAULT_EMOJI_VERSION, EmojiFilter, versions


class Operator(enum.Enum):
    """The joining emoji between groups. Each has one fixed meaning, used in glosses."""

    LEADS_TO = "➡️"
    AND = "➕"
    VERSUS = "🆚"
    MEANS = "🟰"

    @property
    def symbol(self) -> str:
        return self.value

    @property
    def gloss(self) -> str:
        return _OPERATOR_GLOSS[self]

    @classmethod
    def parse(cls, value: "str | Operator") -> "Operator":
        if isinstance(value, Operator):
            return value
        if not isinstance(value, str):
            raise InputTypeError(f"an operator is an emoji such as '➡️' or an Operator, "
                                 f"not {type(value).__name__}")
        for op in cls:
            if value in (op.value, op.name, op.name.lower(), op.name.lower().replace("_", "-")):
                return op
        raise InputError(f"unknown operator {value!r}; choose from {', '.join(op.value for op in cls)}")


_OPERATOR_GLOSS = {
    Operator.LEADS_TO: "leads to",
    Operator.AND: "combined with",
    Operator.VERSUS: "versus",
    Operator.MEANS: "means",
}
OPERATOR_SYMBOLS = frozenset(op.value for op in Operator)

# Hard ceilings keep the expanded grammar small enough for llama.cpp's parser and for fast decoding.
MAX_LINES = 12
MAX_STEPS = 8
MAX_EMOJI_PER_GROUP = 6


def _span(value: "int | tuple[int, int] | list[int]", what: str, ceiling: int) -> tuple[int, int]:
    if isinstance(value, bool):
        raise InputTypeError(f"{what} must be an int or a (min, max) pair, not bool")
    if isinstance(value, int):
        lo = hi = value
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        lo, hi = value
    else:
        raise InputTypeError(f"{what} must be an int or a (min, max) pair of ints, got {value!r}")
    if lo < 1:
        raise InputError(f"{what}: the minimum must be at least 1, got {lo}")
    if lo > hi:
        raise InputError(f"{what}: the minimum ({lo}) is above the maximum ({hi})")
    if hi > ceiling:
        raise InputError(f"{what}: the maximum is {ceiling}, got {hi}")
    return lo, hi


@dataclass(frozen=True)
class Shape:
    """Structure knobs: how many lines, groups per line (steps) and emoji per group; which operators.

    Each count is a (min, max) pair; a single int means exactly that many.
    """

    lines: tuple[int, int] = (1, 4)
    steps: tuple[int, int] = (1, 3)
    emoji_per_group: tuple[int, int] = (1, 3)
    operators: tuple[Operator, ...] = tuple(Operator)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", _span(self.lines, "lines", MAX_LINES))
        object.__setattr__(self, "steps", _span(self.steps, "steps", MAX_STEPS))
        object.__setattr__(self, "emoji_per_group",
                           _span(self.emoji_per_group, "emoji_per_group", MAX_EMOJI_PER_GROUP))
        if isinstance(self.operators, (str, Operator)):
            raise InputTypeError("operators must be a sequence of operators, e.g. ('➡️', '➕')")
        try:
            given = tuple(self.operators)
        except TypeError:
            raise InputTypeError(f"operators must be a sequence of operators, not "
                                 f"{type(self.operators).__name__}") from None
        ops = tuple(dict.fromkeys(Operator.parse(op) for op in given))
        ops = tuple(op for op in Operator if op in ops)  # canonical order
        if not ops and self.steps[1] > 1:
            raise InputError("operators is empty but steps allows more than one group per line")
        object.__setattr__(self, "operators", ops)


# --- the language, as rules of the tiny EBNF (ebnf.py) -----------------------------------------------

LINE_LEAD = Lit(Operator.LEADS_TO.value, "LEAD")


def structure_rules(shape: Shape) -> dict[str, Expr]:
    """The language as rules. ``emoji`` is left undefined here: it is the inventory trie."""
    (l_lo, l_hi), (s_lo, s_hi), (e_lo, e_hi) = shape.lines, shape.steps, shape.emoji_per_group
    rules: dict[str, Expr] = {
        "root": Seq((Ref("line"), Rep(Seq((NEWLINE, LINE_LEAD, SPACE, Ref("line"))), l_lo - 1, l_hi - 1))),
        "line": Seq((Ref("group"), Rep(Seq((SPACE, Ref("op"), SPACE, Ref("group"))), s_lo - 1, s_hi - 1))),
        "group": Rep(Ref(EMOJI_RULE), e_lo, e_hi),
    }
    if s_hi > 1:
        rules["op"] = Alt(tuple(Lit(op.value, op.name) for op in shape.operators))
    return rules

# --- compiled grammars --------------------------------------------------------------------------

@dataclass(frozen=True)
class GrammarStats:
    """Sizes a reader can compare across filters: rules, alternatives at the emoji root, bytes."""

    emoji: int
    trie_nodes: int
    gbnf_rules: int
    root_alternatives: int
    gbnf_bytes: int
    lark_bytes: int
    seconds: float


@dataclass(frozen=True)
class Grammar:
    """The language for one shape and emoji filter, as GBNF, lark, and the rules both came from."""

    shape: Shape
    emoji_filter: EmojiFilter
    emoji: tuple[str, ...]
    form: str = "explanation"  # or "group": one group after a space (a glossed answer's part)
    rules: dict[str, Expr] = field(default_factory=dict, compare=False, hash=False)
    trie: EmojiTrie | None = field(default=None, compare=False, hash=False, repr=False)
    gbnf: str = field(default="", compare=False, hash=False, repr=False)
    lark: str = field(default="", compare=False, hash=False, repr=False)
    stats: GrammarStats | None = field(default=None, compare=False, hash=False)


def _header(shape: Shape, emoji_filter: EmojiFilter, n: int, what: str) -> str:
    from .._version import __version__
    return (f"emogram {what}: generated by emogram {__version__}; do not edit.\n"
            f"Regenerate with: emogram grammar --write grammars\n"
            f"{n} content emoji; lines {shape.lines}, steps {shape.steps}, "
            f"emoji per group {shape.emoji_per_group}, operators {' '.join(o.value for o in shape.operators)}\n"
            f"filter: {_describe_filter(emoji_filter)}")


def _describe_filter(f: EmojiFilter) -> str:
    parts = [describe_version(f)]
    if not f.flags:
        parts.append("no flags")
    if not f.skin_tones:
        parts.append("no skin tones")
    if not f.zwj:
        parts.append("no ZWJ sequences")
    if f.palette is not None:
        parts.append(f"palette of {len(f.palette)}")
    if f.include:
        parts.append(f"include {len(f.include)}")
    if f.exclude:
        parts.append(f"exclude {len(f.exclude)}")
    return ", ".join(parts)


def describe_version(f: EmojiFilter) -> str:
    """Which Emoji versions a filter covers, in words: what a grammar's header and ``emogram
    grammar`` say."""
    newest = versions()[-1]
    if f.max_version is None or f.max_version >= newest:
        return f"every Emoji version, up to {newest} (emoji_version='latest')"
    default = " (the default)" if f.max_version == DEFAULT_EMOJI_VERSION else ""
    return f"Emoji {f.max_version} and older{default}; emoji_version='latest' for all of Emoji {newest}"


# What ``explain`` keeps to when no ``emoji_version``, palette or filter is given, and what the
# checked-in grammars (``grammars/``) cover.
DEFAULT_FILTER = EmojiFilter(max_version=DEFAULT_EMOJI_VERSION)


def content_emoji(emoji_filter: EmojiFilter) -> tuple[str, ...]:
    """Emoji that may appear inside groups: the filter's selection minus the operator emoji."""
    chosen = tuple(e for e in emoji_filter.select() if e not in OPERATOR_SYMBOLS)
    if not chosen:
        raise InputError("no emoji are left after the filters; widen the palette or version")
    return chosen


@functools.lru_cache(maxsize=64)
def compile_grammar(shape: Shape = Shape(), emoji_filter: EmojiFilter = EmojiFilter()) -> Grammar:
    """Build (and cache) the GBNF and lark grammars for a shape and an emoji filter."""
    if not isinstance(shape, Shape):
        raise InputTypeError(f"shape must be a Shape, not {type(shape).__name__}")
    if not isinstance(emoji_filter, EmojiFilter):
        raise InputTypeError(f"emoji_filter must be an EmojiFilter, not {type(emoji_filter).__name__}")
    return _compile(shape, emoji_filter, structure_rules(shape), "explanation")


@functools.lru_cache(maxsize=64)
def compile_group_grammar(shape: Shape, emoji_filter: EmojiFilter) -> Grammar:
    """One group of ``shape.emoji_per_group`` emoji after a space: what the model writes after
    "water:" in a glossed answer (``decoding/gloss.py``), each group decoded under its own grammar."""
    lo, hi = shape.emoji_per_group
    rules: dict[str, Expr] = {"root": Seq((SPACE, Ref("group"))), "group": Rep(Ref(EMOJI_RULE), lo, hi)}
    return _compile(shape, emoji_filter, rules, "group")


def _compile(shape: Shape, emoji_filter: EmojiFilter, rules: dict[str, Expr], form: str) -> Grammar:
    start = time.perf_counter()
    emoji = content_emoji(emoji_filter)
    trie = EmojiTrie.build(emoji)
    what = "explanation grammar" if form == "explanation" else "one group after a space"
    gbnf = write_gbnf(rules, trie, _header(shape, emoji_filter, len(emoji), f"{what} (GBNF)"))
    lark = write_lark(rules, trie, _header(shape, emoji_filter, len(emoji), f"{what} (lark)"))
    seconds = time.perf_counter() - start
    stats = GrammarStats(
        emoji=len(emoji), trie_nodes=len(trie.nodes),
        gbnf_rules=sum(1 for line in gbnf.splitlines() if "::=" in line and not line.startswith("#")),
        root_alternatives=len(trie.groups(trie.root)),
        gbnf_bytes=len(gbnf.encode()), lark_bytes=len(lark.encode()), seconds=seconds)
    return Grammar(shape, emoji_filter, emoji, form, rules, trie, gbnf, lark, stats)


def inventory_gbnf(emoji_filter: EmojiFilter = EmojiFilter()) -> str:
    """A GBNF whose root is one emoji: the inventory on its own, for other tools."""
    emoji = tuple(emoji_filter.select())
    trie = EmojiTrie.build(emoji)
    header = _header(Shape(), emoji_filter, len(emoji), "emoji inventory (GBNF), root = one emoji")
    return write_gbnf({"root": Ref(EMOJI_RULE)}, trie, header)


def inventory_lark(emoji_filter: EmojiFilter = EmojiFilter()) -> str:
    """A lark grammar whose start is one emoji (longest match first)."""
    emoji = tuple(emoji_filter.select())
    trie = EmojiTrie.build(emoji)
    header = _header(Shape(), emoji_filter, len(emoji), "emoji inventory (lark), start = one emoji")
    return write_lark({"root": Ref(EMOJI_RULE)}, trie, header)


def generated_files() -> dict[str, str]:
    """Every checked-in grammar file (``grammars/``) and its expected content: the default shape
    and ``DEFAULT_FILTER`` (Emoji 15.1 and older), as ``explain`` uses them."""
    default = compile_grammar(Shape(), DEFAULT_FILTER)
    return {
        "emoji.gbnf": inventory_gbnf(DEFAULT_FILTER),
        "emoji.lark": inventory_lark(DEFAULT_FILTER),
        "explanation.gbnf": default.gbnf,
        "explanation.lark": default.lark,
    }


def write_generated(directory: str | Path) -> list[Path]:
    """Rewrite the generated grammar files; ``emogram grammar --write grammars`` calls this."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated_files().items():
        path = out / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
