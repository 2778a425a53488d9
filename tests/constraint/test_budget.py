"""The token-distance bound behind budget closing: an upper bound the vocabulary can always meet."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from emogram import EmojiFilter, Shape, compile_grammar
from emogram.constraint.matcher import matcher_for

from emogram.testing import explanations, shapes


def _engine(request, which):
    return request.getfixturevalue(which)


@pytest.mark.parametrize("which", ["smol_engine", "gemma_engine"])
@settings(max_examples=30)
@given(data=st.data())
def test_some_token_always_brings_the_end_one_step_closer(request, which, data):
    engine = _engine(request, which)
    shape = data.draw(shapes())
    grammar = compile_grammar(shape)
    cands = engine.candidates(grammar)
    m = matcher_for(grammar)
    raw = data.draw(explanations(shape)).encode()
    state = m.advance(m.initial, raw[: data.draw(st.integers(0, len(raw)))])[0]
    cost = cands.distance.cost(state)
    assert cost < float("inf")
    if cost == 0:
        assert m.accepting(state)
        return
    best = min(cands.distance.cost(step[0]) for piece in cands.pieces[: cands.n_content]
               if (step := m.advance(state, piece)) is not None)
    assert best <= cost - 1


def _exact_tokens(m, pieces, state, limit=12):
    frontier = {state[:3]: state}
    for depth in range(limit + 1):
        if any(m.accepting(s) for s in frontier.values()):
            return depth
        following = {}
        for s in frontier.values():
            for piece in pieces:
                step = m.advance(s, piece)
                if step is not None:
                    following.setdefault(step[0][:3], step[0])
        frontier = following
    return None


@settings(max_examples=20)
@given(data=st.data())
def test_the_bound_is_never_below_the_true_distance(smol_engine, data):
    palette = data.draw(st.lists(st.sampled_from(["🍎", "☀️", "👍🏽", "🇺🇸", "#️⃣", "👩‍🔬", "⌚"]),
                                 min_size=1, max_size=3, unique=True))
    shape = Shape(lines=data.draw(st.sampled_from([1, (1, 2)])), steps=data.draw(st.sampled_from([1, (1, 2)])),
                  emoji_per_group=data.draw(st.sampled_from([1, (1, 2)])))
    grammar = compile_grammar(shape, EmojiFilter.make(palette=palette))
    cands = smol_engine.candidates(grammar)
    m = matcher_for(grammar)
    raw = data.draw(explanations(shape, EmojiFilter.make(palette=palette))).encode()
    state = m.advance(m.initial, raw[: data.draw(st.integers(0, len(raw)))])[0]
    exact = _exact_tokens(m, list(cands.pieces[: cands.n_content]), state)
    assert exact is not None and cands.distance.cost(state) >= exact
