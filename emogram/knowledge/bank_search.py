"""Finding the bank entries that explain a topic, or a neighbouring one.

Two steps:

1. **Candidates**: SQLite's full-text index (FTS5, in the standard library) ranks every entry by
   BM25 over its topic and, with a lower weight, the words of its answer, with Porter stemming
   ("rises" finds "rising"); any of the query's words may match. Beside them, the entries whose
   topics are nearest in meaning (``meaning.py``: the cosine of two sentence vectors), which find
   a topic worded with other words.
2. **Same topic or not**: the candidates are ranked again by how much of the two topics' content
   words they share, each word weighted by how rare it is among the bank's topics (a weighted
   Dice overlap of ``words.words`` stems, the ``-ing``/``-ed`` forms folded), with half the BM25
   score and a share of the cosine beside it. "why does a hot air balloon float" and "how a hot
   air balloon rises" share "hot", "air" and "balloon": 0.75.

``Search.find`` gives the ranked hits; ``Hit.same`` says whether the first is close enough to be
the same topic: near in meaning (a cosine of ``COS_FLOOR``), and then enough shared words
(``MATCH``), or a cosine that leads every other topic's by ``COS_LEAD``, or most of the words
(``ALONE_MATCH``) with no other entry worth reading; ``Hit.related``, whether a hit is worth
reading at all. All were calibrated on tune halves (``bench/bank_recall.py --calibrate``).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from . import meaning
from .bank import Entry, shipped_entries, split_sense, user_entries
from .words import base_form, tokens, words

MATCH = 0.8  # overlap from which a hit is the same topic (the answer follows it) ...
LEAD_MATCH, LEAD = 0.6, 0.3  # ... or when it leads every other entry by LEAD (docs/tuning.md)
RELATED = 0.4  # overlap from which a hit is read by the model as a neighbour (docs/tuning.md)
BODY_WEIGHT = 0.3  # BM25 weight of an entry's answer words against its topic's
POOL = 40  # BM25 candidates ranked again
BM25_SHARE = 0.5  # weight of BM25 beside the overlap when ranking (docs/tuning.md)
COS_WEIGHT = 0.5  # weight of the cosine beside them
COS_FLOOR = 0.8  # the first hit is the same topic only this near in meaning ...
COS_LEAD = 0.15  # ... and with enough shared words, or leading every other topic's cosine by this,
ALONE_MATCH = 0.7  # or sharing this much of the words with no other entry in the first three to read
COS_RELATED = 0.75  # a cosine from which a hit is read as a neighbour
NEAR = 10  # entries nearest in meaning added to the candidates
# Verbs and fillers that say how a topic is asked, not which topic it is
_ASKING = frozenset("work works working worked happen happens happened happening make makes made "
                    "making way ways explain explained process thing things get gets got use used "
                    "uses using actually really exactly basically simple simply kid kids like".split())


@dataclass(frozen=True)
class Hit:
    entry: Entry
    overlap: float  # weighted share of content words (0..1)
    bm25: float  # SQLite's BM25 (lower is better)
    subject: bool = True  # it shares the query's rarest content word (what the topic is about)
    same: bool = False  # the same topic as the query: set on the first hit by ``Search.find``
    cosine: float = 0.0  # how near the two topics are in meaning (``meaning.py``; 0: not known)

    @property
    def related(self) -> bool:
        """Worth reading as a neighbour: enough overlap, and about the same thing ("the life
        cycle of a cell" shares two words with "the life cycle of a star", not the star), or
        near enough in meaning."""
        return (self.overlap >= RELATED and self.subject) or self.cosine >= COS_RELATED


def content(text: str) -> frozenset[str]:
    """A topic's content words: stems, ``-ing``/``-ed`` folded, asking words out."""
    out = set()
    for w in words(text):
        if w in _ASKING:
            continue
        out.add(base_form(w) or w)
    return frozenset(out)


class Search:
    """An index over entries (earlier entries win ties: a user's bank before the shipped one, the
    more-asked sense before the other)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)
        self._keys = [(content(e.main), content(e.topic)) for e in self.entries]
        df: Counter[str] = Counter()
        for main, full in self._keys:
            df.update(full)
        n = max(len(self.entries), 1)
        self._idf = {w: math.log(1 + n / c) for w, c in df.items()}
        self._unseen = math.log(1 + n)  # a word no topic has: as rare as can be
        # the topics' vectors, without their sense: the senses of one topic tie, and the one
        # listed first wins, as by their words
        self._vectors = meaning.vectors([e.main for e in self.entries]) if meaning.available() else None
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE VIRTUAL TABLE bank USING fts5(topic, body, tokenize='porter unicode61')")
        self._db.executemany("INSERT INTO bank(rowid, topic, body) VALUES (?, ?, ?)",
                             ((k, e.topic, " ".join(p.words for p in e.parts))
                              for k, e in enumerate(self.entries)))

    def _weight(self, ws: frozenset[str]) -> float:
        return sum(self._idf.get(w, self._unseen) for w in ws)

    def overlap(self, query: frozenset[str], key: frozenset[str]) -> float:
        if not query or not key:
            return 0.0
        shared = self._weight(query & key)
        return 2 * shared / (self._weight(query) + self._weight(key))

    def find(self, topic: str, k: int = 3, *, phrases: bool = True) -> list[Hit]:
        """The ``k`` best hits for ``topic``, best first (``phrases=False``: topics to explain only)."""
        terms = sorted(set(tokens(topic)))
        if not terms or not self.entries:
            return []
        query = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, bm25(bank, 1.0, ?) FROM bank WHERE bank MATCH ? ORDER BY 2 LIMIT ?",
                (BODY_WEIGHT, query, POOL)).fetchall()
        cos = None
        if self._vectors is not None:
            # the topic without a sense it names, as the entries' vectors are (the sense is
            # compared by its words)
            cos = meaning.cosines(self._vectors, meaning.vectors([split_sense(topic)[0]])[0])
            seen = {rowid for rowid, _ in rows}
            near = np.argpartition(-cos, NEAR)[:NEAR] if len(cos) > NEAR else np.arange(len(cos))
            rows += [(int(r), 0.0) for r in near if int(r) not in seen]  # no word matched: no BM25
        q = content(topic)
        rarest = max(q, key=lambda w: (self._idf.get(w, self._unseen), w)) if q else ""
        asks_sense = bool(split_sense(topic)[1])
        ranked = []
        best = min((score for _, score in rows), default=0.0) or -1.0
        for rowid, score in rows:
            if not phrases and self.entries[rowid].kind == "phrase":
                continue
            main, full = self._keys[rowid]
            # a bare query is compared with the topic without its sense; a query naming a
            # sense, with all of it
            o = self.overlap(q, full) if asks_sense else max(self.overlap(q, main), self.overlap(q, full))
            o = round(o, 4)
            # overlap and BM25 (its share of the best candidate's: the answer's words count there)
            # together; among equal scores the earlier entry (a user's bank, the more-asked sense)
            c = round(float(cos[rowid]), 4) if cos is not None else 0.0
            rank = round(o + BM25_SHARE * score / best + COS_WEIGHT * c, 4)
            ranked.append(((-rank, rowid, score),
                           Hit(self.entries[rowid], o, score, rarest in full, cosine=c)))
        ranked.sort(key=lambda pair: pair[0])
        hits = [hit for _, hit in ranked]
        if not hits:
            return hits
        top = hits[0]
        if top.subject and top.overlap >= MATCH:  # among matches as close as the first, the earliest listed
            top = min(((key[1], h) for key, h in ranked if h.subject and h.overlap == top.overlap),
                      key=lambda pair: pair[0])[1]
        runner_up = max((h.overlap for h in hits if h.entry.topic != top.entry.topic), default=0.0)
        other_cos = max((h.cosine for h in hits if h.entry.main != top.entry.main), default=0.0)
        by_words = top.subject and (top.overlap >= MATCH or
                                    (top.overlap >= LEAD_MATCH and top.overlap - runner_up >= LEAD))
        if cos is None:  # no vectors: the words alone decide
            same = by_words
        else:
            by_meaning = top.cosine - other_cos >= COS_LEAD
            alone = top.overlap >= ALONE_MATCH and not any(
                h.related for h in hits[1:3] if h.entry.main != top.entry.main)
            same = top.cosine >= COS_FLOOR and (by_words or by_meaning or alone)
        if same:
            hits.remove(top)
            hits.insert(0, replace(top, same=True))
        return hits[:k]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_SEARCHES: dict[tuple, Search] = {}
_LOCK = threading.Lock()


def search_for(paths: tuple[str, ...]) -> Search:
    """The index over the user's banks (``paths``, in order) and then the shipped bank; made again
    only when one of the user's files changes."""
    key, mine = user_entries(paths)
    with _LOCK:
        found = _SEARCHES.get(key)
    if found is not None:
        return found
    made = Search(mine + shipped_entries())
    with _LOCK:
        if len(_SEARCHES) > 4:
            _SEARCHES.clear()
        _SEARCHES[key] = made
    return made

