"""What the decoding tests share: the validity check of an answer, and logits that stand in for a
forward pass (``decoding/test_engine.py``, ``decoding/test_gloss.py``)."""

from __future__ import annotations

import emoji as emoji_package
import numpy as np

from emogram import compile_grammar, parse


def assert_valid(explanation, grammar=None, max_tokens=None):
    """Parses (lark), emoji only apart from the language's spaces and newlines, within budget."""
    text = str(explanation)
    assert parse(text, grammar=grammar or compile_grammar()) == explanation
    assert emoji_package.purely_emoji(text.replace(" ", "").replace("\n", ""))
    assert "\ufffd" not in text
    stats = explanation.stats
    assert stats.disagreements == 0
    if max_tokens is not None:
        assert stats.eval_tokens <= max_tokens


class RandomLogits:
    """Logits from a seeded generator, in one of several nasty styles (an ``Output`` for a phase)."""

    def __init__(self, n_vocab: int, seed: int, style: str, candidates: np.ndarray) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = n_vocab
        self.style = style
        self.tokens = candidates
        self.buf = np.zeros(n_vocab, dtype=np.float32)

    def candidates(self) -> np.ndarray:
        r, buf = self.rng, self.buf
        buf[:] = r.standard_normal(self.n).astype(np.float32) * 3
        if self.style == "candidates":  # mass on random candidate tokens (valid or not)
            buf[r.choice(self.tokens, size=20)] += 15
        elif self.style == "ties":
            buf[:] = np.round(buf / 3)
        elif self.style == "extreme":
            buf[r.choice(self.tokens, size=5)] = 3e38
            buf[r.choice(self.n, size=100)] = -3e38
        elif self.style == "text":  # a model that wants to write anything but emoji
            buf[:] -= 10
            buf[r.choice(self.n, size=200)] += 25
        return buf

    def full(self) -> np.ndarray:
        return self.candidates()
