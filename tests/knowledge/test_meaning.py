"""Retrieval by meaning beside the words (``knowledge/meaning.py``, ``bank_search.py``): the sentence
vectors come from the installed wordllama package without a download, a reworded topic the words
alone miss is followed, the senses of one topic still tie, and without the vectors retrieval is
lexical alone. Queries from the tune half of the paraphrase set (bench/references/paraphrases.json)
and the calibration set (calibration_labels.json)."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from emogram.knowledge import bank_search, meaning
from emogram.knowledge.bank import Entry, answer_parts


def test_vectors_are_read_from_the_package_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    meaning._table.cache_clear()
    assert meaning.available()
    v = meaning.vectors(["how is korean gochujang made", "how gochujang is made", "how gills work", ""])
    assert v.dtype == np.float32 and v.shape == (4, 256)
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5) and not v[3].any()
    near, far = meaning.cosines(v[1:3], v[0])
    assert near > 0.8 > 0.3 > far


@pytest.fixture(scope="module")
def search():
    return bank_search.search_for(())


@pytest.mark.parametrize("query, entry, by_words", [
    ("how does heating under the floor work", "how underfloor heating works", "how a price floor works"),
    ("medicine in ancient egypt", "ancient egyptian medicine", "ancient indian medicine"),
])
def test_a_rewording_the_words_miss_is_followed_by_meaning(search, monkeypatch, query, entry, by_words):
    hit = search.find(query, 3)[0]
    assert (hit.entry.topic, hit.same) == (entry, True) and hit.cosine >= bank_search.COS_FLOOR
    monkeypatch.setattr(search, "_vectors", None)  # the words alone
    hit = search.find(query, 3)[0]
    assert hit.entry.topic == by_words and not hit.same


def test_an_entry_far_in_meaning_is_not_followed_however_many_words_it_shares(search, monkeypatch):
    """"how does an elevator work" shares "elevator" with "the history of elevators" (overlap 0.81,
    over MATCH) but not its meaning (cosine 0.65): it is read, not followed."""
    hit = search.find("how does an elevator work", 3)[0]
    assert hit.entry.topic == "the history of elevators" and hit.overlap >= bank_search.MATCH
    assert not hit.same and hit.cosine < bank_search.COS_FLOOR
    monkeypatch.setattr(bank_search, "COS_FLOOR", 0.0)
    assert search.find("how does an elevator work", 3)[0].same


def test_most_of_the_words_with_no_rival_is_followed(search, monkeypatch):
    """Neither enough words (0.75 < MATCH, no lead of 0.3) nor a lead in meaning, but most of the
    words, near in meaning, and no other entry among the first three worth reading."""
    query, entry = "how does car suspension absorb bumps", "how a car's suspension smooths bumps"
    hit = search.find(query, 3)[0]
    assert (hit.entry.topic, hit.same) == (entry, True)
    monkeypatch.setattr(bank_search, "ALONE_MATCH", 1.01)
    assert not search.find(query, 3)[0].same


def test_the_senses_of_a_topic_still_tie_and_the_first_listed_wins(search):
    hits = search.find("transformers", 5)
    assert hits[0].same and hits[0].entry.topic == "transformers (machine learning)"
    other = [h for h in hits if h.entry.topic == "transformers (electrical)"]
    assert other and other[0].cosine == hits[0].cosine


def test_without_the_vectors_retrieval_is_lexical(monkeypatch):
    monkeypatch.setattr(meaning, "available", lambda: False)
    parts = tuple(p for _, p in answer_parts("floor: 🟫 -> warm pipes: ♨️ -> warm room: 🏠"))
    s = bank_search.Search([Entry("how underfloor heating works", "", parts, "mine", 1)])
    assert s._vectors is None
    assert s.find("underfloor heating", 1)[0].same
    assert s.find("heating under the floor", 1) == [] or not s.find("heating under the floor", 1)[0].same


def test_the_package_is_read_not_imported():
    """Importing wordllama would configure the application's root logger (and cost 0.26 s)."""
    import subprocess
    import sys
    code = ("import logging, sys\nfrom emogram.knowledge import meaning\nassert meaning.available()\n"
            "meaning.vectors(['tides'])\n"
            "print('wordllama' in sys.modules, bool(logging.getLogger().handlers))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"]
