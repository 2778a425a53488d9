"""The plain one-sequence decode loop the benchmarks compare the engine with gives llama.cpp's own
numbers, and reuses a prefix it already holds as emogram's prompt cache does."""

from __future__ import annotations

import numpy as np

from emogram.backend.single_sequence import SingleSequence


def same(x: np.ndarray, y: np.ndarray) -> bool:
    return int(np.argmax(x)) == int(np.argmax(y)) and float(np.max(np.abs(x - y))) < 0.05


def test_single_sequence_reuses_a_shared_prefix_and_gets_fresh_numbers(smol):
    """Prefilling a prompt that shares a prefix with what the sequence holds keeps those cells and
    evaluates the rest: the logits, and those after a pushed token, match a fresh sequence's (to
    rounding: a prompt evaluated in two decodes sums in another order than in one)."""
    a = smol.tokenize("Emoji explanations.\nTopic: rain\nEmoji:", add_special=True)
    b = smol.tokenize("Emoji explanations.\nTopic: snow and ice\nEmoji:", add_special=True)
    reused, fresh = SingleSequence(smol, 512), SingleSequence(smol, 512)
    try:
        reused.prefill(a)
        reused.push(int(np.argmax(reused.logits())))
        reused.prefill(b)  # shares "Emoji explanations.\nTopic:" with a
        fresh.prefill(b)
        assert same(reused.logits(), fresh.logits())
        reused.prefill(b)  # the very same prompt: its last token is evaluated again
        assert same(reused.logits(), fresh.logits())
        token = int(np.argmax(fresh.logits()))
        reused.push(token)
        fresh.push(token)
        assert same(reused.logits(), fresh.logits())
        assert reused.held == fresh.held == b + [token]
    finally:
        reused.close()
        fresh.close()
