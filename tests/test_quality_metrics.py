"""The quality benchmark's metrics, normalisation, split and baselines on hand-made cases (no model)."""

from __future__ import annotations

import json

import pytest

from emogram.quality import baselines, metrics
from emogram.quality import references as refs
from emogram.quality.references import Item


def one_line(*groups):
    return [[list(g) for g in groups]]


# --- normalisation -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def norm():
    return refs.Normaliser(refs.inventory())


def test_operators_are_not_content(norm):
    a = norm.answer("☀️💧 ➡️ 🌱 ➕ 🍬 🆚 🌑 🟰 🙂")
    assert metrics.content(a) == ["☀️", "💧", "🌱", "🍬", "🌑", "🙂"]
    assert a == one_line(["☀️", "💧"], ["🌱"], ["🍬"], ["🌑"], ["🙂"])


def test_missing_fe0f_is_qualified_and_skin_tones_dropped(norm):
    assert norm.answer("🌡🏞") == one_line(["🌡️", "🏞️"])
    assert norm.answer("🤵\u200d♂") == one_line(["🤵\u200d♂️"])
    assert norm.answer("👍🏽👍") == one_line(["👍", "👍"])
    assert norm.answer("🧑🏾\u200d💼") == one_line(["🧑\u200d💼"])
    assert norm.answer("➡") == []  # an unqualified operator is still an operator


def test_junk_is_dropped_and_counted(norm):
    before = norm.dropped.copy()
    assert norm.answer("🔥,😐\ufe0f🦱") == one_line(["🔥", "😐"])
    assert norm.dropped[","] == before[","] + 1 and norm.dropped["🦱"] == before["🦱"] + 1


def test_model_side_goes_through_the_same_normaliser(norm):
    from emogram import parse
    e = parse("👍🏽 ➡️ 🌡️\n➡️ 🧠")
    assert norm.explanation(e) == [[["👍"], ["🌡️"]], [["🧠"]]]


# --- split --------------------------------------------------------------------------------------

def test_split_is_stable_and_matches_the_data_file():
    assert refs.half_of("photosynthesis") == refs.half_of("  Photosynthesis ")
    data = json.loads(refs.ANNOTATORS.read_text(encoding="utf-8"))
    assert all(it["half"] == refs.half_of(it["topic"]) for it in data["items"])
    halves = [it["half"] for it in data["items"]]
    assert 0.4 < halves.count("tune") / len(halves) < 0.6
    assert "not people" in data["provenance"].lower()


# --- per-answer metrics -----------------------------------------------------------------------

def test_precision_counts_occurrences_of_content_emoji_only():
    u = frozenset({"☀️", "🌱"})
    assert metrics.precision(one_line(["☀️", "☀️"], ["🍕"]), u) == pytest.approx(2 / 3)
    # operators that slip into a group are not content: they neither help nor hurt
    assert metrics.precision(one_line(["☀️", "➡️"]), u | {"➡️"}) == 1.0
    assert metrics.precision(one_line(["🍕", "➡️"]), u | {"➡️"}) == 0.0
    assert metrics.precision([], u) == 0.0


def test_best_jaccard_takes_the_best_single_reference():
    refs_ = [one_line(["☀️", "🌱", "💧"]), one_line(["☀️", "🍬"])]
    # {☀️,🍬} vs ref2 = 1.0; vs ref1 = 1/4
    assert metrics.best_jaccard(one_line(["☀️"], ["🍬"]), refs_) == 1.0
    # sets, not counts; and not the union: {☀️,🌱,🍬} vs ref1 2/4, vs ref2 2/3, vs the union 3/4
    assert metrics.best_jaccard(one_line(["☀️", "☀️", "🌱", "🍬"]), refs_) == pytest.approx(2 / 3)
    assert metrics.best_jaccard(one_line(["➡️"]), [one_line(["➡️"])]) == 0.0


def test_hit():
    u = frozenset({"🌱"})
    assert metrics.hit(one_line(["🍕"], ["🌱"]), u)
    assert not metrics.hit(one_line(["🍕"]), u)
    assert not metrics.hit(one_line(["➡️"]), u | {"➡️"})


def test_repeated_groups_across_lines():
    a = [[["🌱"], ["🌱"], ["💧"]], [["💧"], ["☀️", "🌱"]], [["☀️", "🌱"]]]
    assert metrics.repeated_groups(a) == (3, 6)
    assert metrics.repeated_groups(one_line(["🌱"], ["🌱", "🌱"])) == (0, 2)


# --- set metrics ------------------------------------------------------------------------------

def test_recurring_threshold():
    assert metrics.recurring_threshold(5) == 2
    assert metrics.recurring_threshold(41) == 2
    assert metrics.recurring_threshold(60) == 3  # 5% of 59 = 2.95
    assert metrics.recurring_threshold(121) == 6


def test_recurring_lines_need_enough_other_topics():
    filler = [["🔬"], ["🧪"]]
    answers = {
        "a": [[filler, [["🌋"]]]],
        "b": [[[["🔬", "🧪"]]]],  # same content sequence, other grouping: the same line
        "c": [[[["🧪"], ["🔬"]]]],  # other order: another line
        "d": [[[["🌊"]]]],
    }
    flags = metrics.recurring(answers)  # threshold 2: a's line is also in b only -> not recurring
    assert flags == {"a": [False], "b": [False], "c": [False], "d": [False]}
    answers["d"] = [[[["🌊"]], filler]]
    flags = metrics.recurring(answers)  # now in a, b, d: each sees 2 other topics
    assert flags == {"a": [True], "b": [True], "c": [False], "d": [True]}


def test_recurring_ignores_repeats_within_one_topic():
    line = [["🔬"]]
    answers = {"a": [[line], [line], [line]], "b": [[[["🌊"]]]], "c": [[[["🌋"]]]]}
    assert metrics.recurring(answers)["a"] == [False, False, False]


def test_recurring_operators_are_not_content():
    assert metrics.line_seqs([[["🔬", "➡️"]], [["➡️"]]]) == [("🔬",)]
    # a line of operators only (if one slipped in) is no line; 🌊 and 🌊➡️ are the same line
    answers = {k: [[[[e]], [["➡️"]]]] for k, e in zip("abcd", "🌊🌋🌱🍕")}
    assert not any(f for fl in metrics.recurring(answers).values() for f in fl)
    answers["b"] = [[[["🌊", "➡️"]]]]
    answers["c"] = [[[["🌊"], ["🟰"]]]]
    assert metrics.recurring(answers)["a"] == [True]


def test_drift_by_line_index():
    u = frozenset({"🌱", "💧"})
    a = [[["🌱"], ["💧", "➡️"]], [["🍕"], ["🌱"]], [["🍕"]], [["🌱"]], [["🍕"]]]
    d = metrics.drift([(a, u)])  # the ➡️ that slipped into line 1 is not counted
    assert d == {"1": 1.0, "2": 0.5, "3": 0.0, "4+": 0.5}
    assert metrics.drift([(one_line(["🌱"]), u)])["2"] is None


def test_score_row():
    refs_ = [one_line(["🌱", "💧"])]
    rows = [{"answer": one_line(["🌱"], ["🍕"]), "refs": refs_, "valid": True, "seconds": 1.0},
            {"answer": [[["🍕"]], [["🍕"]]], "refs": refs_, "valid": False, "seconds": 3.0}]
    r = metrics.score(rows, [False, True])
    assert r["precision"] == pytest.approx(0.25) and r["hit"] == 0.5 and r["recurring"] == 0.5
    assert r["best_jaccard"] == pytest.approx((1 / 3 + 0) / 2)
    assert r["repeated_groups"] == pytest.approx(1 / 4) and r["emoji"] == 2.0 and r["lines"] == 1.5
    assert r["valid"] == 0.5 and r["seconds"] == 2.0


# --- baselines ----------------------------------------------------------------------------------

def test_keyword_lookup_takes_the_first_match_in_library_order():
    lib = {"😀": ["grinning_face", "smile", "happy"], "🌋": ["volcano", "eruption"],
           "🏔️": ["mountain", "volcano"], "☀️": ["sun", "weather"]}
    index = baselines.keyword_index(lib)
    assert index["volcano"] == "🌋"
    assert baselines.keyword_text("How volcanoes work in the sun", index) == "🌋 ☀️"
    assert baselines.keyword_text("the happy grinning", index) == "😀"  # not "grinning" in grinning_face
    assert baselines.keyword_text("nothing here", index) == ""


def test_random_baseline_keeps_shapes():
    model = {"a": [[[["🌱", "💧"], ["☀️"]], [["🍕"]]]]}
    draws = baselines.random_answers(model, ["🐢", "🐇"], draws=3)
    assert len(draws) == 3
    for d in draws:
        (a,) = d["a"]
        assert [[len(g) for g in line] for line in a] == [[2, 1], [1]]
        assert set(metrics.content(a)) <= {"🐢", "🐇"}


def test_random_pool_has_no_operators_or_skin_tones(norm):
    pool = baselines.random_pool(norm)
    assert not set(pool) & metrics.OPERATORS
    assert not any(c in refs.SKIN_TONES for e in pool for c in e)
    assert "👍" in pool and len(pool) > 1800  # 3,959 less the 2,040 toned forms


def test_leave_one_out():
    r1, r2, r3 = one_line(["🌱", "💧"]), one_line(["🌱"]), one_line(["🍕"])
    items = [Item("x", "plants", "phrase", "tune", [r1, r2, r3], ["1", "2", "3"]),
             Item("y", "solo", "phrase", "tune", [r1], ["1"])]
    rows, flags = baselines.leave_one_out(items)
    assert len(rows) == 3 and len(flags) == 3  # "solo" has no other answer to score against
    assert rows[0]["refs"] == [r2, r3] and rows[2]["refs"] == [r1, r2]
    row = metrics.score(rows, flags)
    assert row["hit"] == pytest.approx(2 / 3)  # 🍕 is in neither other answer
    assert row["precision"] == pytest.approx((0.5 + 1 + 0) / 3)
