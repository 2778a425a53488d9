"""Grammars as data: a tiny EBNF (``Lit``, ``Ref``, ``Seq``, ``Alt``, ``Rep``), the emoji inventory as
a minimised code-point trie, and the two writers that print them, as GBNF for llama.cpp's sampler and
as lark for the parser. ``grammar.py`` says what the emogram language is; this module only prints it.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Union

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
EMOJI_RULE = "emoji"


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
