"""Baselines scored beside the model, on the same topics and references (no model needed).

  random emoji     each content emoji of the model's answer replaced by one drawn uniformly from the
                   inventory (skin tones dropped, operators excluded): same lines, groups and lengths
                   as the model's answers; DRAWS draws per answer, pooled
  keyword lookup   for each word of the topic (lower-cased, letters only, function words dropped), the
                   first emoji in emojilib's order whose keyword list contains the word (exact,
                   lower-cased; if none, the singular: -ies -> -y, then -es, then -s); one group per
                   word, one line
  people (LOO)     each reference answer scored against the other answers for its topic (leave one
                   out): precision and hit against the union of the others, best Jaccard against the
                   best other single answer; recurring lines per writer where writers are known
                   (annotators), pooled where not (ELCo)
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import defaultdict
from typing import Mapping, Sequence

from .metrics import recurring
from .references import EMOJILIB, Item, Normaliser

DRAWS = 10

STOPWORDS = frozenset("""a an the of to in on at by for with from into onto and or but nor so as is are
was were be been being do does did how what why when where who whom which that this these those it its
it's their there your you we our my his her they them can could should would will may might than then
about over under between through during without within via vs versus""".split())


def random_answers(model: Mapping[str, Sequence], pool: Sequence[str], seed: int = 0,
                   draws: int = DRAWS) -> list[dict[str, list]]:
    """``draws`` copies of the model's answers (key -> list of answers) with every content emoji
    replaced by a uniform draw from ``pool``."""
    rng = random.Random(seed)
    out = []
    for _ in range(draws):
        out.append({k: [[[[rng.choice(pool) for _ in g] for g in line] for line in a] for a in alist]
                    for k, alist in model.items()})
    return out


def random_pool(norm: Normaliser) -> list[str]:
    return sorted({n for e in norm.inventory if (n := norm.one(e)) is not None} - set(norm.operators.values()))


@functools.lru_cache(maxsize=1)
def _emojilib() -> dict[str, list[str]]:
    return json.loads(EMOJILIB.read_text(encoding="utf-8"))


def keyword_index(lib: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """word -> the first emoji (in ``lib``'s order) whose keyword list contains the word."""
    index: dict[str, str] = {}
    for emoji, keywords in lib.items():
        for kw in keywords:
            index.setdefault(kw.lower(), emoji)
    return index


def _forms(word: str) -> list[str]:
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and len(word) > 2:
        forms.append(word[:-1])
    return forms


def topic_words(topic: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", topic.lower()) if w not in STOPWORDS]


def keyword_text(topic: str, index: Mapping[str, str]) -> str:
    """The keyword baseline's answer as text (emoji separated by spaces; "" when no word matches)."""
    picks = []
    for w in topic_words(topic):
        for f in _forms(w):
            if f in index:
                picks.append(index[f])
                break
    return " ".join(picks)


def keyword_answers(items: Sequence[Item], lib=None) -> dict[str, str]:
    index = keyword_index(lib if lib is not None else _emojilib())
    return {it.key: keyword_text(it.topic, index) for it in items}


def leave_one_out(items: Sequence[Item]) -> tuple[list[dict], list[bool]]:
    """Rows (answer, refs) for every reference answer scored against the others of its topic, and the
    recurring-line flag of each row (per writer where known, else pooled over all answers)."""
    rows, keys = [], []
    for it in items:
        if len(it.refs) < 2:
            continue
        for i, (ans, writer) in enumerate(zip(it.refs, it.writers)):
            rows.append({"answer": ans, "refs": it.refs[:i] + it.refs[i + 1:]})
            keys.append((it.key, writer, i))
    by_writer: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for it in items:
        for ans, writer in zip(it.refs, it.writers):
            by_writer[writer][it.key].append(ans)
    by_key = {it.key: it for it in items}
    flags_of: dict[tuple, bool] = {}
    for writer, answers in by_writer.items():
        for key, fl in recurring(answers).items():
            idx = [i for i, w in enumerate(by_key[key].writers) if w == writer]
            for i, f in zip(idx, fl):
                flags_of[(key, writer, i)] = f
    return rows, [flags_of[k] for k in keys]
