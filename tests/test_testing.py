"""The public hypothesis strategies (``emogram.testing``) keep their promises: explanations are in
the language of their shape and filter, near misses never are, and shapes cover the full ranges.
(llama.cpp's agreement with both is tested in test_language.py and test_matcher.py.)"""

from __future__ import annotations

import pytest
from hypothesis import Phase, find as _find, given, settings, strategies as st
from hypothesis.errors import NoSuchExample

from emogram import EmojiFilter, Operator, ParseError, Shape, Tree, compile_grammar, parse
from emogram.constraint.matcher import matcher_for
from emogram.language.grammar import MAX_EMOJI_PER_GROUP, MAX_LINES, MAX_STEPS
from emogram.language.unicode import lookup
from emogram.testing import emoji, explanations, near_misses, shapes

FILTERS = [
    EmojiFilter(),
    EmojiFilter.make(emoji_version="4.0"),
    # Modifier bases with and without their tones: a tone after 👍 makes 👍🏽, which is valid.
    EmojiFilter.make(palette=["👍", "✋", "👍🏽", "✋🏻", "🇺🇸", "👨", "👨‍💻", "#️⃣"]),
    EmojiFilter(flags=False, skin_tones=False, zwj=False),
]


def find(strategy, condition):
    """hypothesis.find without shrinking: is such an example drawn at all, and soon?"""
    return _find(strategy, condition, settings=settings(phases=[Phase.generate], max_examples=2000,
                                                        database=None))


@settings(max_examples=80)
@given(shape=shapes(), emoji_filter=st.sampled_from(FILTERS), data=st.data())
def test_explanations_are_in_the_language_and_near_misses_are_not(shape, emoji_filter, data):
    grammar = compile_grammar(shape, emoji_filter)
    matcher = matcher_for(grammar)
    tree = data.draw(explanations(shape, emoji_filter, as_tree=True))
    assert isinstance(tree, Tree)
    text = data.draw(explanations(shape, emoji_filter))
    assert str(parse(text, grammar=grammar)) == text and parse(str(tree), grammar=grammar) == tree
    assert matcher.text_accepted(text)
    bad = data.draw(near_misses(shape, emoji_filter))
    with pytest.raises(ParseError):
        parse(bad, grammar=grammar)
    assert not matcher.text_accepted(bad)


def test_no_near_miss_is_valid_after_a_modifier_base():
    """A skin tone after 👍 makes 👍🏽, a valid emoji: near_misses must never offer that as a miss.
    A palette of modifier bases and their toned forms, one emoji per answer: 2000 draws reach
    every mutation many times over, and none may parse."""
    flt = EmojiFilter.make(palette="👍👍🏻👍🏽✋✋🏻✋🏽")
    shape = Shape(lines=1, steps=1, emoji_per_group=1)
    grammar = compile_grammar(shape, flt)

    def valid(text: str) -> bool:
        try:
            parse(text, grammar=grammar)
        except ParseError:
            return False
        return True

    with pytest.raises(NoSuchExample):
        find(near_misses(shape, flt), valid)
    assert find(near_misses(shape, flt), lambda t: t.endswith("\u200d"))  # control: lone marks are drawn


@given(emoji_filter=st.sampled_from(FILTERS), data=st.data())
def test_emoji_are_content_the_filter_admits(emoji_filter, data):
    char = data.draw(emoji(emoji_filter))
    assert char in compile_grammar(Shape(), emoji_filter).emoji
    assert emoji_filter.admits(lookup(char))


def test_shapes_reach_the_full_ranges_and_every_operator_subset():
    assert find(shapes(), lambda s: s.lines == (MAX_LINES, MAX_LINES)).lines[1] == 12
    assert find(shapes(), lambda s: s.steps[1] == MAX_STEPS).steps[1] == 8
    assert find(shapes(), lambda s: s.emoji_per_group[0] == MAX_EMOJI_PER_GROUP)
    assert find(shapes(), lambda s: s.operators == ()).steps == (1, 1)
    assert find(shapes(), lambda s: len(s.operators) == 4)
    for op in Operator:
        assert find(shapes(), lambda s, op=op: s.operators == (op,) and s.steps[1] > 1)


def test_long_texts_are_drawn():
    """Not only the small end of the ranges: 12 lines of up to 8 groups appear."""
    text = find(explanations(Shape(lines=(1, 12), steps=(1, 8))), lambda t: t.count("\n") == 11
                and max(line.count(" ") for line in t.split("\n")) >= 2 * 7)
    assert len(parse(text).lines) == 12


def test_strategies_refuse_what_is_not_a_shape_or_a_filter():
    with pytest.raises(TypeError):
        explanations(shape=(1, 2))
    with pytest.raises(TypeError):
        near_misses(emoji_filter="🍎")
