"""The bank's emoji pass: only emoji change, only reviewed lines ship, a reviewer's fix and revert
win, and a line whose entry changed since is refused rather than shipped."""

from __future__ import annotations

import json

import pytest

from emogram.training import bank_emoji
from emogram.training.corpus import Entry, allowed_emoji

BALLOON = Entry("how a hot air balloon rises", "explain",
                "burner: 🔥 -> air inside heats: 🌡️ -> air expands: 🎈 -> less dense: 🪶 -> balloon lifts: ⬆️")
TIDES = Entry("how tides rise and fall", "explain",
              "moon pulls water: 🌕 -> bulge of sea: 🌊 -> earth turns: 🌍 = two tides a day: 🕛")


def _lane(tmp_path, written: list[dict], review: list[dict]):
    (tmp_path / "todo").mkdir()
    (tmp_path / "reviews").mkdir()
    todo = "".join(json.dumps({"topic": e.topic, "kind": e.kind, "answer": e.answer}, ensure_ascii=False) + "\n"
                   for e in (BALLOON, TIDES))
    (tmp_path / "todo" / "E1.jsonl").write_text(todo, encoding="utf-8")
    for name, rows in (("E1.jsonl", written), ("reviews/E1.jsonl", review)):
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def test_redrawn_keeps_every_word_and_separator():
    new = bank_emoji.redrawn(TIDES.answer, ["🌕🧲", "🌊⬆️", "🌍🔄", "🌊🌊"])
    assert new == "moon pulls water: 🌕🧲 -> bulge of sea: 🌊⬆️ -> earth turns: 🌍🔄 = two tides a day: 🌊🌊"
    assert bank_emoji.skeleton(new) == bank_emoji.skeleton(TIDES.answer)
    with pytest.raises(ValueError, match="3 groups for 4 parts"):
        bank_emoji.redrawn(TIDES.answer, ["🌕", "🌊", "🌍"])


@pytest.mark.parametrize("groups, problem", [
    (["🌕➡️", "🌊", "🌍", "🕛"], "parse"),                   # a separator inside a group
    (["🌕 🧲", "🌊", "🌍", "🕛"], "is not 'words: emoji'"),  # a space inside a group
    (["🌕🧲🌊🌍", "🌊", "🌍", "🕛"], "a group has 1 to 3"),
    (["🌕", "🌕", "🌍", "🕛"], "repeats an earlier part"),
    (["🌕", "🌊", "🌍", "🍋\u200d🟩"], "not in the inventory"),  # lime: Emoji 15.1, past the bank's 15.0
])
def test_the_checks_refuse_what_the_brief_forbids(groups, problem):
    problems = bank_emoji._problems(TIDES.answer, groups, allowed_emoji())
    assert any(problem in p for p in problems), problems
    assert bank_emoji._problems(TIDES.answer, ["🌕", "🌊", "🌍", "🫎"], allowed_emoji()) == []  # 🫎: 15.0


def test_only_reviewed_lines_ship_and_the_review_wins(tmp_path):
    directory = _lane(tmp_path,
                      written=[{"line": 1, "emoji": ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈⬆️"]},
                               {"line": 2, "emoji": ["🌕🧲", "🌊⬆️", "🌍🔄", "🌊🌊"]}],
                      review=[{"line": 1, "action": "fix", "emoji": ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈🆙"],
                               "why": "lifts"}, {"through": 1}])
    emoji_pass = bank_emoji.reviewed_pass(directory)
    assert (emoji_pass.written, emoji_pass.reviewed) == (2, 1)
    assert emoji_pass.answers == {BALLOON.topic: bank_emoji.redrawn(BALLOON.answer, ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈🆙"])}
    entries, changed, refused = bank_emoji.apply([BALLOON, TIDES], emoji_pass)
    assert changed == 1 and refused == []
    assert entries[0].answer.endswith("balloon lifts: 🎈🆙") and entries[1] == TIDES   # line 2: not reviewed yet
    assert bank_emoji.check("E1", directory) == 0 and bank_emoji.check_review("E1", directory) == 0


def test_a_revert_keeps_the_old_emoji(tmp_path):
    directory = _lane(tmp_path, written=[{"line": 1, "emoji": ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈⬆️"]}],
                      review=[{"line": 1, "action": "revert", "why": "padded"}, {"through": 1}])
    emoji_pass = bank_emoji.reviewed_pass(directory)
    assert emoji_pass.answers == {} and emoji_pass.decisions[0][2] == "revert"
    assert bank_emoji.apply([BALLOON], emoji_pass)[0] == [BALLOON]


def test_an_entry_whose_words_changed_since_keeps_its_answer():
    emoji_pass = bank_emoji.Pass(answers={TIDES.topic: bank_emoji.redrawn(TIDES.answer, ["🌕🧲", "🌊⬆️", "🌍🔄", "🌊🌊"])})
    reworded = Entry(TIDES.topic, "explain", TIDES.answer.replace("earth turns", "earth spins"))
    entries, changed, refused = bank_emoji.apply([reworded], emoji_pass)
    assert entries == [reworded] and changed == 0
    assert refused == [(TIDES.topic, "the entry's words changed since")]


def test_the_checkers_name_each_bad_line(tmp_path, capsys):
    directory = _lane(tmp_path,
                      written=[{"line": 2, "emoji": ["🌕🧲", "🌊⬆️", "🌍🔄", "🌊🌊"]},
                               {"line": 1, "emoji": ["🔥", "🌡️", "🎈", "🪶", "⬆️"]},      # out of order
                               {"line": 9, "emoji": ["🔥"]}],                              # not a line
                      review=[{"line": 1, "action": "fix", "emoji": ["🔥"], "why": "x"},  # 1 group for 5 parts
                              {"line": 2, "action": "maybe", "why": "x"},
                              {"through": 3}])
    assert bank_emoji.check("E1", directory) == 1
    out = capsys.readouterr().out
    assert "E1.jsonl:2: line 1 comes after line 2" in out and "E1.jsonl:3: line must be" in out
    assert bank_emoji.check_review("E1", directory) == 1
    out = capsys.readouterr().out
    assert 'action must be "fix" or "revert"' in out and "through must be 1 to 2" in out
    assert "1 groups for 5 parts" in out


def test_the_shipped_pass_is_reviewed_before_it_ships():
    """Every entry of the shipped bank that differs from its work list is a reviewed line."""
    directory = bank_emoji.emoji_dir()
    if not (directory / "todo").is_dir():
        pytest.skip("no emoji pass in this checkout")
    emoji_pass = bank_emoji.reviewed_pass()
    assert emoji_pass.reviewed <= emoji_pass.written
    for lane in sorted(p.stem for p in directory.glob("E*.jsonl")):
        assert bank_emoji.check(lane) == 0
        assert bank_emoji.check_review(lane) == 0


def test_a_second_reviewer_covers_a_later_stretch(tmp_path):
    """A lane's second reviewer (reviews/E1-2.jsonl) reviews a stretch of it (from, through): those
    lines ship, the lines between the two stretches do not."""
    directory = _lane(tmp_path,
                      written=[{"line": 1, "emoji": ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈⬆️"]},
                               {"line": 2, "emoji": ["🌕🧲", "🌊⬆️", "🌍🔄", "🌊🌊"]}],
                      review=[])
    (directory / "reviews" / "E1-2.jsonl").write_text('{"from": 2, "through": 2}\n', encoding="utf-8")
    emoji_pass = bank_emoji.reviewed_pass(directory)
    assert list(emoji_pass.answers) == [TIDES.topic] and emoji_pass.reviewed == 1
    assert bank_emoji.check_review("E1-2", directory) == 0
    (directory / "reviews" / "E1-2.jsonl").write_text('{"from": 3, "through": 2}\n', encoding="utf-8")
    assert bank_emoji.check_review("E1-2", directory) == 1


def test_the_second_reviewers_decision_wins(tmp_path):
    """Where both reviewers decided a line, the second reading (after the writers finished) wins."""
    directory = _lane(tmp_path, written=[{"line": 1, "emoji": ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈⬆️"]}],
                      review=[{"line": 1, "action": "revert", "why": "first"}, {"through": 1}])
    (directory / "reviews" / "E1-2.jsonl").write_text(
        '{"line": 1, "action": "fix", "emoji": ["🔥", "🌬️🌡️", "💨↔️", "🪶", "🎈🆙"], "why": "second"}\n'
        '{"from": 1, "through": 1}\n', encoding="utf-8")
    emoji_pass = bank_emoji.reviewed_pass(directory)
    assert emoji_pass.answers[BALLOON.topic].endswith("balloon lifts: 🎈🆙")
