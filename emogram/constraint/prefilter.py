"""The pre-filter: which tokens of a vocabulary could ever appear in emoji-only text.

Computed once per (vocabulary, grammar): a few hundred to 1,500 tokens of a vocabulary of 49k to
262k, plus the tokens that end an answer. Every step of the emoji phase draws among these only,
and the candidate-only head (``backend/head.py``) computes logits for these only.

This module knows a vocabulary only through the small ``Vocabulary`` protocol, not llama.cpp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import DecodingError
from .budget import TokenDistance
from .lexeme_dfa import utf8_len
from .matcher import Matcher


class Vocabulary(Protocol):
    """What the engine needs to know of a model's tokens."""

    n_vocab: int

    def pieces(self) -> list[bytes]: ...  # the bytes each token stands for

    def eog_tokens(self) -> list[int]: ...  # end-of-generation tokens

    def is_control(self, token: int) -> bool: ...


@dataclass(frozen=True)
class Candidates:
    """The tokens worth considering for one (vocabulary, grammar), computed once."""

    tokens: np.ndarray  # int32, content tokens then end tokens
    pieces: tuple[bytes, ...]
    n_content: int
    eog: int | None  # one end-of-generation token, to ask the grammar "may the text end here?"
    distance: TokenDistance  # tokens still needed to finish, from any matcher state
    min_answer_tokens: float  # tokens of the shortest complete answer (smaller budgets are refused)
    partial: np.ndarray  # bool: content tokens holding only part of a character


def _alphabet(matcher: Matcher) -> set[int]:
    return {cp for kids in matcher.children for cp in kids}


def select(vocab: Vocabulary, matcher: Matcher, end_texts: tuple[str, ...],
           name: str = "the model") -> tuple[np.ndarray, int, int | None]:
    """(content tokens then end tokens, how many are content, one end-of-generation token): the
    tokens whose bytes could appear inside emoji-only text, and those that end an answer."""
    alphabet = _alphabet(matcher)
    encodings = [chr(cp).encode() for cp in alphabet]
    prefixes = {e[:k] for e in encodings for k in range(1, len(e))}
    suffixes = {e[k:] for e in encodings for k in range(1, len(e))}
    infixes = {e[a:b] for e in encodings for a in range(1, len(e)) for b in range(a + 1, len(e) + 1)}

    def fits(piece: bytes) -> bool:
        if not piece or piece[0] == 0:
            return False
        i = 0
        while i < len(piece) and i < 3 and 0x80 <= piece[i] <= 0xBF:
            i += 1
        if i == len(piece):
            return piece in infixes
        if i and piece[:i] not in suffixes:
            return False
        body = piece[i:]
        k = len(body) - 1
        while k > 0 and 0x80 <= body[k] <= 0xBF:
            k -= 1
        need = utf8_len(body[k])
        if need == 0:
            return False
        if k + need > len(body):
            if body[k:] not in prefixes:
                return False
            body = body[:k]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return all(ord(c) in alphabet for c in text)

    pieces = vocab.pieces()
    content, ends = [], []
    end_bytes = tuple(t.encode() for t in end_texts)
    # a piece that is an end text and blanks strips to that text stripped: the cheap test first
    end_cores = {e.strip() for e in end_bytes}
    eog = set(vocab.eog_tokens())
    used_bytes = bytes(sorted({b for e in encodings for b in e} | set(b" \t\r\n\x0b\x0c")))
    for tok, piece in enumerate(pieces):
        if tok in eog:
            ends.append(tok)
        elif (end_bytes and piece.strip() in end_cores
              and any(piece.startswith(e) and not piece[len(e):].strip() for e in end_bytes)):
            if not vocab.is_control(tok):
                ends.append(tok)
        elif piece.translate(None, used_bytes) or not piece:  # a byte no emoji text has: most tokens
            continue
        elif vocab.is_control(tok):
            continue
        elif fits(piece):
            content.append(tok)
    if not content:
        raise DecodingError(f"no token of {name} can write an emoji")
    judge_eog = next((t for t in ends if t in eog), None)
    return np.array(content + ends, dtype=np.int32), len(content), judge_eog


def prefilter(vocab: Vocabulary, matcher: Matcher, end_texts: tuple[str, ...],
              name: str = "the model") -> Candidates:
    """Tokens whose bytes could appear inside emoji-only text, and the tokens that end an answer."""
    return assemble(vocab, matcher, *select(vocab, matcher, end_texts, name))


def assemble(vocab: Vocabulary, matcher: Matcher, tokens: np.ndarray, n_content: int,
             eog: int | None) -> Candidates:
    """``Candidates`` from what ``select`` chose (which the engine keeps in its set-up cache)."""
    pieces = vocab.pieces()
    content = tokens[:n_content].tolist()
    distance = TokenDistance(matcher, [pieces[t] for t in content])
    partial = np.array([not _whole_characters(pieces[t]) for t in content] + [False] * (len(tokens) - n_content))
    return Candidates(tokens, tuple(pieces[t] for t in tokens.tolist()), n_content, eog, distance,
                      distance.cost(matcher.initial), partial)


def _whole_characters(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class PieceIndex:
    """Content candidates by their bytes (without a leading space), so a glossed answer's part
    finds the pieces the lexicon's emoji start with or hold (and the echo of the part before) by
    looking up the few substrings of those emoji, not by scanning every piece: a part's set-up
    went from 7 ms to about one (``decoding/gloss.py``). ``joiners``: which pieces start with one
    of these byte strings. Made once per ``engine.Setup``."""

    def __init__(self, pieces: tuple[bytes, ...], n_content: int, joiners: tuple[bytes, ...]) -> None:
        self.by_body: dict[bytes, list[int]] = {}
        self.joiners = np.zeros(n_content, dtype=bool)
        for i, piece in enumerate(pieces[:n_content]):
            body = piece[1:] if piece.startswith(b" ") else piece
            if body:
                self.by_body.setdefault(body, []).append(i)
                self.joiners[i] = body.startswith(joiners)

    def spelled(self, text: bytes) -> np.ndarray:
        """Content pieces whose bytes are ``text``."""
        return np.array(self.by_body.get(text, ()), dtype=np.int64)

    def inside(self, texts: list[bytes]) -> np.ndarray:
        """Content pieces that start one of ``texts`` or lie in one past its first byte, sorted."""
        found: set[int] = set()
        for s in texts:
            for end in range(1, len(s) + 1):
                found.update(self.by_body.get(s[:end], ()))
            rest = s[1:]
            for a in range(len(rest)):
                for b in range(a + 1, len(rest) + 1):
                    found.update(self.by_body.get(rest[a:b], ()))
        return np.array(sorted(found), dtype=np.int64)
