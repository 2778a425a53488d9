"""Grammar compiler: one description of the emogram language, written out as GBNF and as lark.

The language (see docs/language.md) is described once, as a handful of rules in a tiny EBNF
(``Lit``, ``Ref``, ``Seq``, ``Alt``, ``Rep``). Two writers turn it into text: GBNF for llama.cpp's
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
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Union

from .errors import InputError, InputTypeError
from .unicode import EmojiFilter


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


# --- the tiny EBNF ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lit:
    text: str
    name: str | None = None  # named literals become named lark terminals (kept in the tree)


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Seq:
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Alt:
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Rep:
    item: "Expr"
    lo: int
    hi: int


Expr = Union[Lit, Ref, Seq, Alt, Rep]

SPACE = Lit(" ")
NEWLINE = Lit("\n")
LINE_LEAD = Lit(Operator.LEADS_TO.value, "LEAD")
EMOJI_RULE = "emoji"


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


def simplify(expr: Expr) -> Expr | None:
    """Drop zero-width repetitions and one-item sequences so both writers emit tidy text."""
    if isinstance(expr, Rep):
        if expr.hi == 0:
            return None
        inner = simplify(expr.item)
        if inner is None:
            return None
        if expr.lo == expr.hi == 1:
            return inner
        return Rep(inner, expr.lo, expr.hi)
    if isinstance(expr, Seq):
        items = tuple(x for x in (simplify(i) for i in expr.items) if x is not None)
        if not items:
            return None
        return items[0] if len(items) == 1 else Seq(items)
    if isinstance(expr, Alt):
        items = tuple(x for x in (simplify(i) for i in expr.items) if x is not None)
        return items[0] if len(items) == 1 else Alt(items)
    return expr


# --- the emoji trie -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrieNode:
    """A node of the minimised trie: ``edges`` maps a code point to the id of the next node."""

    final: bool
    edges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class EmojiTrie:
    """Minimised code-point trie (a DAWG): identical sub-trees share one node."""

    nodes: tuple[TrieNode, ...]
    root: int

    @classmethod
    def build(cls, emoji: Iterable[str]) -> "EmojiTrie":
        tree: dict = {}
        for e in emoji:
            node = tree
            for ch in e:
                node = node.setdefault(ord(ch), {})
            node[None] = True  # end marker
        ids: dict[TrieNode, int] = {}
        nodes: list[TrieNode] = []

        def intern(branch: dict) -> int:
            node = TrieNode(None in branch, tuple(sorted(
                (cp, intern(child)) for cp, child in branch.items() if cp is not None)))
            if node not in ids:
                ids[node] = len(nodes)
                nodes.append(node)
            return ids[node]

        root = intern(tree)
        return cls(tuple(nodes), root)

    def groups(self, node_id: int) -> list[tuple[list[int], int]]:
        """Edges of a node grouped by target: [(code points, target id)], ordered by first code point."""
        by_target: dict[int, list[int]] = {}
        for cp, target in self.nodes[node_id].edges:
            by_target.setdefault(target, []).append(cp)
        return sorted(((cps, t) for t, cps in by_target.items()), key=lambda g: g[0][0])


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for cp in sorted(cps):
        if out and cp == out[-1][1] + 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return [(a, b) for a, b in out]


def _invisible(cp: int) -> bool:
    return cp < 0x21 or unicodedata.category(chr(cp)) in ("Cf", "Mn", "Me", "Cc", "Zs", "Co", "Cn")


# --- GBNF writer --------------------------------------------------------------------------------

def _gbnf_char(cp: int) -> str:
    if cp == 0x0A:
        return "\\n"
    if _invisible(cp) or chr(cp) in '"\\[]-^':
        return f"\\x{cp:02X}" if cp < 0x80 else (f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}")
    return chr(cp)


def _gbnf_class(cps: list[int]) -> str:
    if len(cps) == 1:
        return f'"{_gbnf_char(cps[0])}"'
    parts = [_gbnf_char(a) if a == b else f"{_gbnf_char(a)}-{_gbnf_char(b)}" for a, b in _ranges(cps)]
    return "[" + "".join(parts) + "]"


def _print_expr(expr: Expr, lit, ref, count, top: bool = True) -> str:
    """One walk over the rules' EBNF for both dialects; they differ only in how they write a
    literal, a reference and a repeat count (``{2,3}`` in GBNF, `` ~ 2..3`` in lark)."""
    if isinstance(expr, Lit):
        return lit(expr)
    if isinstance(expr, Ref):
        return ref(expr)
    if isinstance(expr, Seq):
        return " ".join(_print_expr(i, lit, ref, count, False) for i in expr.items)
    if isinstance(expr, Alt):
        body = " | ".join(_print_expr(i, lit, ref, count, False) for i in expr.items)
        return body if top else f"({body})"
    if isinstance(expr, Rep):
        inner = _print_expr(expr.item, lit, ref, count, False)
        if not isinstance(expr.item, (Lit, Ref)):
            inner = f"({inner})"
        return inner + ("?" if (expr.lo, expr.hi) == (0, 1) else count(expr.lo, expr.hi))
    raise TypeError(expr)


def _gbnf_expr(expr: Expr) -> str:
    return _print_expr(
        expr, lit=lambda e: '"' + "".join(_gbnf_char(ord(c)) for c in e.text) + '"',
        ref=lambda e: e.name,
        count=lambda lo, hi: f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}")


def trie_gbnf_rules(trie: EmojiTrie, name: str = EMOJI_RULE) -> list[tuple[str, str]]:
    """One rule per distinct non-leaf sub-tree; leaves are merged into character classes."""
    names = {trie.root: name}
    order = [trie.root]
    rules = []
    for node_id in order:  # grows while we walk: breadth-first naming
        alternatives = []
        for cps, target in trie.groups(node_id):
            alt = _gbnf_class(cps)
            child = trie.nodes[target]
            if child.edges:
                if target not in names:
                    names[target] = f"{name}{len(names)}"
                    order.append(target)
                alt += " " + names[target] + ("?" if child.final else "")
            alternatives.append(alt)
        rules.append((names[node_id], " | ".join(alternatives)))
    return rules


def write_gbnf(rules: dict[str, Expr], trie: EmojiTrie, header: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    width = max(len(n) for n in rules)
    for rule_name, expr in rules.items():
        simple = simplify(expr)
        assert simple is not None
        lines.append(f"{rule_name.ljust(width)} ::= {_gbnf_expr(simple)}")
    lines.append("")
    lines.extend(f"{n} ::= {body}" for n, body in trie_gbnf_rules(trie))
    return "\n".join(lines) + "\n"


# --- lark writer --------------------------------------------------------------------------------

def _re_char(cp: int) -> str:
    if _invisible(cp) or chr(cp) in "\\/[]-^.*+?(){}|$#":
        return f"\\x{cp:02x}" if cp < 0x80 else (f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
    return chr(cp)


def _re_class(cps: list[int]) -> str:
    if len(cps) == 1:
        return _re_char(cps[0])
    return "[" + "".join(_re_char(a) if a == b else f"{_re_char(a)}-{_re_char(b)}"
                         for a, b in _ranges(cps)) + "]"


def trie_regex(trie: EmojiTrie) -> str:
    """A regular expression for the trie. Optional tails are greedy, so the longest emoji wins."""

    @functools.lru_cache(maxsize=None)
    def node_re(node_id: int) -> str:
        alts = []
        for cps, target in trie.groups(node_id):
            child = trie.nodes[target]
            tail = ""
            if child.edges:
                tail = node_re(target)
                tail = f"(?:{tail})?" if child.final else tail
            alts.append(_re_class(cps) + tail)
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return node_re(trie.root)


def _lark_expr(expr: Expr, terminals: dict[str, str]) -> str:
    """Lark: named literals become terminals (collected into ``terminals``)."""
    def lit(e: Lit) -> str:
        if e.name:
            terminals[e.name] = e.text
            return e.name
        return '"' + e.text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return _print_expr(
        expr, lit=lit, ref=lambda e: "EMOJI" if e.name == EMOJI_RULE else e.name,
        count=lambda lo, hi: f" ~ {lo}" if lo == hi else f" ~ {lo}..{hi}")


def write_lark(rules: dict[str, Expr], trie: EmojiTrie, header: str = "") -> str:
    lines = [f"// {line}" if line else "//" for line in header.splitlines()]
    terminals: dict[str, str] = {}
    for rule_name, expr in rules.items():
        simple = simplify(expr)
        assert simple is not None
        lark_name = "start" if rule_name == "root" else rule_name
        lines.append(f"{lark_name}: {_lark_expr(simple, terminals)}")
    lines.append("")
    for term, text in terminals.items():
        lines.append(f'{term}: "{text}"')
    lines.append(f"EMOJI: /{trie_regex(trie)}/")
    return "\n".join(lines) + "\n"


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
    from . import __version__
    return (f"emogram {what}: generated by emogram {__version__}; do not edit.\n"
            f"Regenerate with: emogram grammar --write grammars\n"
            f"{n} content emoji; lines {shape.lines}, steps {shape.steps}, "
            f"emoji per group {shape.emoji_per_group}, operators {' '.join(o.value for o in shape.operators)}\n"
            f"filter: {_describe_filter(emoji_filter)}")


def _describe_filter(f: EmojiFilter) -> str:
    parts = []
    if f.max_version is not None:
        parts.append(f"emoji version <= {f.max_version}")
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
    return ", ".join(parts) or "all fully-qualified emoji"


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
    "water:" in a glossed answer (``gloss.py``), each group decoded under its own grammar."""
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
    """Every checked-in grammar file (``grammars/``) and its expected content."""
    default = compile_grammar()
    return {
        "emoji.gbnf": inventory_gbnf(),
        "emoji.lark": inventory_lark(),
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
