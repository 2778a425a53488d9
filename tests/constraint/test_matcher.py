"""The engine's matcher: the same language as the GBNF, byte by byte, with an exact distance to
the end (which is what lets a token budget close an answer instead of cutting it)."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings, strategies as st

from emogram import EmojiFilter, Shape, compile_grammar
from emogram.constraint.matcher import matcher_for

from oracle import GBNFOracle
from emogram.testing import explanations, near_misses

DEFAULT = compile_grammar()


def _shortest_completion(matcher, state, limit=1000):
    """Breadth-first over single bytes: the true fewest bytes to an accepting state."""
    seen = {state[:3]}
    todo = deque([(state, 0)])
    while todo:
        s, d = todo.popleft()
        if matcher.accepting(s):
            return d
        if d >= limit:
            continue
        for b in range(256):
            nxt = matcher.advance(s, bytes([b]))
            if nxt is not None and nxt[0][:3] not in seen:
                seen.add(nxt[0][:3])
                todo.append((nxt[0], d + 1))
    return None


@settings(max_examples=30)
@given(st.data())
def test_remaining_is_the_exact_shortest_completion(data):
    palette = data.draw(st.lists(st.sampled_from(["🍎", "☀️", "👍🏽", "🇺🇸", "#️⃣", "👩‍🔬", "⌚", "©️"]),
                                 min_size=1, max_size=4, unique=True))
    shape = Shape(lines=data.draw(st.sampled_from([1, (1, 2), (2, 3)])),
                  steps=data.draw(st.sampled_from([1, (1, 2), (2, 2)])),
                  emoji_per_group=data.draw(st.sampled_from([1, (1, 2), (2, 3)])))
    grammar = compile_grammar(shape, EmojiFilter.make(palette=palette))
    m = matcher_for(grammar)
    text = data.draw(explanations(shape, EmojiFilter.make(palette=palette))).encode()
    cut = data.draw(st.integers(0, len(text)))
    state = m.advance(m.initial, text[:cut])[0]
    assert m.remaining(state) == _shortest_completion(m, state)


@given(explanations())
def test_remaining_never_exceeds_what_the_text_still_writes(text):
    m = matcher_for(DEFAULT)
    data = text.encode()
    state = m.initial
    for k in range(len(data)):
        assert m.remaining(state) <= len(data) - k
        assert (m.remaining(state) == 0) == m.accepting(state)
        state = m.advance(state, data[k:k + 1])[0]
    assert m.accepting(state) and m.remaining(state) == 0


@given(explanations(), st.data())
def test_any_split_into_chunks_gives_the_same_lexemes(text, data):
    """Token boundaries fall anywhere, even inside a UTF-8 sequence: the lexemes are the same."""
    m = matcher_for(DEFAULT)
    raw = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    state, lexemes, last = m.initial, [], 0
    for cut in cuts + [len(raw)]:
        step = m.advance(state, raw[last:cut])
        assert step is not None
        state, done = step
        lexemes += done
        last = cut
    lexemes += m.finish(state)
    assert "".join(lexemes) == text


@settings(max_examples=40)
@given(st.one_of(explanations(), near_misses()), st.data())
def test_prefixes_agree_with_llama_cpp(smol, text, data):
    """What the matcher lets through, llama.cpp lets through, prefix by prefix."""
    cut = data.draw(st.integers(0, len(text)))
    prefix = text[:cut]
    m = matcher_for(DEFAULT)
    ours = m.advance(m.initial, prefix.encode()) is not None
    assert ours == _oracle(smol).accepts_prefix(prefix)


@settings(max_examples=40)
@given(st.one_of(explanations(), near_misses()), st.data())
def test_prefixes_agree_with_llama_cpp_at_byte_cuts(smol, text, data):
    """Tokens end inside characters too (byte tokens): at any byte cut, the matcher's verdict on
    the partial character is llama.cpp's."""
    raw = text.encode()
    cut = data.draw(st.integers(0, len(raw)))
    m = matcher_for(DEFAULT)
    assert (m.advance(m.initial, raw[:cut]) is not None) == _oracle(smol).accepts_prefix(raw[:cut])


# Partial characters where only the whole prefix, not its lead byte, tells right from wrong: after
# "👨‍" only some code points may follow (👩 💻 ❤ ...), and 😀's block is not among them; after a
# space only an operator may follow.
BYTE_CUT_TEXTS = ["👨\u200d😀", "👨\u200d💻 ➡️ 👩\u200d❤️\u200d👨", "📄 🔤", "📄 ➡️ ➡️📬", "🇺🇸🇺 ➕ 🏴‍☠️",
                  "👍🏽 🆚 👍\U0001F3FF\U0001F3FB", "#️⃣ 🟰 *️⃣\u20e3",
                  "📄 ➡️ 🔤🔢 ➕ 📍\n➡️ 👀🔄 🟰 🧠\n➡️ 🧱🧱🧱\n➡️ ⚡ 🆚 🐢"]


@pytest.mark.parametrize("text", BYTE_CUT_TEXTS)
def test_every_byte_cut_agrees_with_llama_cpp(smol, text):
    m = matcher_for(DEFAULT)
    raw = text.encode()
    for cut in range(len(raw) + 1):
        ours = m.advance(m.initial, raw[:cut]) is not None
        assert ours == _oracle(smol).accepts_prefix(raw[:cut]), (cut, raw[:cut])


def test_partial_utf8_is_checked_against_what_can_follow():
    m = matcher_for(DEFAULT)
    after_space = m.advance(m.initial, "📄 ".encode())[0]  # only an operator may follow
    assert m.advance(after_space, "➡️".encode()[:2]) is not None   # a prefix of ➡
    assert m.advance(after_space, "📄".encode()[:2]) is not None   # F0 9F could still be 🆚
    assert m.advance(after_space, "📄".encode()[:3]) is None       # F0 9F 93: no operator there
    assert m.advance(m.initial, b"\x80") is None
    assert m.advance(m.initial, b"\xff") is None


_ORACLE: list = []


def _oracle(model):
    if not _ORACLE:
        _ORACLE.append(GBNFOracle(model, DEFAULT.gbnf))
    return _ORACLE[0]
