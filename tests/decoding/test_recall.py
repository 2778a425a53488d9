"""Answers that use the bank, on the real default model (with its adapter): an entry on the same
topic is followed stage by stage, through the grammar and every filter; neighbours are read; the
sources say which; ``bank=False`` is the model alone; the user's banks come first."""

from __future__ import annotations

import json

import pytest

import emogram
import emogram.api
from emogram.knowledge import bank_search

SEED = "transformers (machine learning)"
SEED_STAGES = ["input text", "tokens", "positions", "self attention", "stacked layers", "next word"]


@pytest.fixture(scope="module")
def ex():
    return emogram.Explainer()


def test_the_seed_question_follows_its_entry(ex):
    e = ex.explain(SEED, seed=0)
    assert list(e.plan) == SEED_STAGES
    assert e.sources[0].used == "followed" and e.sources[0].topic == SEED
    assert e.sources[0].bank == "emogram"
    assert [str(g) for g in e.groups()][:4] == ["📄", "🔤🔢", "📍", "👀🔄"]


def test_a_bare_topic_takes_the_more_asked_sense(ex):
    e = ex.explain("transformers", seed=0)
    assert e.sources[0].topic == SEED and e.sources[0].used == "followed"
    assert list(e.plan) == SEED_STAGES
    hits = bank_search.search_for(()).find("transformers", 5)
    other = [h for h in hits if h.entry.topic == "transformers (electrical)"]
    assert hits[0].same and other and other[0].overlap == hits[0].overlap  # tied: the first listed wins


def test_a_paraphrase_finds_the_entry(ex):
    """Reworded, the entry is still found: followed when the words are close enough, else read
    first (closest to the topic) among the neighbours."""
    e = ex.explain("how do hot air balloons rise", seed=0)
    assert (e.sources[0].topic, e.sources[0].used) == ("how a hot air balloon rises", "followed")
    assert e.plan[0] == "burner"
    e = ex.explain("why does a hot air balloon float", seed=0)
    assert e.sources[0].topic == "how a hot air balloon rises"


def test_the_filters_hold_when_following(ex):
    """The entry's 📄 and 🔤🔢 are excluded: the answer keeps the stages, not those emoji."""
    e = ex.explain(SEED, seed=0, exclude="📄🔤")
    assert list(e.plan) == SEED_STAGES
    assert not {"📄", "🔤"} & {x.char for x in e.emoji()}
    small = ex.explain(SEED, seed=0, emoji_per_group=1)
    assert all(len(g.emoji) == 1 for g in small.groups())
    assert small.plan[:3] == tuple(SEED_STAGES[:3])
    old = ex.explain(SEED, seed=0, emoji_version=6.0)  # 🧱 (Emoji 11.0) is not on this phone
    assert "🧱" not in str(old)
    shaped = ex.explain(SEED, seed=0, lines=1, steps=3)
    assert len(shaped.lines) == 1 and len(shaped.lines[0].groups) == 3


def test_no_bank_is_the_model_alone(ex):
    e = ex.explain(SEED, seed=0, bank=False)
    assert e.sources == () and "self attention" not in e.plan


def test_a_users_bank_comes_first(ex, tmp_path):
    mine = tmp_path / "syllabus.jsonl"
    mine.write_text(json.dumps({"topic": "how a hot air balloon rises",
                                "answer": "pilot: 🧑‍✈️ -> flame: 🔥 -> warm air: ♨️ -> up: ⬆️"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    e = ex.explain("how does a hot air balloon rise", seed=0, bank=mine)
    assert e.sources[0].bank == str(mine) and e.sources[0].line == 1
    assert e.sources[0].used == "followed"
    assert list(e.plan) == ["pilot", "flame", "warm air", "up"]
    assert str(e).startswith("🧑‍✈️ ➡️ 🔥")


def test_a_bad_user_bank_fails_before_any_answer(ex, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"topic": "x", "answer": "Fire: 🔥"}\n', encoding="utf-8")
    with pytest.raises(emogram.EmogramError, match=f"{bad}:1: "):
        ex.explain("tea", bank=bad)
    with pytest.raises(emogram.EmogramError, match="cannot be read"):
        emogram.api.build_request(bank=tmp_path / "missing.jsonl")


def test_sources_are_in_the_json(ex):
    e = ex.explain(SEED, seed=0)
    data = json.loads(e.to_json())
    assert data["sources"][0]["topic"] == SEED and data["sources"][0]["used"] == "followed"


def test_an_unrelated_topic_reads_nothing():
    """Gibberish shares no word with any entry; its nearest topics by meaning are far (cosine
    about 0.5): none is followed or read."""
    hits = bank_search.search_for(()).find("zzqx qwv")
    assert all(h.bm25 == 0.0 for h in hits)  # found by meaning alone
    assert not [h for h in hits if h.related or h.same]


def test_a_neighbour_is_read_before_the_topic(ex, tmp_path):
    """An entry about the same thing but not the same topic is read (in the prompt, before the
    topic, its answer in full), not followed; a phrase reads nothing but its own entry."""
    mine = tmp_path / "neighbours.jsonl"
    mine.write_text(json.dumps({"topic": "how a zorblat spins",
                                "answer": "wind pushes: 💨 -> blades turn: 🌀 -> axle spins: ⚙️"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    request = emogram.api.build_request(bank=mine, seed=0)
    result = ex.engine.explain("why zorblats wobble in storms", request)
    assert [(s.topic, s.used) for s in result.sources][:1] == [("how a zorblat spins", "read")]
    assert "Topic: how a zorblat spins\nwind pushes: 💨 -> blades turn: 🌀 -> axle spins: ⚙️\n" in result.prompt
    assert result.prompt.endswith("Topic: why zorblats wobble in storms\n")
    phrase = ex.engine.explain("zorblat storms", request)  # two words: a phrase
    assert phrase.sources == () and "zorblat spins" not in phrase.prompt


def test_a_phrase_follows_only_a_phrase(ex, tmp_path):
    """A two-word phrase is not the explanation that contains it ("cold feet" is not "why cold feet
    keep you awake"); its own phrase entry it follows."""
    mine = tmp_path / "phrases.jsonl"
    mine.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in (
        {"topic": "why zorblat feet", "answer": "cold zorblat feet: 🦶🥶 -> vessels narrow: 📉 -> awake: 😳"},
        {"topic": "zorblat hats", "kind": "phrase", "answer": "zorblat: 👽 + hat: 🎩"})) + "\n", encoding="utf-8")
    assert ex.explain("zorblat feet", seed=0, bank=mine).sources == ()
    e = ex.explain("zorblat hats", seed=0, bank=mine)
    assert [(s.topic, s.used) for s in e.sources] == [("zorblat hats", "followed")]
    assert str(e) == "👽 ➕ 🎩"


def test_words_copied_from_a_neighbour_take_its_group(ex, tmp_path):
    """A part whose words the model copies from an entry it read is drawn with that entry's group
    (the bank's reviewed emoji), not the model's own pick: here groups it would not choose itself."""
    mine = tmp_path / "neighbours.jsonl"
    mine.write_text(json.dumps({"topic": "how a zorblat spins",
                                "answer": "wind pushes: 🌬️🫸 -> blades turn: 🌀🪭 -> axle spins: ⚙️🔄"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    groups = {"wind pushes": "🌬️🫸", "blades turn": "🌀🪭", "axle spins": "⚙️🔄"}
    copied = 0
    for seed in range(4):
        e = ex.explain("why zorblats wobble in storms", seed=seed, bank=mine)
        assert [s.used for s in e.sources] == ["read"]
        for words, group in zip(e.plan, map(str, e.groups())):
            if words in groups:
                assert group == groups[words], (seed, e.plan, str(e))
                copied += 1
    assert copied >= 2  # seeds 0-3 copy "axle spins" in each
