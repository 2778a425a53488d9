"""A glossed answer's words: which tokens a part's words may use, and the phases that write them
(``gloss.py`` joins each part's words to its emoji).

The words are free text restricted to word tokens, ended by a token holding a colon. A word the
model has already used is pulled away from in every spelling, so the parts name different things.
"""

from __future__ import annotations

import re
import time
from typing import Callable

import numpy as np

from ..stats import Stats
from .sampling import SamplingParams, log_probability, make_sampler
from .sequence import Output, Step

WORD_TOKENS = 6  # tokens of one part's words at most
WORD_PENALTY = 3.0  # logits off a word (any spelling of its stem) once a part has used it
WORD_PIECE = re.compile(rb"^ ?[A-Za-z][a-z'-]*$")  # a token that may stand in a part's words


def word_tokens(pieces: list[bytes], control: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens a part's words may use, the tokens that end the words (those holding a colon), and
    for each word token the index of its stem (``words.stem``, without a leading space, lower case):
    " hearts" and "Heart" are one word, so using it once pulls away from both)."""
    words = [t for t, p in enumerate(pieces) if not control[t] and WORD_PIECE.match(p)]
    colons = [t for t, p in enumerate(pieces) if not control[t] and p.strip() == b":"]
    from ..knowledge.words import stem
    spelling: dict[str, int] = {}
    same = np.array([spelling.setdefault(stem(pieces[t].strip().decode("ascii", "replace")), len(spelling))
                     for t in words], dtype=np.int32)
    return np.array(words + colons, dtype=np.int32), np.array(colons, dtype=np.int32), same


def is_word_token(pieces: list[bytes], control: np.ndarray) -> Callable[[int], bool]:
    """Whether a token may stand in a part's words: the test the corpus and the bank are built
    with, so that their words are ones the model can write (``training/``)."""
    return lambda t: not control[t] and bool(WORD_PIECE.match(pieces[t]))


class Words:
    """The words of one answer's parts: the tokens they may use, and the pull away from words
    already used, kept across the parts."""

    def __init__(self, *, ids: np.ndarray, n_words: int, same: np.ndarray, pieces: list[bytes],
                 params: SamplingParams, seed: int | None, likelihood: bool, stats: Stats) -> None:
        self.ids, self.n_words, self.same, self.pieces = ids, n_words, same, pieces
        self.bias = np.zeros(len(ids), dtype=np.float64)
        self.no_ban = np.zeros(len(ids), dtype=np.uint8)
        self.sampler = make_sampler(ids, params, seed)
        self.likelihood = likelihood  # keep the model's log-probability of its choices (best of N)
        self.stats = stats

    def colon(self) -> int:
        """The token that ends a part's words when they are written for the model."""
        colon = [t for t in self.ids[self.n_words:] if self.pieces[t] == b":"]
        return int(colon[0]) if colon else int(self.ids[self.n_words])


class WordPhase:
    """A part's words, up to the colon. Full-vocabulary logits, restricted to word tokens."""

    full_logits = True

    def __init__(self, words: Words) -> None:
        self.words = words
        self.raw = b""
        self.count = 0
        self.started = time.perf_counter()

    def step(self, out: Output) -> Step:
        w = self.words
        bias = w.bias.copy()
        if self.count == 0:
            bias[w.n_words:] = -np.inf  # at least one word before the colon
        elif self.count >= WORD_TOKENS:
            bias[:w.n_words] = -np.inf  # enough words: the colon now
        logits = out.full()
        i = w.sampler.sample(logits, bias, w.no_ban)
        tok = int(w.ids[i]) if i >= 0 else int(w.ids[w.n_words])
        if w.likelihood:
            w.stats.log_likelihood += log_probability(logits[w.ids], max(i, 0))
        w.stats.plan_tokens += 1
        if i >= w.n_words or i < 0:
            w.stats.plan_seconds += time.perf_counter() - self.started
            return Step([tok], finished=True)
        w.bias[:w.n_words][w.same == w.same[i]] -= WORD_PENALTY  # pull away from used words
        self.raw += w.pieces[tok]
        self.count += 1
        return Step([tok])


class ForcedWords:
    """A part's words written for the model: a stage of the entry the answer follows."""

    full_logits = False

    def __init__(self, words: str, tokens: list[int]) -> None:
        self.raw = words.encode()
        self.tokens = tokens

    def step(self, out: Output) -> Step:
        return Step(list(self.tokens), finished=True)
