"""The emogram language: its typed tree and its parser.

An explanation is 1 to N lines. A line is a chain of groups joined by operators; a group is 1 to K
content emoji written together. Operators are a fixed set with fixed meanings: ``➡️`` leads to,
``➕`` combined with, ``🆚`` versus, ``🟰`` means. Every line after the first begins with ``➡️ ``
(it continues from the line before). Spacing is canonical: one space on each side of an operator,
one ``\\n`` between lines, nothing else. Operator emoji never appear inside a group.

    📄 ➡️ 🔤🔢 ➕ 📍
    ➡️ 👀🔄 🟰 🧠
    ➡️ 🧱🧱🧱
    ➡️ ⚡ 🆚 🐢

The parser is lark (LALR) running the grammar that ``grammar.py`` writes from the same rules as the
GBNF, so what llama.cpp lets the model write is exactly what parses. Full spec: docs/language.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import lark

from ..errors import InputError, ParseError
from .grammar import (MAX_EMOJI_PER_GROUP, MAX_LINES, MAX_STEPS, Grammar, Operator, Shape,
                      compile_grammar)
from .unicode import EmojiFilter, name as emoji_name


@dataclass(frozen=True)
class Emoji:
    """One fully-qualified emoji (possibly several code points: ZWJ, skin tone, flag)."""

    char: str

    @property
    def name(self) -> str:
        return emoji_name(self.char)

    def __str__(self) -> str:
        return self.char


@dataclass(frozen=True)
class Group:
    """Emoji written together, read as one idea (``🔤🔢``: letters and numbers)."""

    emoji: tuple[Emoji, ...]

    def __post_init__(self) -> None:
        if not self.emoji:
            raise InputError("a group holds at least one emoji")

    def __str__(self) -> str:
        return "".join(e.char for e in self.emoji)


@dataclass(frozen=True)
class Line:
    """Groups joined by operators: ``len(operators) == len(groups) - 1``."""

    groups: tuple[Group, ...]
    operators: tuple[Operator, ...] = ()

    def __post_init__(self) -> None:
        if not self.groups or len(self.operators) != len(self.groups) - 1:
            raise InputError("a line needs one operator between each pair of groups")

    def steps(self) -> list[tuple[Operator | None, Group]]:
        """(operator before, group) pairs; the first group has no operator before it."""
        return list(zip((None, *self.operators), self.groups))

    def __str__(self) -> str:
        parts = [str(self.groups[0])]
        for op, group in zip(self.operators, self.groups[1:]):
            parts += [op.symbol, str(group)]
        return " ".join(parts)


@dataclass(frozen=True)
class Tree:
    """The parsed text: lines of groups of emoji. ``str()`` gives the canonical text back.

    Pure data, like lark's ``Tree``: renderings are functions over it (``render.py``), and what
    describes a run (topic, model, timings) lives beside it in ``explanation.Explanation``.
    """

    lines: tuple[Line, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise InputError("an explanation has at least one line")

    def __str__(self) -> str:
        return "\n".join((Operator.LEADS_TO.symbol + " " if i else "") + str(line)
                         for i, line in enumerate(self.lines))

    @property
    def text(self) -> str:
        return str(self)

    def emoji(self) -> list[Emoji]:
        """Every content emoji, in reading order."""
        return [e for line in self.lines for g in line.groups for e in g.emoji]

    def groups(self) -> list[Group]:
        return [g for line in self.lines for g in line.groups]


class _ToTree(lark.Transformer):
    def start(self, items):
        return Tree(tuple(i for i in items if isinstance(i, Line)))

    def line(self, items):
        groups = tuple(i for i in items if isinstance(i, Group))
        ops = tuple(i for i in items if isinstance(i, Operator))
        return Line(groups, ops)

    def group(self, items):
        return Group(tuple(Emoji(str(t)) for t in items))

    def op(self, items):
        return Operator[items[0].type]


@functools.lru_cache(maxsize=32)
def _parser(grammar: Grammar) -> lark.Lark:
    return lark.Lark(grammar.lark, parser="lalr", lexer="contextual", transformer=_ToTree(),
                     maybe_placeholders=False)


def parse_tree(text: str, shape: Shape | None = None, emoji_filter: EmojiFilter | None = None,
               *, grammar: Grammar | None = None) -> Tree:
    """Parse canonical emogram text into a ``Tree``, or raise ``ParseError`` saying where.

    ``shape`` and ``emoji_filter`` default to the widest language (any lines, steps and group sizes
    up to the ceilings, every emoji), so text from any emogram run parses.
    """
    if not isinstance(text, str):
        from ..errors import InputTypeError
        raise InputTypeError(f"text must be str, not {type(text).__name__}")
    if grammar is None:
        grammar = compile_grammar(shape or WIDEST, emoji_filter or EmojiFilter())
    try:
        return _parser(grammar).parse(text)  # type: ignore[return-value]  # (_ToTree builds our Tree)
    except lark.exceptions.UnexpectedCharacters as exc:
        raise ParseError(f"unexpected character {_show(text, exc.pos_in_stream)}",
                         line=exc.line, column=exc.column, char=_char_at(text, exc.pos_in_stream),
                         text=text) from None
    except lark.exceptions.UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            line, column = _end_position(text)
            raise ParseError(f"text ends too early (expected {_expected(exc.expected)})",
                             line=line, column=column, char=None, text=text) from None
        raise ParseError(f"unexpected {_show(text, tok.start_pos)} (expected {_expected(exc.expected)})",
                         line=tok.line, column=tok.column, char=_char_at(text, tok.start_pos),
                         text=text) from None
    except lark.exceptions.UnexpectedEOF as exc:
        line, column = _end_position(text)
        raise ParseError(f"text ends too early (expected {_expected(exc.expected)})",
                         line=line, column=column, char=None, text=text) from None


def _char_at(text: str, pos: int | None) -> str | None:
    return text[pos] if pos is not None and 0 <= pos < len(text) else None


def _show(text: str, pos: int | None) -> str:
    ch = _char_at(text, pos)
    if ch is None:
        return "end of text"
    return f"{ch!r} (U+{ord(ch):04X})"


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


_TERMINAL_WORDS = {"EMOJI": "an emoji", "LEAD": "'➡️' to start the line", "LEADS_TO": "'➡️'",
                   "AND": "'➕'", "VERSUS": "'🆚'", "MEANS": "'🟰'"}


def _expected(names) -> str:
    words = []
    for n in sorted(names):
        if n in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[n])
        elif n.startswith("__ANON") or n in ("SPACE", "NEWLINE", "LF"):
            words.append("a space or a new line")
        elif n == "$END":
            words.append("the end")
        else:
            words.append(n.lower())
    return " or ".join(dict.fromkeys(words)) or "nothing"


# The language every emogram answer belongs to, whatever options produced it.
WIDEST = Shape(lines=(1, MAX_LINES), steps=(1, MAX_STEPS), emoji_per_group=(1, MAX_EMOJI_PER_GROUP))

