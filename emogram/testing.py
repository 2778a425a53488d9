"""Hypothesis strategies for code that consumes emogram output: ``pip install "emogram[testing]"``.

    from hypothesis import given
    from emogram.testing import explanations, near_misses

    @given(explanations())
    def test_my_renderer_takes_any_answer(text): ...

    @given(near_misses())
    def test_my_validator_refuses_almost_answers(text): ...

* ``emoji(emoji_filter)``: one content emoji the filter admits. Without a filter, ZWJ sequences,
  skin tones, flags, subdivision flags, keycaps and U+FE0F forms are drawn as often as plain
  single code points, though the inventory has far fewer of them: they are where code goes wrong.
* ``explanations(shape, emoji_filter)``: any text ``explain`` could return under that shape and
  filter (``as_tree=True``: the ``emogram.Tree`` instead; ``emogram.parse`` turns one into the other).
* ``near_misses(shape, emoji_filter)``: a text one small mistake away from a valid answer (an
  unqualified emoji, a stray space, a lone skin tone or ZWJ, two emoji joined by a ZWJ into none, a
  letter, one line, group or emoji too many, an operator the shape does not allow, an emoji the
  filter does not admit...). Each mutation is
  invalid by construction: ``emogram.parse`` refuses every one.
* ``shapes()``: any ``Shape``: 1 to 12 lines, 1 to 8 groups per line, 1 to 6 emoji per group, any
  subset of the operators (the empty one with one group per line).

Everything is drawn from the same inventory and rules as the grammar llama.cpp enforces, so the
texts are exactly the language, not an approximation of it. ``import emogram`` does not import this
module (nor hypothesis).
"""

from __future__ import annotations

import functools

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('emogram.testing needs hypothesis: pip install "emogram[testing]"') from exc

from .language.grammar import MAX_EMOJI_PER_GROUP, MAX_LINES, MAX_STEPS, Operator, Shape, content_emoji
from .language.tree import Emoji, Group, Line, Tree
from .language.unicode import VS16, ZWJ, EmojiFilter, inventory, lookup

__all__ = ["emoji", "explanations", "near_misses", "shapes", "KINDS"]

ALL = EmojiFilter()
KINDS = ("single", "zwj", "skin-tone", "flag", "tag-flag", "keycap", "vs16")

# Code points that are never an emoji on their own: skin tones, a regional indicator, ZWJ, U+FE0F,
# the keycap mark, a hair component.
LONE = ("\U0001F3FD", "\U0001F3FB", "\U0001F1FA", ZWJ, VS16, "\u20e3", "\U0001F9B0")


@functools.lru_cache(maxsize=32)
def _content(emoji_filter: EmojiFilter) -> tuple[str, ...]:
    """The filter's content emoji, worked out once per filter (not once per draw)."""
    return content_emoji(emoji_filter)


@functools.lru_cache(maxsize=32)
def _outside(emoji_filter: EmojiFilter) -> tuple[str, ...]:
    """Content emoji the filter does not admit."""
    allowed = set(_content(emoji_filter))
    return tuple(e for e in _content(ALL) if e not in allowed)


@functools.lru_cache(maxsize=1)
def _by_kind() -> dict[str, tuple[str, ...]]:
    content = set(_content(ALL))
    return {kind: tuple(i.char for i in inventory() if i.char in content and i.kind == kind)
            for kind in KINDS}


@functools.lru_cache(maxsize=1)
def _with_vs16() -> tuple[str, ...]:
    """Emoji whose U+FE0F-less form is not itself an emoji (so stripping it breaks the emoji)."""
    content = set(_content(ALL))
    return tuple(i.char for i in inventory() if VS16 in i.char and i.char in content
                 and lookup(i.char.replace(VS16, "")) is None)


def _check(shape: Shape | None, emoji_filter: EmojiFilter | None) -> tuple[Shape, EmojiFilter]:
    shape = Shape() if shape is None else shape
    emoji_filter = ALL if emoji_filter is None else emoji_filter
    if not isinstance(shape, Shape):
        raise TypeError(f"shape must be an emogram.Shape, not {type(shape).__name__}")
    if not isinstance(emoji_filter, EmojiFilter):
        raise TypeError(f"emoji_filter must be an emogram.EmojiFilter, not {type(emoji_filter).__name__}")
    _content(emoji_filter)  # a filter that leaves no emoji fails here, not at the first draw
    return shape, emoji_filter


def emoji(emoji_filter: EmojiFilter | None = None) -> st.SearchStrategy[str]:
    """One content emoji admitted by the filter (the operators ➡️ ➕ 🆚 🟰 are never content).
    Without a filter every kind of emoji is equally likely."""
    _, emoji_filter = _check(None, emoji_filter)
    return _emoji(emoji_filter)


@functools.lru_cache(maxsize=32)
def _emoji(emoji_filter: EmojiFilter) -> st.SearchStrategy[str]:
    """``emoji()``'s strategy, made once per filter: building one over thousands of emoji costs
    more than drawing from it, and the composites below draw from it many times per example."""
    if emoji_filter == ALL:
        return st.one_of([st.sampled_from(_by_kind()[k]) for k in KINDS])
    return st.sampled_from(_content(emoji_filter))


@functools.lru_cache(maxsize=32)
def _outside_emoji(emoji_filter: EmojiFilter) -> st.SearchStrategy[str]:
    return st.sampled_from(_outside(emoji_filter))


@st.composite
def shapes(draw) -> Shape:
    """Any shape the grammar allows, over the full ranges and every subset of operators."""
    def span(ceiling: int) -> tuple[int, int]:
        lo = draw(st.integers(1, ceiling))
        return lo, draw(st.integers(lo, ceiling))

    ops = tuple(draw(st.lists(st.sampled_from(list(Operator)), max_size=4, unique=True)))
    steps = span(MAX_STEPS) if ops else (1, 1)  # no operator: one group per line
    return Shape(lines=span(MAX_LINES), steps=steps, emoji_per_group=span(MAX_EMOJI_PER_GROUP),
                 operators=ops)


@st.composite
def _trees(draw, shape: Shape, emoji_filter: EmojiFilter) -> Tree:
    one = _emoji(emoji_filter)
    lines = []
    for _ in range(draw(st.integers(*shape.lines))):
        n_groups = draw(st.integers(*shape.steps))
        groups = tuple(Group(tuple(Emoji(draw(one)) for _ in range(draw(st.integers(*shape.emoji_per_group)))))
                       for _ in range(n_groups))
        ops = tuple(draw(st.sampled_from(shape.operators)) for _ in range(n_groups - 1))
        lines.append(Line(groups, ops))
    return Tree(tuple(lines))


def explanations(shape: Shape | None = None, emoji_filter: EmojiFilter | None = None, *,
                 as_tree: bool = False) -> st.SearchStrategy:
    """Any explanation in the language of ``shape`` (default ``Shape()``, what ``explain`` writes
    by default) and ``emoji_filter``: its canonical text, or with ``as_tree=True`` its ``Tree``."""
    shape, emoji_filter = _check(shape, emoji_filter)
    trees = _trees(shape, emoji_filter)
    return trees if as_tree else trees.map(str)


def _mutations(shape: Shape, emoji_filter: EmojiFilter) -> list[str]:
    kinds = ["unqualified", "stray-space", "trailing-space", "dangling-zwj", "letter",
             "operator-in-group", "extra-line", "lone", "cjk", "double-newline", "lead-missing",
             "leading-operator", "long-group", "extra-step", "zwj-join"]
    if len(shape.operators) < len(Operator) and shape.steps[1] > 1:
        kinds.append("forbidden-operator")
    if _outside(emoji_filter):
        kinds.append("outside-filter")
    return kinds


def _lone_after(last: str) -> list[str]:
    """The lone code points that cannot continue ``last``: a skin tone after a modifier base such
    as 👍 makes 👍🏽, a valid emoji, so it is no near miss there."""
    return [c for c in LONE if lookup(last + c) is None]


def _no_join(last: str, other: str) -> bool:
    """No emoji spans the ZWJ in ``last + ZWJ + other`` (whatever part of each it takes)."""
    return all(lookup(last[k:] + ZWJ + other[:j]) is None
               for k in range(len(last)) for j in range(1, len(other) + 1))


def near_misses(shape: Shape | None = None, emoji_filter: EmojiFilter | None = None) -> st.SearchStrategy[str]:
    """A text one small mistake away from valid under ``shape`` (default ``Shape()``) and
    ``emoji_filter``; each mutation is invalid by construction."""
    shape, emoji_filter = _check(shape, emoji_filter)
    return _near_misses(shape, emoji_filter)


@st.composite
def _near_misses(draw, shape: Shape, emoji_filter: EmojiFilter) -> str:
    tree = draw(_trees(shape, emoji_filter))
    text = str(tree)
    kind = draw(st.sampled_from(_mutations(shape, emoji_filter)))
    if kind == "unqualified":
        bad = draw(st.sampled_from(_with_vs16())).replace(VS16, "")
        return bad + " ➡️ " + text if draw(st.booleans()) else text + bad
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
        last = tree.lines[-1].groups[-1].emoji[-1].char
        if draw(st.booleans()):
            return text + draw(st.sampled_from(_lone_after(last)))
        return draw(st.sampled_from(LONE))
    if kind == "zwj-join":  # the last emoji and another joined by a ZWJ into no emoji: 👨‍😀
        last = tree.lines[-1].groups[-1].emoji[-1].char
        other = draw(_emoji(ALL).filter(lambda e: _no_join(last, e)))
        return text + ZWJ + other
    if kind == "cjk":
        return text + draw(st.sampled_from("中文字"))
    if kind == "double-newline":
        return text + "\n\n"
    if kind == "lead-missing":
        return text + "\n" + str(tree.lines[0])
    if kind == "long-group":  # one emoji more than a group may hold
        group = tree.lines[0].groups[0]
        return str(Group(group.emoji * (shape.emoji_per_group[1] // len(group.emoji) + 1))) + \
            text[len(str(group)):]
    if kind == "extra-step":  # one group more than a line may hold (joined by an allowed operator if any)
        first = tree.lines[0]
        op = (shape.operators or tuple(Operator))[0]
        extra = shape.steps[1] + 1 - len(first.groups)
        line = str(first) + f" {op.symbol} {first.groups[0]}" * extra
        return line + text[len(str(first)):]
    if kind == "forbidden-operator":
        forbidden = draw(st.sampled_from([op for op in Operator if op not in shape.operators]))
        first = tree.lines[0]
        if len(first.groups) > 1:
            ops = list(first.operators)
            ops[draw(st.integers(0, len(ops) - 1))] = forbidden
            broken = Line(first.groups, tuple(ops))
        else:
            broken = Line(first.groups + first.groups[:1], (forbidden,))
        return str(Tree((broken,) + tree.lines[1:]))
    if kind == "outside-filter":
        outside = draw(_outside_emoji(emoji_filter))
        first = tree.lines[0]
        group = first.groups[0]
        changed = Group((Emoji(outside),) + group.emoji[1:])
        return str(Tree((Line((changed,) + first.groups[1:], first.operators),) + tree.lines[1:]))
    return "➡️ " + text  # leading-operator
