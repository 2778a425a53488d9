"""The shipped bank: built by one command from the corpus, the writers' files and the reviews,
every line passing the strict reader, big enough, and clear of every evaluation topic (a planted
one is caught) and of the paraphrase queries that measure retrieval."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from emogram.knowledge import bank as bank_module
from emogram.training import bank, corpus
from emogram.training.evaluation import BENCH, evaluation_topics


@pytest.fixture(scope="module")
def shipped() -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(bank.OUT.read_bytes()).decode("utf-8").splitlines()]


def test_the_bank_is_what_its_build_writes():
    """``python -m emogram.training.bank build`` writes the shipped bank, REMOVED.md, REVIEW.md and EMOJI.md
    byte for byte from data/: none of them is stale."""
    built, fixed, emoji = bank.build_default()
    for path, data in bank.rendered(built, fixed, emoji).items():
        assert path.read_bytes() == data, f"{path.name} is stale: python -m emogram.training.bank build"


def test_every_line_passes_the_strict_reader(shipped):
    raw = gzip.decompress(bank.OUT.read_bytes())
    assert len(bank_module.read_text(raw, "shipped", check=True)) == len(shipped)


def test_size_and_spread(shipped):
    kinds = Counter(d["kind"] for d in shipped)
    assert kinds["explain"] >= 20_000, kinds
    assert kinds["phrase"] >= 1_000, kinds
    domains = Counter(d["domain"] for d in shipped if d["kind"] == "explain")
    assert len(domains) >= 20


def test_no_evaluation_topic_is_in_the_bank(shipped):
    topics = [d["topic"] for d in shipped]
    evaluation = evaluation_topics()
    clash = [(t, ev) for t, ev in corpus.clashes(topics, evaluation) if t not in bank.SEED_TOPICS]
    assert clash == []
    planted = topics[:50] + ["how do tardigrades survive drying out"]  # the ceiling set's
    assert ("how do tardigrades survive drying out", "how a tardigrade survives drying out") in \
        corpus.clashes(planted, evaluation)


def test_the_seed_question_leads(shipped):
    assert shipped[0]["topic"] == "transformers (machine learning)"
    assert shipped[1]["topic"] == "transformers (electrical)"


def test_paraphrase_queries_are_not_bank_topics(shipped):
    path = BENCH / "references" / "paraphrases.json"
    if not path.is_file():
        pytest.skip("no paraphrase set")
    queries = {corpus.normalise(q["query"]) for q in json.loads(path.read_text(encoding="utf-8"))["items"]}
    assert len(queries) >= 300
    assert not queries & {corpus.normalise(d["topic"]) for d in shipped}


def test_retrieval_augmented_examples_read_their_neighbours():
    """--bank-context: an example reads its neighbours as an answer would (closest last); its own
    entry only in the self-share, and then as the closest."""
    from emogram.training.corpus import Entry
    from emogram.training.train import bank_contexts
    e = Entry("how a hot air balloon rises", "explain",
              "burner: 🔥 -> air inside heats: 🌡️ -> air expands: 🎈 -> less dense: 🪶 -> balloon lifts: ⬆️")
    never = bank_contexts([e] * 20, seed=0, self_share=0.0)
    assert all(ctx and all(t != e.topic for t, _ in ctx) for ctx in never)
    assert all("balloon" in ctx[-1][0] for ctx in never)
    always = bank_contexts([e] * 5, seed=0, self_share=1.0)
    assert all(ctx[-1] == (e.topic, e.answer) for ctx in always)
    some = bank_contexts([e] * 200, seed=0, self_share=0.2)
    assert 20 <= sum(ctx[-1][0] == e.topic for ctx in some) <= 60
