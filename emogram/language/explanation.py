"""What ``explain`` returns: the parsed tree and, beside it, what describes the run.

The tree (``tree.Tree``) is data; renderers are functions over it (``render.py``); the run's
metadata (topic, model, timings, the plan or reasoning in words) stays out of the tree, so two
explanations are equal when their trees are, whatever produced them.
"""

from __future__ import annotations

from typing import Any, Iterable

from . import render
from .grammar import Grammar, Shape
from .tree import Emoji, Group, Line, Tree, parse_tree
from .unicode import EmojiFilter


class Explanation:
    """An explanation in emoji: ``str(e)`` is the canonical text, ``e.lines`` the typed tree.

    ``topic``, ``model``, ``adapter`` (the LoRA adapter applied, "" for none), ``reasoning`` (think
    mode), ``plan`` (the parts it was planned from), ``sources`` (the bank entries it used,
    ``emogram.stats.Source``) and ``stats`` (timings, ``emogram.stats.Stats``) describe how it was
    made and take no part in equality.
    """

    __slots__ = ("tree", "topic", "reasoning", "stats", "model", "plan", "adapter", "sources")

    def __init__(self, tree: Tree | Iterable[Line], *, topic: str = "", reasoning: str = "",
                 stats: Any = None, model: str = "", plan: tuple[str, ...] = (),
                 adapter: str = "", sources: tuple = ()) -> None:
        self.tree = tree if isinstance(tree, Tree) else Tree(tuple(tree))
        self.topic = topic
        self.reasoning = reasoning
        self.stats = stats
        self.model = model
        self.plan = tuple(plan)
        self.adapter = adapter
        self.sources = tuple(sources)

    # -- the tree --
    @property
    def lines(self) -> tuple[Line, ...]:
        return self.tree.lines

    @property
    def text(self) -> str:
        return str(self.tree)

    def __str__(self) -> str:
        return str(self.tree)

    def emoji(self) -> list[Emoji]:
        """Every content emoji, in reading order."""
        return self.tree.emoji()

    def groups(self) -> list[Group]:
        return self.tree.groups()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Explanation):
            return self.tree == other.tree
        if isinstance(other, Tree):
            return self.tree == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.tree)

    def __repr__(self) -> str:
        about = f" topic={self.topic!r}" if self.topic else ""
        return f"<Explanation{about} {str(self.tree)!r}>"

    # -- renderings --
    def gloss(self) -> str:
        """The explanation in words, from the emoji's CLDR names (for screen readers)."""
        return render.gloss(self.tree)

    def to_dict(self, *, stats: bool = False) -> dict[str, Any]:
        return render.to_dict(self, stats=stats)

    def to_json(self, **kwargs: Any) -> str:
        return render.to_json(self, **kwargs)

    def to_mermaid(self) -> str:
        return render.to_mermaid(self.tree)

    def to_html(self, **kwargs: Any) -> str:
        return render.to_html(self, **kwargs)


def parse(text: str, shape: Shape | None = None, emoji_filter: EmojiFilter | None = None,
          *, grammar: Grammar | None = None) -> Explanation:
    """Parse canonical emogram text into an ``Explanation``, or raise ``ParseError`` saying where.

    ``shape`` and ``emoji_filter`` default to the widest language (any lines, steps and group sizes
    up to the ceilings, every emoji), so text from any emogram run parses.
    """
    return Explanation(parse_tree(text, shape, emoji_filter, grammar=grammar))
