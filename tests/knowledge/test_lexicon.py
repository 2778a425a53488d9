"""The emoji lexicon: fresh data from vendored sources, inventory emoji only, sane rankings."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import pytest

from emogram import InputTypeError
from emogram.knowledge.lexicon import keywords, related, relevance
from emogram.knowledge.lexicon_build import generate
from emogram.knowledge.words import stem, words
from emogram.language.unicode import inventory, lookup

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "emogram" / "knowledge" / "lexicon.tsv"
SOURCES = REPO / "data" / "lexicon-sources"
REGENERATE = "run `python -m emogram.knowledge.lexicon --write` and commit"


def rows() -> list[list[str]]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line != "#" and not line.startswith("# ")]


def top(phrase: str, n: int = 1, **kw) -> list[str]:
    return [char for char, _ in related(phrase, **kw)[:n]]


def test_checked_in_lexicon_is_fresh():
    """Fails when the sources, the inventory or the generator changed without regenerating."""
    assert DATA.read_text(encoding="utf-8") == generate(SOURCES), f"{DATA} is stale: {REGENERATE}"


def test_vendored_sources_match_their_recorded_hashes():
    recorded = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$",
                               (SOURCES / "SOURCES.md").read_text(encoding="utf-8"), re.M))
    files = {p.relative_to(SOURCES).as_posix() for p in SOURCES.rglob("*") if p.is_file()}
    assert set(recorded) == files - {"SOURCES.md"}
    for path, digest in recorded.items():
        assert hashlib.sha256((SOURCES / path).read_bytes()).hexdigest() == digest, path


def test_every_row_is_an_inventory_emoji_without_skin_tone_once_in_inventory_order():
    chars = [r[0] for r in rows()]
    assert all(len(r) == 4 for r in rows())
    assert all(lookup(c) is not None and not lookup(c).has_skin_tone for c in chars)
    expected = [i.char for i in inventory() if not i.has_skin_tone]
    assert chars == expected  # every one, each once, sorted like the inventory


def test_lexicon_module_stays_off_the_model_side():
    tree = ast.parse((REPO / "emogram" / "knowledge" / "lexicon.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    assert not imported & {"llama", "engine", "api", "llama_cpp", "models", "backend", "decoding"}


# ------------------------------------------------------------------------------------ words


@pytest.mark.parametrize("singular, plural", [
    ("volcano", "volcanoes"), ("berry", "berries"), ("box", "boxes"), ("glass", "glasses"),
    ("house", "houses"), ("movie", "movies"), ("church", "churches"), ("woman", "women"),
    ("star", "stars"), ("shoe", "shoes")])
def test_singular_and_plural_meet(singular, plural):
    assert stem(singular) == stem(plural)


@pytest.mark.parametrize("word", ["glass", "bus", "virus", "analysis", "gas", "sky", "ski"])
def test_stem_leaves_non_plurals_alone(word):
    assert stem(word) == word


def test_words_lower_cases_drops_stop_words_and_accents():
    assert words("Making the Volcanoes of Côte d’Ivoire") == ["making", "volcano", "cote", "divoire"]
    assert words("") == [] and words("of the and") == []


# ---------------------------------------------------------------------------------- related


@pytest.mark.parametrize("phrase, emoji", [
    ("volcano", "🌋"), ("volcanoes", "🌋"), ("office building", "🏢"), ("brain", "🧠"),
    ("ice cream", "🍨"), ("france", "🇫🇷"), ("Germany", "🇩🇪"), ("sun", "☀️"), ("cat", "🐈")])
def test_the_emoji_named_by_the_phrase_comes_first(phrase, emoji):
    assert top(phrase) == [emoji]


def test_keyword_matches_are_found():
    assert "☕" in top("coffee", 3)  # CLDR keyword of "hot beverage"
    assert "🗳️" in top("vote", 5)  # emojilib keyword
    assert "🏃" in top("run", 5)  # "person running", through the -ing form
    assert "🗳️" in top("voting", 5) and "🗳️" in top("voted", 5)  # -ing in the data; -ed guessed
    assert "🦠" in top("viruses", 5) and top("buses") == ["🚌"]  # virus, bus: -es, not -s


def test_names_outweigh_keywords():
    """Every emoji with "sun" in its name (☀️ sun, 🌦️ sun behind rain cloud) ranks above every
    emoji that only has it as a keyword (⛱️ umbrella on ground)."""
    got = related("sun", limit=None)
    named = ["sun" in lookup(c).name.split() for c, _ in got]
    assert named == sorted(named, reverse=True) and 5 < sum(named) < len(named)
    assert relevance("sun", "☀️") > relevance("sun", "🌞") > relevance("sun", "⛱️") > 0


def test_word_order_counts_through_phrases():
    assert relevance("hot dog", "🌭") > relevance("dog hot", "🌭")
    assert relevance("man walking a dog", "🚶‍♂️") > relevance("walking man a dog", "🚶‍♂️")


def test_a_country_is_its_flag_s_name():
    """"flag: France" is named France: the country matches it as fully as "volcano" matches 🌋."""
    assert relevance("france", "🇫🇷") == relevance("volcano", "🌋")


@pytest.mark.parametrize("generic", ["flag", "face", "symbol", "button", "sign", "person", "man", "woman"])
@pytest.mark.parametrize("specific, emoji", [("volcano", "🌋"), ("coffee", "☕"), ("pizza", "🍕")])
def test_a_generic_word_does_not_outweigh_a_specific_one(generic, specific, emoji):
    assert top(f"{specific} {generic}") == [emoji]
    assert top(f"{generic} {specific}") == [emoji]


def test_a_country_flag_needs_its_country():
    assert not lookup(top("flag")[0]).name.startswith("flag:")
    assert top("history of france") == ["🇫🇷"]


def test_unknown_words_give_nothing():
    assert related("qwzxv") == [] and related("") == [] and related("the of and") == []
    assert relevance("qwzxv", "🌋") == 0.0 and relevance("volcano", "x") == 0.0


def test_allowed_restricts_the_answer_and_admits_skin_tones():
    allowed = "🌞⛅🌋👍🏽"
    got = related("sun", allowed=allowed)
    assert [c for c, _ in got] == ["🌞", "⛅"]
    assert related("sun", allowed=list(allowed.replace("👍🏽", ""))) == got
    assert [c for c, _ in related("thumbs up", allowed=allowed)] == ["👍🏽"]
    assert related("sun", allowed=[]) == []


def test_order_is_best_first_then_inventory_order_and_repeatable():
    got = related("heart", limit=None)
    assert got == related("heart", limit=None)
    assert got == sorted(got, key=lambda item: (-item[1], item[0]))
    assert len(got) > 24 and len(related("heart")) == 24 and len(related("heart", limit=3)) == 3


def test_relevance_is_related_s_score():
    for char, score in related("ice cream"):
        assert relevance("ice cream", char) == score
    assert relevance("coffee", "🌋") == 0.0
    assert relevance("thumbs up", "👍🏽") == relevance("thumbs up", "👍") > 0


def test_keywords():
    assert {"hot", "beverage", "coffee", "espresso"} <= set(keywords("☕"))
    assert keywords("☕")[:2] == ("hot", "beverage")
    assert {"thumbs", "up", "medium", "skin", "tone"} <= set(keywords("👍🏽"))
    assert keywords("x") == () and keywords("") == ()


def test_phrase_must_be_a_string():
    with pytest.raises(InputTypeError):
        related(None)
