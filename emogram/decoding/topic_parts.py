"""How many parts a glossed answer has, and how they join, by what its topic asks: a topic to
explain (a process, an event, an idea) gets three to six parts that read as stages; a phrase to
picture ("tiny apartment") two or three (``gloss.py`` keeps to these).
"""

from __future__ import annotations

import re

from ..language.grammar import Shape

MAX_PARTS = 6  # parts of one answer at most, unless the shape requires more
EXPLAIN_PARTS = 3  # parts at least for a topic to explain (see min_parts)
PHRASE_PARTS = 3  # parts at most for a phrase (the corpus's rule; see most_parts, docs/tuning.md)
CHAIN_BIAS = 3.0  # logits toward ``->`` between an explanation's parts: stages; docs/tuning.md
_ASKS = frozenset({"how", "why", "what", "when", "where", "who", "the"})
_FIRST_WORD = re.compile(r"\W*([a-z]*)")


def max_parts(shape: Shape, most: int = MAX_PARTS) -> int:
    """Parts at most: ``most``, or more when the shape requires more; never more than it allows."""
    return min(max(most, shape.lines[0] * shape.steps[0]), shape.lines[1] * shape.steps[1])


def explains(topic: str) -> bool:
    """Does the topic ask for an explanation (a process, an event, an idea) rather than a picture
    of a phrase? A question ("how tides work"), a definite topic ("the water cycle"), a single word
    or a longer topic does; two content words ("tiny apartment", "black holes") name a thing."""
    from ..knowledge.words import words
    first = _FIRST_WORD.match(topic.lower())  # "What's up?" -> "what" (it always matches)
    return (first.group(1) if first else "") in _ASKS or len(words(topic)) != 2


def min_parts(topic: str) -> int:
    """Parts an answer has at least: a phrase takes two; an explanation three (the model, left to
    itself, stops at two for nearly everything)."""
    return EXPLAIN_PARTS if explains(topic) else 2


def most_parts(topic: str) -> int:
    """Parts an answer has at most: a phrase three, as the corpus teaches; an explanation six."""
    return MAX_PARTS if explains(topic) else PHRASE_PARTS


def chain_bias(topic: str) -> float:
    """Toward ``->`` between an explanation's parts, so that they read as stages in order."""
    return CHAIN_BIAS if explains(topic) else 0.0
