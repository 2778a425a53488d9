"""Emoji whose names share a word with the topic: a nudge for small models.

"volcanoes" finds 🌋 (volcano), "making coffee" finds ☕ (hot beverage, alias coffee), "DNA" finds
🧬. The words come from the emoji's CLDR name and its aliases in the ``emoji`` package; the topic's
words are lower-cased, stripped of a plural ending (``words.stem``) and of a few function words.
The engine turns the matches into a small logit bonus on the tokens that begin those emoji
(``Request.hint``). ``lexicon.related`` is the richer lookup (CLDR and emojilib keywords).
"""

from __future__ import annotations

import functools
import re
from typing import Iterable

import emoji as _emoji_data

from .words import stem as _stem

_STOP = frozenset(
    "a an the of and or in on at to for with how what why when is are was were be by from as it its "
    "into your my our their this that these those do does doing works work".split())
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, frozenset[str]]:
    """word -> emoji whose name or aliases contain it."""
    out: dict[str, set[str]] = {}
    for char, data in _emoji_data.EMOJI_DATA.items():
        names = [data["en"], *data.get("alias", [])]
        for name in names:
            for w in words(name.strip(":").replace("_", " ")):
                out.setdefault(w, set()).add(char)
    return {w: frozenset(chars) for w, chars in out.items()}


def related(topic: str, allowed: Iterable[str], limit: int = 24) -> list[str]:
    """Allowed emoji sharing a word with the topic, best first (most shared words, then fewest
    emoji per word: a rare word says more than a common one)."""
    allowed = set(allowed)
    index = _index()
    scores: dict[str, float] = {}
    for w in words(topic):
        hits = index.get(w, frozenset()) & allowed
        for char in hits:
            scores[char] = scores.get(char, 0.0) + 1.0 / len(hits)
    return sorted(scores, key=lambda c: (-scores[c], c))[:limit]
