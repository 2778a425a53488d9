"""What an answer takes from the bank (``knowledge/bank_search.py``): the entry it follows, when
one explains the same topic, and the neighbouring entries the model reads before the topic.

* **The same topic** (``Hit.same``): the answer keeps to the entry's stages, in order: its words are
  written for the model, its joints are the entry's, and each group is the entry's own when every
  emoji of it passes this request's filters (Emoji version, palette, exclude) and group size, else
  the model's pick under the grammar, nudged toward the entry's emoji that pass. Nothing skips the
  grammar: the answer is parsed against it as every answer is.
* **Neighbours** (``Hit.related``): up to ``NEIGHBOURS`` entries, written before the topic as earlier
  answers, the closest last. A part whose words the model copies from a neighbour takes that
  neighbour's group as a followed stage would (``Recalled.known``): the bank's reviewed emoji for
  the same words, rather than the model's pick. Only for a topic to explain: a phrase ("big city")
  takes its own phrase entry or none, since a neighbour sharing one word ("big or small") is
  copied, and an explanation is another topic ("cold feet" is not "why cold feet keep you awake").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..language.grammar import Operator
from ..stats import Source
from .gloss import FollowPart

NEIGHBOURS = 3
OPERATORS = {"->": Operator.LEADS_TO, "+": Operator.AND, "vs": Operator.VERSUS, "=": Operator.MEANS}


@dataclass(frozen=True)
class Recalled:
    context: tuple[tuple[str, str], ...] = ()  # (topic, glossed answer), read before the topic
    follow: tuple[FollowPart, ...] = ()  # the stages kept to (empty: none)
    sources: tuple[Source, ...] = ()
    known: tuple[FollowPart, ...] = ()  # the neighbours' stages, the closest's first, by their words


NOTHING = Recalled()


def recall(topic: str, bank: tuple[str, ...] | None, explains: bool, allowed: frozenset[str],
           per_group: tuple[int, int]) -> Recalled:
    """The bank's part in an answer to ``topic`` (``bank``: the request's bank option)."""
    if bank is None:
        return NOTHING
    from ..knowledge.bank_search import search_for
    hits = [h for h in search_for(bank).find(topic, NEIGHBOURS, phrases=not explains) if h.related]
    if not explains:  # a phrase: its own phrase entry or nothing. "big city" read "big or small"
        #               and wrote 🏙️ 🆚 🏠 (ELCo tune 46% -> 29%); "cold feet" followed "why cold
        #               feet keep you awake"
        hits = hits[:1] if hits and hits[0].same and hits[0].entry.kind == "phrase" else []
    if not hits:
        return NOTHING
    if hits[0].same:  # followed: its words and joints are written for the model, so nothing is
        #               read (a shorter prompt: the answer costs less than the model's own)
        h = hits[0]
        return Recalled((), stages(h.entry.parts, allowed, per_group),
                        (Source(h.entry.topic, h.entry.answer, h.entry.bank, h.entry.line, "followed", h.overlap),))
    sources = tuple(Source(h.entry.topic, h.entry.answer, h.entry.bank, h.entry.line, "read", h.overlap)
                    for h in hits)
    context = tuple((_plain_topic(h.entry.topic), h.entry.answer) for h in reversed(hits))
    known = tuple(part for h in hits for part in stages(h.entry.parts, allowed, per_group))
    return Recalled(context, sources=sources, known=known)


def stages(parts, allowed: frozenset[str], per_group: tuple[int, int]) -> tuple[FollowPart, ...]:
    from ..language.unicode import split_emoji
    out = []
    for part in parts:
        chars = split_emoji(part.group)
        hint = tuple(c for c in chars if c in allowed)
        fits = len(hint) == len(chars) and per_group[0] <= len(chars) <= per_group[1]
        out.append(FollowPart(part.words, OPERATORS.get(part.op) if part.op else None,
                              part.group if fits else None, hint))
    return tuple(out)


def _plain_topic(topic: str) -> str:
    """A bank topic as the model reads it: no text a chat template could take for its markup."""
    return topic.replace("<", "‹").replace(">", "›")
