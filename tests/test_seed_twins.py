"""A seed gives the same text as it did before the package was arranged in layers (issue #23).

``fixtures/seed_twins.json`` was recorded with the flat modules (commit 3c0d37d): default options,
``seed=1``, through ``emogram.explain``, for the README's hero topics and the first 50 topics of
``bench/topics.json``. Each answer is worked out again here on one loaded model and compared, with
the parts it was planned from and its gloss.

To record the fixture anew after a change that means to alter the answers:
``python tests/test_seed_twins.py --write``.
"""

from __future__ import annotations

import json
import pathlib
import sys


import emogram

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "seed_twins.json"
TOPICS = pathlib.Path(__file__).parent.parent / "bench" / "topics.json"
HERO = ["how the heart works", "photosynthesis", "transformers in machine learning"]
SEED = 1
MODEL = "gemma3-270m"


def topics() -> list[str]:
    bench = [t["topic"] for t in json.loads(TOPICS.read_text(encoding="utf-8"))["topics"][:50]]
    return HERO + [t for t in bench if t not in HERO]


def record(topic: str) -> dict:
    # the default model, named, without the adapter it has had since, and with the whole inventory
    # (the default until Emoji 15.1 became it): the fixture predates both
    e = emogram.explain(topic, model=MODEL, seed=SEED, adapter=False, emoji_version="latest")
    return {"topic": topic, "text": str(e), "plan": list(e.plan), "gloss": e.gloss()}


def test_same_seed_same_text(gemma):
    want = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert want["seed"] == SEED and len(want["answers"]) >= 50 + len(HERO) - 1
    got = [record(a["topic"]) for a in want["answers"]]
    differ = [(w["topic"], w["text"], g["text"]) for w, g in zip(want["answers"], got) if w != g]
    assert not differ, differ


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_seed_twins.py --write")
    answers = [record(t) for t in topics()]
    FIXTURE.write_text(json.dumps({"seed": SEED, "options": "defaults", "model": MODEL,
                                   "answers": answers}, ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")
    print(f"{len(answers)} answers -> {FIXTURE}")
