"""The explanation bank's files: the user's banks are checked line by line (a typed error that
names the file and the line), read only as regular files of bounded size, and the shipped bank is
read on first use. No model here (``tests/decoding/test_recall.py`` answers from the bank)."""

from __future__ import annotations

import json
import os

import pytest

from emogram.errors import EmogramError, InputError
from emogram.knowledge import bank
from emogram.knowledge.bank import BankError, answer_parts

GOOD = {"topic": "how a hot air balloon rises",
        "answer": "burner: 🔥 -> air heats: ♨️ -> hot air lighter: 🪶 -> balloon rises: 🎈⬆️"}


def write(tmp_path, *lines, name="mine.jsonl") -> str:
    path = tmp_path / name
    path.write_text("".join((json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x) + "\n"
                            for x in lines), encoding="utf-8")
    return str(path)


def test_a_good_file_reads_every_part(tmp_path):
    path = write(tmp_path, GOOD, "", {"topic": "cats or dogs", "kind": "phrase", "answer": "cat: 🐈 vs dog: 🐕"})
    entries = bank.read_file(path)
    assert [e.topic for e in entries] == ["how a hot air balloon rises", "cats or dogs"]
    first = entries[0]
    assert [p.words for p in first.parts] == ["burner", "air heats", "hot air lighter", "balloon rises"]
    assert [p.op for p in first.parts] == [None, "->", "->", "->"]
    assert first.parts[-1].group == "🎈⬆️"
    assert (first.bank, first.line, first.kind) == (path, 1, "explain")
    assert (entries[1].line, entries[1].kind) == (3, "phrase")  # a blank line keeps the count


@pytest.mark.parametrize("line, reason", [
    ("{not json", "Expecting"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"topic": "x"}), "must be strings"),
    (json.dumps({"topic": "", "answer": "a: 🔥"}), "1 to 300 characters"),
    (json.dumps({"topic": "x", "answer": "fire 🔥"}), "is not 'words: emoji'"),
    (json.dumps({"topic": "x", "answer": "Fire: 🔥"}), "lower-case words"),
    (json.dumps({"topic": "x", "answer": "fire: abc"}), "is not emoji"),
    (json.dumps({"topic": "x", "answer": "fire: 🔥🔥🔥🔥"}), "1 to 3 emoji"),
    (json.dumps({"topic": "x", "answer": " -> ".join(f"s{c}: 🔥" for c in "abcdefg")}), "at most 6"),
    (json.dumps({"topic": "x", "answer": "a: 🔥", "kind": "poem"}), '"kind"'),
    ("[" * 100000, ""),  # nested past the parser's depth: an error, not a crash
])
def test_a_bad_line_names_the_file_and_line(tmp_path, line, reason):
    path = write(tmp_path, GOOD, line)
    with pytest.raises(BankError) as info:
        bank.read_file(path)
    assert str(info.value).startswith(f"{path}:2: ")
    assert reason in str(info.value)
    assert isinstance(info.value, InputError) and isinstance(info.value, EmogramError)


def test_not_utf8_missing_and_not_regular_files_are_refused(tmp_path):
    raw = tmp_path / "latin.jsonl"
    raw.write_bytes(b'{"topic": "caf\xe9", "answer": "a: \xf0"}\n')
    with pytest.raises(BankError, match="not UTF-8"):
        bank.read_file(raw)
    with pytest.raises(BankError, match="cannot be read"):
        bank.read_file(tmp_path / "none.jsonl")
    with pytest.raises(BankError, match="not a regular file"):
        bank.read_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BankError, match="not a regular file"):  # would hang a plain open().read()
        bank.read_file(fifo)
    with pytest.raises(BankError, match="not a regular file"):  # /dev/zero would fill memory
        bank.read_file("/dev/zero")


def test_a_file_over_the_bound_is_refused_by_the_read(tmp_path, monkeypatch):
    monkeypatch.setattr(bank, "MAX_BANK_BYTES", 1000)
    path = write(tmp_path, *[GOOD] * 20)
    with pytest.raises(BankError, match="larger than 1,000 bytes"):
        bank.read_file(path)


def test_the_option_as_data(tmp_path):
    assert bank.bank_paths(None) == () and bank.bank_paths(True) == ()
    assert bank.bank_paths(False) is None
    assert bank.bank_paths(tmp_path / "a.jsonl") == (str(tmp_path / "a.jsonl"),)
    assert bank.bank_paths(["a", "b"]) == ("a", "b")
    with pytest.raises(InputError):
        bank.bank_paths(3)
    with pytest.raises(BankError):
        bank.bank_paths("a\x00b")


def test_user_files_are_read_again_only_when_changed(tmp_path):
    path = write(tmp_path, GOOD)
    key, first = bank.user_entries([path])
    assert bank.user_entries([path])[1][0] is first[0]  # unchanged: the same entries
    write(tmp_path, {**GOOD, "topic": "why hot air rises"})
    os.utime(path, ns=(1, 1))
    assert bank.user_entries([path])[1][0].topic == "why hot air rises"


def test_senses():
    assert bank.split_sense("transformers (machine learning)") == ("transformers", "machine learning")
    assert bank.split_sense("transformers") == ("transformers", "")
    assert bank.split_sense("(only brackets)") == ("(only brackets)", "")


def test_the_shipped_bank_is_read_on_first_use():
    import subprocess
    import sys
    probe = ("import sys, emogram; from emogram import options; "
             "print('emogram.knowledge.bank' in sys.modules, 'sqlite3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("answer", ["a: 🅰️ 🐝", "a: 🅰️ -> b: 🐝 🐝", "a 🅰️", "a: 🅰️ -> : 🐝", "a: 🅰️ -> b: "])
def test_the_one_reader_of_the_format_refuses_a_part_that_is_not_words_then_one_group(answer):
    """``answer_parts`` is the reader the bank and the corpus share: a space inside a part's emoji
    (two groups where the format has one), no colon, no words or no emoji is refused there."""
    with pytest.raises(ValueError, match="is not 'words: emoji'"):
        list(answer_parts(answer))
