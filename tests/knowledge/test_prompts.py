"""The few-shot examples never hold an evaluation topic (bench/quality.py would then measure copying)."""

import json
import os
from pathlib import Path

import pytest

from emogram.knowledge import prompts
from emogram.knowledge.words import words
from emogram.quality import references as refs

BENCH = Path(__file__).resolve().parents[2] / "bench"


def example_topics() -> list[str]:
    return [e.topic for e in prompts.EXAMPLES] + [topic for topic, _ in prompts.GLOSS_EXAMPLES]


def evaluation_topics() -> list[str]:
    topics = [item.topic for item in refs.load_annotators().items]
    topics += [t["topic"] for t in json.loads((BENCH / "topics.json").read_text(encoding="utf-8"))["topics"]]
    elco = os.environ.get("EMOGRAM_ELCO")
    if elco and Path(elco).is_file():
        topics += [item.topic for item in refs.load_elco(Path(elco)).items]
    return topics


def same_topic(a: str, b: str) -> bool:
    """The same words, ignoring case, articles and plural s ("The seasons" = "season")."""
    return a.strip().lower() == b.strip().lower() or (bool(words(a)) and set(words(a)) == set(words(b)))


def test_no_example_topic_is_an_evaluation_topic():
    evaluation = evaluation_topics()
    assert len(evaluation) > 200
    clashes = [(ex, ev) for ex in example_topics() for ev in evaluation if same_topic(ex, ev)]
    assert clashes == []


def test_the_check_sees_a_planted_clash():
    evaluation = evaluation_topics()
    planted = evaluation[0].upper()
    assert any(same_topic(planted, ev) for ev in evaluation)
    assert any(same_topic("The Photosynthesis", ev) for ev in evaluation)


@pytest.mark.parametrize("topic, answer", prompts.GLOSS_EXAMPLES)
def test_gloss_examples_are_valid_glossed_answers(topic, answer):
    """Each example is ``word: emoji`` parts joined by the separators the decoder offers."""
    import re

    from emogram import parse
    from emogram.decoding.gloss import SEPARATORS
    parts = re.split("(" + "|".join(re.escape(s) for s in SEPARATORS) + ") ", answer)
    emoji_text = []
    for k, part in enumerate(parts):
        if k % 2:
            emoji_text.append(SEPARATORS[part].symbol)
            continue
        word, _, group = part.partition(": ")
        assert word and group and ":" not in group, part
        emoji_text.append(group)
    parse(" ".join(emoji_text))  # raises if the emoji are not a valid answer
