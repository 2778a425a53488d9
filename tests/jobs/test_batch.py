"""``emogram batch`` and ``emogram.batch``: readers, keys, the resumable writer, bad rows, the seed
rule, worker processes, and a ``kill -9`` in the middle of 200 topics."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import warnings

import pytest

import emogram
from emogram import InputError, explain
from emogram.backend.machine import usable_cores
from emogram.jobs.batch_io import adapter_id
from emogram.jobs.batching import (BatchRecord, JsonlWriter, canonical_options, divide_cores, read_rows,
                                   record_key)

from batch_helpers import (FAST, assert_valid, batch_command, descendants, generic_topics, records,
                           run_batch, wait_for_lines)


# --- no model ------------------------------------------------------------------------------------

def test_readers(tmp_path):
    (tmp_path / "t.txt").write_text("tea\n\n  \r\ncoffee\r\n", encoding="utf-8")
    assert [(r.number, r.topic) for r in read_rows(tmp_path / "t.txt")] == [(1, "tea"), (4, "coffee")]
    (tmp_path / "t.csv").write_text("id,name\n1,tea\n2,\"milk, warm\"\n3\n", encoding="utf-8")
    rows = list(read_rows(tmp_path / "t.csv", column="name"))
    assert [r.topic for r in rows[:2]] == ["tea", "milk, warm"] and rows[2].problem
    (tmp_path / "one.csv").write_text("\ufeffsubject\ntea\n", encoding="utf-8")  # BOM, one column
    assert [r.topic for r in read_rows(tmp_path / "one.csv")] == ["tea"]
    (tmp_path / "t.jsonl").write_text('{"topic": "tea"}\n"coffee"\n{"name": 1}\nnot json\n{"topic": 7}\n')
    rows = list(read_rows(tmp_path / "t.jsonl"))
    assert [r.topic for r in rows[:2]] == ["tea", "coffee"]
    assert [r.problem is not None for r in rows] == [False, False, True, True, True]
    assert [r.topic for r in read_rows(["a", "b"])] == ["a", "b"]


@pytest.mark.parametrize("source, options, message", [
    ("t.csv", dict(column="nope"), "no column 'nope'"),
    ("t.txt", dict(column="x"), "needs a CSV or JSONL"),
    ("missing.txt", {}, "input file not found"),
    ("t.txt", dict(input_format="xml"), "input format"),
])
def test_input_problems_are_refused_before_any_work(tmp_path, source, options, message):
    (tmp_path / "t.csv").write_text("id,name\n1,tea\n")
    (tmp_path / "t.txt").write_text("tea\n")
    with pytest.raises(InputError, match=message):
        list(read_rows(tmp_path / source, **options))


def test_bad_options_fail_at_call_time(tmp_path):
    with pytest.raises(InputError, match="minimum"):
        emogram.batch(["tea"], tmp_path / "o.jsonl", lines=(3, 2))
    with pytest.raises(InputError, match="emoji_filter"):
        emogram.batch(["tea"], emoji_filter=emogram.EmojiFilter.make(palette="🍎🍌"))
    with pytest.raises(TypeError, match="seed"):
        emogram.batch(["tea"], seed=[1, 2])
    with pytest.raises(InputError, match="workers"):
        emogram.batch(["tea"], workers=0)
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["missing.txt"], "input file not found: missing.txt"),
    (["t.txt", "--workers", "0"], "workers must be at least 1"),
    (["t.txt", "--lines", "5-2"], "minimum (5) is above the maximum (2)"),
])
def test_cli_user_errors_are_one_line_and_touch_nothing(tmp_path, args, message):
    (tmp_path / "t.txt").write_text("tea\n")
    out = run_batch(*args, "-o", "out.jsonl", cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("emogram: error: ")
    assert message in out.stderr and out.stderr.count("\n") == 1
    assert not (tmp_path / "out.jsonl").exists()


def test_keys_depend_on_topic_options_seed_model_and_adapter_only():
    opts = canonical_options({"lines": (1, 2), "palette": None, "operators": "➡️"})
    assert opts == {"emoji_version": "15.1", "lines": [1, 2], "operators": "➡️"}  # the default written out
    key = record_key("tea", opts, 1, "gemma3-270m")
    assert key == record_key("tea", dict(opts), 1, "gemma3-270m")
    others = {record_key("coffee", opts, 1, "gemma3-270m"), record_key("tea", {}, 1, "gemma3-270m"),
              record_key("tea", opts, 2, "gemma3-270m"), record_key("tea", opts, None, "gemma3-270m"),
              record_key("tea", opts, 1, "smollm2-135m"),
              record_key("tea", opts, 1, "gemma3-270m", adapter_id(False)),
              record_key("tea", opts, 1, "gemma3-270m", adapter_id("mine.gguf"))}
    assert key not in others and len(others) == 7
    assert key == record_key("tea", opts, 1, "gemma3-270m", adapter_id(None))


def _record(topic: str, n: int = 0) -> BatchRecord:
    return BatchRecord(key=record_key(topic, {}, 1, "m"), row=n, topic=topic, text="☕", gloss="Hot beverage.",
                       model="m", seed=1, options={}, timings={"eval_tokens": 1}, error=None)


def test_writer_cuts_a_torn_last_line_and_keeps_the_rest(tmp_path):
    path = tmp_path / "out.jsonl"
    writer = JsonlWriter(path)
    assert writer.write(_record("tea")) and writer.write(_record("rain"))
    assert not writer.write(_record("tea"))  # a key is written once
    writer.close()
    good = path.read_bytes()
    torn = _record("snow").to_json().encode()[:37]
    path.write_bytes(good + torn)
    writer = JsonlWriter(path)
    assert writer.repaired_bytes == len(torn) and len(writer.keys) == 2
    assert path.read_bytes() == good
    writer.write(_record("snow"))
    writer.close()
    assert path.read_bytes().startswith(good) and len(records(path)) == 3


def test_writer_refuses_a_file_that_is_not_ours_and_a_second_writer(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"key": "a"}\nnot a record\n{"key": "b"}\n')
    with pytest.raises(InputError, match="line 2 is not an emogram batch record"):
        JsonlWriter(path)
    assert path.read_text().count("\n") == 3  # untouched
    other = tmp_path / "other.jsonl"
    first = JsonlWriter(other)
    with pytest.raises(InputError, match="another emogram batch"):
        JsonlWriter(other)
    first.close()
    JsonlWriter(other).close()


def test_cores_are_divided():
    assert divide_cores(1, cores=8) == (1, 8)
    assert divide_cores(3, cores=8) == (3, 2)
    assert divide_cores(2, cores=2) == (2, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert divide_cores(4, cores=2) == (2, 1)
        assert divide_cores(2, threads=2, cores=2) == (2, 2)
    assert len(caught) == 2


# --- the real model --------------------------------------------------------------------------------

def test_bad_rows_are_recorded_and_the_rest_goes_on(tmp_path):
    src = tmp_path / "t.jsonl"
    lines = ['{"topic": "tea"}', json.dumps({"topic": "x" * 301}), "{broken", '{"topic": ""}',
             '{"topic": "snow"}', '{"topic": "tea"}']
    src.write_text("\n".join(lines) + "\n")
    out = run_batch(str(src), "-o", "out.jsonl", *FAST, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = {r["row"]: r for r in records(tmp_path / "out.jsonl")}
    assert sorted(got) == [1, 2, 3, 4, 5]  # row 6 repeats row 1's key
    assert "301 characters" in got[2]["error"] and "not JSON" in got[3]["error"]
    assert "empty" in got[4]["error"]
    assert got[2]["text"] is None and got[2]["timings"] is None
    assert got[1]["adapter"] == "gemma3-270m-explain" and got[2]["adapter"] is None  # which ran
    assert_valid(got[1]), assert_valid(got[5])
    assert "3 errors" in out.stderr and "1 repeated" in out.stderr


def test_seed_rule(tmp_path):
    """With ``batch_size=1`` (exact decoding) a record is reproducible; batched decoding may round
    differently (docs/guide.md, "Many answers at once"), so the exact path is the one compared."""
    # one seed for all: a topic's answer does not depend on its position
    a = {r.topic: r.text for r in emogram.batch(["tea", "rain"], seed=3, lines=1, batch_size=1)}
    b = {r.topic: r.text for r in emogram.batch(["rain", "tea"], seed=3, lines=1, batch_size=1)}
    assert a == b
    # no seed: a random one per topic, recorded, and the record can be reproduced
    run = emogram.batch(["tea", "rain"], tmp_path / "o.jsonl", lines=1, batch_size=1)
    got = list(run)
    assert run.written == 2 and got[0].seed != got[1].seed
    for r in got:
        assert explain(r.topic, seed=r.seed, **r.options).text == r.text
    # a rerun without a seed skips them: the key holds the seed option (random), not the seed drawn
    again = emogram.batch(["tea", "rain"], tmp_path / "o.jsonl", lines=1, batch_size=1)
    assert list(again) == [] and again.already_done == 2


def test_stdin_to_stdout(tmp_path):
    out = run_batch(*FAST, cwd=tmp_path, input="tea\nrain\n")
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["topic"] for r in got) == ["rain", "tea"]
    for r in got:
        assert_valid(r)
        assert r["seed"] == 5 and r["options"] == {"emoji_version": "15.1", "lines": 1, "steps": [1, 2]} and r["model"]


def test_a_torn_line_is_redone_on_resume(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(generic_topics(4)) + "\n")
    args = ["t.txt", "-o", "out.jsonl", *FAST]
    assert run_batch(*args, cwd=tmp_path).returncode == 0
    path = tmp_path / "out.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + lines[3][:len(lines[3]) // 2])  # a writer killed mid-line
    out = run_batch(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "torn last line" in out.stderr and "1 written now, 3 already there" in out.stderr
    after = path.read_bytes().splitlines(keepends=True)
    assert after[:3] == lines[:3] and len(after) == 4
    assert json.loads(after[3])["topic"] == json.loads(lines[3])["topic"]
    assert_valid(json.loads(after[3]))


def test_workers_divide_the_cores_and_a_killed_worker_loses_nothing(tmp_path):
    topics = generic_topics(16)
    (tmp_path / "t.txt").write_text("\n".join(topics) + "\n")
    path = tmp_path / "out.jsonl"
    process = subprocess.Popen(batch_command("t.txt", "-o", "out.jsonl", "--workers", "2", *FAST),
                               cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(path, 3, process)
        workers = [pid for pid, cmd in descendants(process.pid) if "spawn_main" in cmd]
        assert len(workers) == 2, descendants(process.pid)
        os.kill(workers[0], signal.SIGKILL)
        _, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, err
    got = records(path)
    assert sorted(r["topic"] for r in got) == sorted(topics)
    assert len({r["key"] for r in got}) == len(got)
    cores = usable_cores()
    for r in got:
        assert_valid(r)
        assert r["timings"]["threads"] == max(1, cores // 2)


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path):
    topics = generic_topics(12)
    (tmp_path / "t.txt").write_text("\n".join(topics) + "\n")
    args = ["t.txt", "-o", "out.jsonl", *FAST]
    process = subprocess.Popen(batch_command(*args), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(tmp_path / "out.jsonl", 2, process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "interrupted" in err
    first = (tmp_path / "out.jsonl").read_bytes()
    assert first.endswith(b"\n") and len(records(tmp_path / "out.jsonl")) < 12
    assert run_batch(*args, cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.jsonl").read_bytes().startswith(first)
    assert sorted(r["topic"] for r in records(tmp_path / "out.jsonl")) == sorted(topics)


def test_resume_after_kill_9_at_a_random_point(tmp_path):
    """200 topics; ``kill -9`` after a random number of records (and a random fraction of the
    next); a rerun: exactly 200 valid records, each topic once, the first run's bytes unchanged."""
    seed = int(os.environ.get("EMOGRAM_KILL_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    topics = generic_topics(200)
    (tmp_path / "t.txt").write_text("\n".join(topics) + "\n")
    path = tmp_path / "out.jsonl"
    args = ["t.txt", "-o", "out.jsonl", *FAST]
    process = subprocess.Popen(batch_command(*args), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(path, rng.randint(10, 190), process)
        time.sleep(rng.uniform(0, 0.5))
        assert process.poll() is None, f"finished before the kill (EMOGRAM_KILL_SEED={seed})"
        process.kill()  # SIGKILL
        process.wait()
    finally:
        process.kill()
    first = path.read_bytes()
    complete = first[:first.rfind(b"\n") + 1]
    done = complete.count(b"\n")
    assert 10 <= done < 200, f"EMOGRAM_KILL_SEED={seed}"
    out = run_batch(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"{200 - done} written now, {done} already there" in out.stderr, (out.stderr, seed)
    final = path.read_bytes()
    assert final.startswith(complete), f"EMOGRAM_KILL_SEED={seed}"
    got = records(path)
    assert len(got) == 200 and sorted(r["topic"] for r in got) == sorted(topics)
    assert len({r["key"] for r in got}) == 200
    for r in got:
        assert_valid(r)
