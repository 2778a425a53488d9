"""Hypothesis strategies for emoji, explanation trees and texts, and near-misses.

ZWJ sequences, skin tones, flags and keycaps are drawn as often as single code points, though the
inventory has far fewer of them: they are where grammars go wrong.
"""

from __future__ import annotations

from hypothesis import strategies as st

from emogram.grammar import MAX_EMOJI_PER_GROUP, MAX_LINES, MAX_STEPS, Operator, Shape, content_emoji
from emogram.language import Emoji, Group, Line, Tree
from emogram.unicode import VS16, ZWJ, EmojiFilter, inventory, lookup

ALL = EmojiFilter()


def _by_kind(kind: str) -> list[str]:
    content = set(content_emoji(ALL))
    return [i.char for i in inventory() if i.char in content and i.kind == kind]


KINDS = ("single", "zwj", "skin-tone", "flag", "tag-flag", "keycap", "vs16")
BY_KIND = {k: _by_kind(k) for k in KINDS}


def emoji_chars(emoji_filter: EmojiFilter = ALL) -> st.SearchStrategy[str]:
    """One content emoji admitted by the filter, every kind equally likely."""
    allowed = content_emoji(emoji_filter)
    if emoji_filter == ALL:
        return st.one_of([st.sampled_from(BY_KIND[k]) for k in KINDS])
    return st.sampled_from(allowed)


@st.composite
def shapes(draw) -> Shape:
    def span(ceiling: int) -> tuple[int, int]:
        lo = draw(st.integers(1, min(3, ceiling)))
        hi = draw(st.integers(lo, min(lo + 3, ceiling)))
        return lo, hi
    ops = draw(st.lists(st.sampled_from(list(Operator)), min_size=1, max_size=4, unique=True))
    return Shape(lines=span(MAX_LINES), steps=span(MAX_STEPS),
                 emoji_per_group=span(MAX_EMOJI_PER_GROUP), operators=tuple(ops))


@st.composite
def trees(draw, shape: Shape = Shape(), emoji_filter: EmojiFilter = ALL) -> Tree:
    one = emoji_chars(emoji_filter)
    lines = []
    for _ in range(draw(st.integers(*shape.lines))):
        n_groups = draw(st.integers(*shape.steps))
        groups = tuple(Group(tuple(Emoji(draw(one)) for _ in range(draw(st.integers(*shape.emoji_per_group)))))
                       for _ in range(n_groups))
        ops = tuple(draw(st.sampled_from(shape.operators)) for _ in range(n_groups - 1))
        lines.append(Line(groups, ops))
    return Tree(tuple(lines))


def texts(shape: Shape = Shape(), emoji_filter: EmojiFilter = ALL) -> st.SearchStrategy[str]:
    return trees(shape, emoji_filter).map(str)


# Emoji whose U+FE0F-less form is not itself a fully-qualified emoji (so stripping breaks it).
WITH_VS16 = [i.char for i in inventory()
             if VS16 in i.char and lookup(i.char.replace(VS16, "")) is None
             and i.char in set(content_emoji(ALL))]

LONE = ["\U0001F3FD", "\U0001F3FB", "\U0001F1FA", ZWJ, VS16, "\u20e3", "\U0001F9B0"]


@st.composite
def near_misses(draw, shape: Shape = Shape()) -> str:
    """A text one small mistake away from valid: each mutation is invalid by construction."""
    tree = draw(trees(shape))
    text = str(tree)
    kind = draw(st.sampled_from([
        "unqualified", "stray-space", "trailing-space", "dangling-zwj", "letter", "operator-in-group",
        "extra-line", "lone", "cjk", "double-newline", "lead-missing", "leading-operator"]))
    if kind == "unqualified":
        bad = draw(st.sampled_from(WITH_VS16)).replace(VS16, "")
        pos = draw(st.sampled_from([0, len(text)]))
        return bad + " ➡️ " + text if pos == 0 else text + bad
    if kind == "stray-space":  # the canonical text has spaces only where they must be
        at = draw(st.integers(0, len(text)))
        return text[:at] + " " + text[at:]
    if kind == "trailing-space":
        return text + " "
    if kind == "dangling-zwj":
        return text + ZWJ
    if kind == "letter":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from("aZ1?")) + text[at:]
    if kind == "operator-in-group":
        return text + draw(st.sampled_from([op.symbol for op in Operator]))
    if kind == "extra-line":
        lines = list(tree.lines) + [tree.lines[0]] * (shape.lines[1] - len(tree.lines) + 1)
        return str(Tree(tuple(lines)))
    if kind == "lone":
        return text + draw(st.sampled_from(LONE)) if draw(st.booleans()) else draw(st.sampled_from(LONE))
    if kind == "cjk":
        return text + draw(st.sampled_from("中文字"))
    if kind == "double-newline":
        return text + "\n\n"
    if kind == "lead-missing":
        return text + "\n" + str(tree.lines[0])
    return "➡️ " + text  # leading-operator
