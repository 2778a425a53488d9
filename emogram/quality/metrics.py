"""Quality metrics over answers (lines -> groups -> content emoji; see references.py). Pure functions, no model.

All metrics read *content* emoji only: operators (➡️ ➕ 🆚 🟰) are removed on both sides before
anything is compared (references.Normaliser does it; ``content`` drops any that slip through).

Per answer, against the reference answers R1..Rk of its topic (U = their union):
  precision     share of the answer's content emoji (each occurrence counts) that are in U;
                an answer with no content emoji scores 0
  best_jaccard  max over i of |set(answer) & set(Ri)| / |set(answer) | set(Ri)|
  hit           1 when some content emoji of the answer is in U
Over a set of answers (one table row):
  recurring     share of answers with a line whose content emoji sequence also occurs as a line in
                answers to at least max(2, ceil(5% of the other topics)) other topics
  drift         precision pooled by line index: line 1, 2, 3, 4+ (on-topic emoji / emoji on such lines)
  repeated      share of groups equal to the group before them (also across a line break)
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

OPERATORS = frozenset(("➡️", "➕", "🆚", "🟰"))
DRIFT_BUCKETS = ("1", "2", "3", "4+")


def content(answer) -> list[str]:
    """Every content emoji in reading order."""
    return [e for line in answer for group in line for e in group if e not in OPERATORS]


def line_seqs(answer) -> list[tuple[str, ...]]:
    """Each line's content emoji sequence (grouping ignored), empty lines left out."""
    out = []
    for line in answer:
        seq = tuple(e for group in line for e in group if e not in OPERATORS)
        if seq:
            out.append(seq)
    return out


def union(refs: Iterable) -> frozenset[str]:
    return frozenset(e for r in refs for e in content(r))


def precision(answer, ref_union: frozenset[str]) -> float:
    emoji = content(answer)
    return sum(e in ref_union for e in emoji) / len(emoji) if emoji else 0.0


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def best_jaccard(answer, refs: Sequence) -> float:
    mine = set(content(answer))
    return max((jaccard(mine, set(content(r))) for r in refs), default=0.0)


def hit(answer, ref_union: frozenset[str]) -> bool:
    return any(e in ref_union for e in content(answer))


def repeated_groups(answer) -> tuple[int, int]:
    """(groups equal to the group before them, groups), across line breaks."""
    groups = [tuple(e for e in g if e not in OPERATORS) for line in answer for g in line]
    groups = [g for g in groups if g]
    return sum(a == b for a, b in zip(groups, groups[1:])), len(groups)


def recurring_threshold(n_topics: int) -> int:
    """Other topics a line must also appear in to count as recurring: 5% of them, at least 2."""
    return max(2, math.ceil(0.05 * (n_topics - 1)))


def recurring(answers: Mapping[str, Sequence]) -> dict[str, list[bool]]:
    """For each topic's answers (topic -> list of answers), whether each answer has a recurring
    line: one whose content sequence also occurs in answers to >= recurring_threshold other topics."""
    where: dict[tuple, set] = defaultdict(set)
    for topic, alist in answers.items():
        for a in alist:
            for seq in line_seqs(a):
                where[seq].add(topic)
    need = recurring_threshold(len(answers))
    return {topic: [any(len(where[seq] - {topic}) >= need for seq in line_seqs(a)) for a in alist]
            for topic, alist in answers.items()}


def drift(pairs: Iterable[tuple[Sequence, frozenset]]) -> dict[str, float | None]:
    """Precision pooled by line index over (answer, union) pairs; None where no emoji were written."""
    on = dict.fromkeys(DRIFT_BUCKETS, 0)
    tot = dict.fromkeys(DRIFT_BUCKETS, 0)
    for answer, ref_union in pairs:
        for i, line in enumerate(answer):
            b = DRIFT_BUCKETS[min(i, 3)]
            emoji = [e for g in line for e in g if e not in OPERATORS]
            on[b] += sum(e in ref_union for e in emoji)
            tot[b] += len(emoji)
    return {b: (on[b] / tot[b] if tot[b] else None) for b in DRIFT_BUCKETS}


def mean(xs) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def score(rows: Sequence[dict], recurring_flags: Iterable[bool] | None = None) -> dict:
    """One table row from scored answers. Each row: ``answer``, ``refs`` (the references it is
    scored against), and optionally ``valid`` (bool) and ``seconds``."""
    pr, bj, ht, rep, grp, n_emoji, n_lines = [], [], [], 0, 0, [], []
    pairs = []
    for r in rows:
        u = union(r["refs"])
        pr.append(precision(r["answer"], u))
        bj.append(best_jaccard(r["answer"], r["refs"]))
        ht.append(hit(r["answer"], u))
        a, b = repeated_groups(r["answer"])
        rep, grp = rep + a, grp + b
        n_emoji.append(len(content(r["answer"])))
        n_lines.append(len(line_seqs(r["answer"])))
        pairs.append((r["answer"], u))
    valid = [r["valid"] for r in rows if r.get("valid") is not None]
    seconds = [r["seconds"] for r in rows if r.get("seconds") is not None]
    flags = list(recurring_flags) if recurring_flags is not None else []
    return {
        "answers": len(rows), "precision": mean(pr), "best_jaccard": mean(bj), "hit": mean(ht),
        "recurring": mean(flags), "drift": drift(pairs),
        "repeated_groups": rep / grp if grp else None,
        "emoji": mean(n_emoji), "lines": mean(n_lines),
        "valid": mean(valid), "seconds": mean(seconds),
    }
