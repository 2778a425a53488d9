"""The teaching corpus: built from its writers' files by one command, every line decodable, and no
evaluation topic in it (a planted one is caught)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from emogram.training import corpus
from emogram.training.evaluation import evaluation_topics

CORPUS = corpus.CORPUS_DIR / "corpus.jsonl"


@pytest.fixture(scope="module")
def entries() -> list[corpus.Entry]:
    return corpus.load(CORPUS)


@pytest.fixture(scope="module")
def evaluation() -> list[str]:
    return evaluation_topics()


def test_the_corpus_is_what_its_build_writes(tmp_path):
    """``python -m emogram.training.corpus build`` regenerates corpus.jsonl, topics.txt and
    REMOVED.md from data/corpus/writers/: the checked-in files are not stale."""
    for name in ("writers",):
        (tmp_path / name).symlink_to(corpus.CORPUS_DIR / name)
    built = corpus.build_default(tmp_path)
    corpus.write_built(built, tmp_path)
    for name in ("corpus.jsonl", "topics.txt", "REMOVED.md"):
        assert (tmp_path / name).read_text(encoding="utf-8") == \
            (corpus.CORPUS_DIR / name).read_text(encoding="utf-8"), f"{name} is stale: rebuild it"


def test_size_and_spread(entries):
    kinds = Counter(e.kind for e in entries)
    assert kinds["explain"] >= 3000 and kinds["phrase"] >= 900
    writers = Counter(e.writer for e in entries)
    assert len(writers) >= 5 and max(writers.values()) < 0.25 * len(entries)  # not one voice


def test_every_line_passes_the_checks(entries):
    allowed = None
    from emogram import EmojiFilter
    allowed = frozenset(EmojiFilter(max_version=corpus.EMOJI_VERSION).select())
    problems = [(e.topic, p) for e in entries for p in corpus.check(e, allowed)]
    assert problems == []


def test_topics_are_unique(entries):
    texts = Counter(corpus.normalise(e.topic) for e in entries)
    keys = Counter(corpus.topic_key(e.topic) for e in entries if corpus.topic_key(e.topic))
    assert [t for t, n in texts.items() if n > 1] == []
    assert [sorted(k) for k, n in keys.items() if n > 1] == []


def test_no_evaluation_topic_is_in_the_corpus(entries, evaluation):
    assert len(evaluation) > 500  # annotators, ELCo, bench/topics.json, the stage references
    assert corpus.clashes([e.topic for e in entries], evaluation) == []


@pytest.mark.parametrize("planted", ["Tides: how they work", "how ocean tides work", "THE WATER CYCLE",
                                     "supply and demand explained", "a tiny apartment"])
def test_a_planted_evaluation_topic_is_caught(entries, evaluation, planted):
    topics = [e.topic for e in entries[:200]] + [planted]
    assert [t for t, _ in corpus.clashes(topics, evaluation)] == [planted]


def test_the_build_drops_a_planted_evaluation_topic(tmp_path, evaluation):
    writer = tmp_path / "W9.jsonl"
    lines = [{"topic": "how tides work", "kind": "explain",
              "answer": "moon: 🌕 -> gravity: 🧲 -> bulge: 🌊 -> high tide: ⬆️"},
             {"topic": "how a kettle boils water", "kind": "explain",
              "answer": "electricity: ⚡ -> heating coil: 🔥 -> steam: ♨️"}]
    writer.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    built = corpus.build([writer], evaluation)
    assert [e.topic for e in built.kept] == ["how a kettle boils water"]
    assert "evaluation topic" in built.removed[0][1]


def test_words_are_made_decodable():
    assert corpus.plain_words("earth's water-loving tail") == "earth water loving tail"
    assert corpus.plain_words("won't react") == "will not react"
    entry = corpus.plain(corpus.Entry("x", "explain", "sun's heat: ☀️ -> ice-cold: 🧊"))
    assert entry.answer == "sun heat: ☀️ -> ice cold: 🧊"


@pytest.mark.parametrize("answer, problem", [
    ("Sun: ☀️ -> ice: 🧊", "lower-case"),
    ("sun: ☀️☀️☀️☀️ -> ice: 🧊", "1 to 3"),
    ("sun: ☀️ -> sun: 🧊", "repeat"),
    ("sun: ☀️ -> ice: ☀️", "repeat"),
    ("sun: 🛙 -> ice: 🧊", "inventory"),
    ("sun ☀️ -> ice: 🧊", "not 'words: emoji'"),
    ("sun: ☀️", "parts"),
])
def test_check_refuses(answer, problem):
    found = corpus.check(corpus.Entry("a topic", "explain", answer))
    assert any(problem in p for p in found), found
