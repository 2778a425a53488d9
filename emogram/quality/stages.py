"""Stage recall: does an answer's plan name the parts that people who know the topic would name?

``bench/references/stages.json`` holds, for each topic to explain of the annotator set, three
writers' key parts in words ("how tides work": moon, gravity pull, ocean bulge, high tide). An
answer's ``plan`` (the words each group was drawn for) *names* a reference part when some part of
the plan shares a content word with it (stop words out, plurals made singular, -ing and -ed forms
met: "gravity" names "gravity pull", "evaporates" names "evaporation" only through a shared stem,
which it does not have: the measure is strict about words, lenient about order).

    stage recall = mean over writers of (reference parts named / reference parts), per answer,
                   then averaged over answers

Two figures beside it in every run: the topic's own words taken as the plan (what a model that only
repeats the topic scores), and each writer's parts taken as the plan against the other writers
(the references' own agreement: a ceiling).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..training.evaluation import BENCH

STAGES = BENCH / "references" / "stages.json"


@lru_cache(maxsize=1)
def load(path: Path = STAGES) -> dict[str, dict[str, list[str]]]:
    """{topic: {writer: [part, ...]}}."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {it["topic"]: it["stages"] for it in data["items"]}


def keys(text: str) -> frozenset[str]:
    """Content-word keys of a phrase: stems, and the -ing/-ed base where there is one."""
    from emogram.knowledge.words import base_form, words
    out = set()
    for w in words(text):
        out.add(w)
        base = base_form(w)
        if base:
            out.add(base)
    return frozenset(out)


def named(part: str, plan: tuple[str, ...] | list[str]) -> bool:
    mine = keys(part)
    return any(mine & keys(p) for p in plan)


def recall(plan, stages: dict[str, list[str]]) -> float:
    """Mean over writers of the share of their parts that ``plan`` names."""
    shares = [sum(named(p, plan) for p in parts) / len(parts) for parts in stages.values() if parts]
    return sum(shares) / len(shares) if shares else 0.0


def topic_words_recall(topic: str, stages: dict[str, list[str]]) -> float:
    """The floor: the topic's own content words as the plan."""
    from emogram.knowledge.words import words
    return recall(tuple(words(topic)), stages)


def writers_recall(stages: dict[str, list[str]]) -> float:
    """The ceiling: each writer's parts as the plan, against the other writers."""
    scores = [recall(tuple(parts), {w: p for w, p in stages.items() if w != writer})
              for writer, parts in stages.items()]
    return sum(scores) / len(scores) if scores else 0.0
