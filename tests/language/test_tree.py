"""The explanation language: the golden example, round trips, errors with positions, and the
agreement of the lark parser, the GBNF (judged by llama.cpp) and the engine's matcher."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings, strategies as st

from emogram import EmojiFilter, Explanation, Operator, ParseError, Shape, compile_grammar, parse
from emogram.constraint.matcher import matcher_for
from emogram.language.tree import Emoji, Group, Line

from oracle import GBNFOracle
from emogram.testing import explanations, near_misses, shapes

GOLDEN = "📄 ➡️ 🔤🔢 ➕ 📍\n➡️ 👀🔄 🟰 🧠\n➡️ 🧱🧱🧱\n➡️ ⚡ 🆚 🐢"
DEFAULT = compile_grammar()


def test_golden_transformers_example_parses_to_the_expected_tree():
    e = parse(GOLDEN)
    assert len(e.lines) == 4
    first = e.lines[0]
    assert [str(g) for g in first.groups] == ["📄", "🔤🔢", "📍"]
    assert first.operators == (Operator.LEADS_TO, Operator.AND)
    assert e.lines[1].operators == (Operator.MEANS,)
    assert [x.char for x in e.lines[2].groups[0].emoji] == ["🧱", "🧱", "🧱"]
    assert e.lines[3].operators == (Operator.VERSUS,)
    assert str(e) == GOLDEN
    assert [x.name for x in e.emoji()][:2] == ["page facing up", "input latin letters"]


def test_trees_are_values():
    a, b = parse(GOLDEN), parse(GOLDEN)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(Exception):
        a.lines = ()  # type: ignore[misc]


@pytest.mark.parametrize("text, line, column, char", [
    ("📄 ➡️ ➡️📬", 1, 6, "➡"),           # an operator inside a group (seen in a prototype)
    ("📄  ➡️ 📬", 1, 3, " "),             # a stray space
    ("📄\n📬", 2, 1, "📬"),               # a new line must start with ➡️
    ("hello", 1, 1, "h"),
    ("❤", 1, 1, "❤"),                     # unqualified: U+FE0F missing
    ("📄 ➡️ 📬 ", 1, 8, None),           # a trailing space: the text ends where an operator must come
    ("📄\n", 2, 1, None),                 # a text ending in a newline ends on the next line
    ("📄 ➡️ 📬\n➡️ 🍎\n", 3, 1, None),
    ("📄\n\n", 2, 1, "\n"),
])
def test_parse_errors_say_where(text, line, column, char):
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column, err.char) == (line, column, char)
    assert f"line {line}, column {column}" in str(err)


def test_parse_error_at_the_end_of_text():
    with pytest.raises(ParseError, match="ends too early") as info:
        parse("📄 ➡️")
    assert info.value.char is None
    with pytest.raises(ParseError):
        parse("")


def test_parse_follows_the_shape_and_filter():
    assert parse("🍎🍌", Shape(emoji_per_group=2), EmojiFilter.make(palette="🍎🍌"))
    with pytest.raises(ParseError):
        parse("🍎🍌🍎", Shape(emoji_per_group=2))
    with pytest.raises(ParseError):
        parse("🍇", emoji_filter=EmojiFilter.make(palette="🍎🍌"))
    with pytest.raises(ParseError):
        parse("📄\n➡️ 📄", Shape(lines=1))


def test_tree_invariants_are_checked():
    with pytest.raises(ValueError):
        Line((Group((Emoji("📄"),)),), (Operator.AND,))
    with pytest.raises(ValueError):
        Group(())
    with pytest.raises(ValueError):
        Explanation(())


@given(st.data())
def test_round_trip_tree_text_tree(data):
    shape = data.draw(shapes())
    tree = data.draw(explanations(shape, as_tree=True))
    assert parse(str(tree), shape) == tree


@given(explanations())
@example(GOLDEN)
def test_round_trip_text_tree_text(text):
    assert str(parse(text)) == text


@settings(max_examples=40)
@given(explanations())
@example(GOLDEN)
def test_valid_texts_are_accepted_by_lark_gbnf_and_matcher(smol, text):
    parse(text, grammar=DEFAULT)
    assert matcher_for(DEFAULT).text_accepted(text)
    assert _oracle(smol).accepts(text)


@settings(max_examples=60)
@given(near_misses())
@example("📄 ➡️ ➡️📬")
@example("📄 ➡️ 📬\n")
def test_near_misses_are_rejected_by_lark_gbnf_and_matcher(smol, text):
    with pytest.raises(ParseError):
        parse(text, grammar=DEFAULT)
    assert not matcher_for(DEFAULT).text_accepted(text)
    assert not _oracle(smol).accepts(text)


@settings(max_examples=25)
@given(st.data())
def test_the_three_agree_under_any_shape(smol, data):
    shape = data.draw(shapes())
    grammar = compile_grammar(shape)
    text = data.draw(st.one_of(explanations(shape), near_misses(shape), explanations()))
    try:
        parse(text, grammar=grammar)
        by_lark = True
    except ParseError:
        by_lark = False
    assert matcher_for(grammar).text_accepted(text) == by_lark
    assert GBNFOracle(smol, grammar.gbnf).accepts(text) == by_lark


_ORACLES: dict = {}


def _oracle(model):
    if id(model) not in _ORACLES:
        _ORACLES[id(model)] = GBNFOracle(model, DEFAULT.gbnf)
    return _ORACLES[id(model)]
