"""The command line, driven as a user would: a subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
import sys

import pytest

from emogram import parse

HERE = Path(__file__).resolve().parent  # not the repository root: test the installed package


def run(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emogram", *args], cwd=HERE, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_main_command_prints_a_valid_explanation_and_nothing_else():
    out = run("transformers", "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    parse(out.stdout.rstrip("\n"))


def test_verbose_prints_ollama_style_timings_to_stderr():
    out = run("rain", "--seed", "2", "--verbose")
    assert out.returncode == 0
    for key in ("load duration:", "prompt eval count:", "eval count:", "eval rate:", "tokens/s",
                "constraint per token:", "model and checks:", "answer and output:"):
        assert key in out.stderr
    parse(out.stdout.rstrip("\n"))
    # the whole process, start to output: its parts add up to it, and it covers the answer's total
    rows = dict(line.split(":", 1) for line in out.stderr.splitlines() if ":" in line)
    seconds = {k.strip(): _seconds(v) for k, v in rows.items() if k.strip() in (
        "process so far", "start, imports", "model and checks", "answer and output", "total duration")}
    if "process so far" in seconds:  # Linux: the process's start time is known
        parts = seconds["start, imports"] + seconds["model and checks"] + seconds["answer and output"]
        assert abs(parts - seconds["process so far"]) < 0.01
        assert seconds["process so far"] >= seconds["total duration"]


def _seconds(text: str) -> float:
    text = text.strip()
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


@pytest.mark.parametrize("fmt, check", [
    ("gloss", lambda s: s.strip().endswith(".") and s[0].isupper()),
    ("json", lambda s: "text" in json.loads(s)),
    ("mermaid", lambda s: s.startswith("flowchart LR")),
    ("html", lambda s: s.startswith("<!doctype html>")),
    ("text", lambda s: parse(s.rstrip("\n")) is not None),
])
def test_formats(fmt, check):
    out = run("tea", "--seed", "3", "--format", fmt)
    assert out.returncode == 0, out.stderr
    assert check(out.stdout)


def test_shape_options_and_model_choice():
    out = run("the seasons", "--lines", "2", "--steps", "2", "--emoji-per-group", "1", "--seed", "4",
              "--model", "smollm2-135m")
    assert out.returncode == 0, out.stderr
    e = parse(out.stdout.rstrip("\n"))
    assert len(e.lines) == 2 and all(len(line.groups) == 2 for line in e.lines)


def test_plan_lexicon_and_candidates_options():
    planned = json.loads(run("rain", "--seed", "5", "--format", "json", "--candidates", "2").stdout)
    assert planned["plan"] and parse(planned["text"])
    direct = run("rain", "--seed", "5", "--format", "json", "--no-plan", "--no-lexicon")
    assert direct.returncode == 0, direct.stderr
    assert "plan" not in json.loads(direct.stdout)
    bad = run("rain", "--candidates", "0")
    assert bad.returncode == 1 and "candidates must be between 1 and" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_think_shows_reasoning_on_stderr_and_emoji_on_stdout():
    out = run("rainbows", "--think", "--seed", "5")
    assert out.returncode == 0, out.stderr
    assert "Thinking..." in out.stderr and "done thinking" in out.stderr
    parse(out.stdout.rstrip("\n"))


@pytest.mark.parametrize("args, code, message", [
    (["x", "--lines", "5-2"], 1, "minimum (5) is above the maximum (2)"),
    (["x", "--model", "/nonexistent/model.gguf"], 1, "model file not found: /nonexistent/model.gguf"),
    (["x", "--palette", "abc"], 1, "not a fully-qualified emoji"),
    (["x", "--emoji-version", "ninety"], 1, "not a version number"),
    (["x", "--lines", "many"], 2, "expected N or MIN-MAX"),
    (["x", "--format", "pdf"], 2, "invalid choice"),
    (["   "], 1, "topic is empty"),
    ([], 2, "required"),
])
def test_user_errors_are_one_line_without_traceback(args, code, message):
    out = run(*args)
    assert out.returncode == code
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("option", [
    ["--temperature", "nan"], ["--temperature", "inf"], ["--emoji-version", "nan"], ["--max-tokens", "0"],
    ["--max-tokens", "99999999999999999999"], ["--lines", "1-99"], ["--operators", "abc"],
    ["--palette", "🍎", "--exclude", "🍎"],
])
def test_a_bad_option_is_one_error_line_before_the_model_is_looked_for(option):
    """The model path does not exist: the option's error comes first (nothing was loaded), on
    exactly one line of stderr, with nothing on stdout."""
    out = run("x", "--model", "/nonexistent/model.gguf", *option)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("emogram: error: "), out.stderr
    assert "model file not found" not in out.stderr


def test_grammar_write_where_it_cannot_write_is_one_error_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    targets = [(blocker / "grammars", "not a directory"), (blocker, "file exists")]
    if os.geteuid() != 0:  # root writes into a read-only directory anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        targets.append((locked / "grammars", "permission denied"))
    for target, message in targets:
        out = run("grammar", "--write", str(target))
        assert out.returncode == 1 and out.stdout == "", out.stderr
        assert out.stderr.splitlines() == [f"emogram: error: {message}: {target}"], out.stderr


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "fake.gguf"
    bad.write_text("hello")
    out = run("x", "--model", str(bad))
    assert out.returncode == 1 and "not a GGUF model file" in out.stderr and "Traceback" not in out.stderr


def test_models_lists_presets():
    out = run("models")
    assert out.returncode == 0
    assert "gemma3-270m [default]" in out.stdout and "smollm2-135m" in out.stdout
    assert "installed" in out.stdout


def test_grammar_prints_gbnf_or_lark():
    out = run("grammar", "--lines", "1", "--palette", "🍎🍌", "--stats")
    assert out.returncode == 0
    assert "root" in out.stdout and "::=" in out.stdout and "GBNF rules" in out.stderr
    lark_out = run("grammar", "--lark")
    assert "EMOJI: /" in lark_out.stdout


def test_doctor_says_which_sampler_and_backend():
    out = run("doctor", env={"EMOGRAM_PURE_PYTHON": "1"})
    assert out.returncode == 0
    assert "sampler:" in out.stdout and "python (EMOGRAM_PURE_PYTHON is set)" in out.stdout
    assert "GPU offload:" in out.stdout and "extra buffer types:" in out.stdout
    assert "prompt cache:" in out.stdout
    off = run("doctor", env={"EMOGRAM_PROMPT_CACHE": "0"})
    assert "off (EMOGRAM_PROMPT_CACHE=0)" in off.stdout


def test_adapter_flags_verbose_and_doctor_name_the_adapter(tmp_path):
    from emogram.backend.models import PRESETS
    on = run("tea", "--seed", "4", "--verbose")
    assert on.returncode == 0 and "adapter:" in on.stderr and "gemma3-270m-explain" in on.stderr
    off = run("tea", "--seed", "4", "--verbose", "--no-adapter", "-f", "json")
    assert off.returncode == 0 and "adapter:              none" in off.stderr
    assert "adapter" not in json.loads(off.stdout)
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(PRESETS["gemma3-270m"].adapter_path().read_bytes())
    same = run("tea", "--seed", "4", "--adapter", str(mine), "-f", "json")
    assert json.loads(same.stdout)["adapter"] == "mine"
    assert json.loads(same.stdout)["text"] == on.stdout.strip()
    bad = run("tea", "--adapter", str(tmp_path / "missing.gguf"))
    assert bad.returncode == 1 and bad.stderr.startswith("emogram: error: ") and bad.stderr.count("\n") == 1
    both = run("tea", "--adapter", str(mine), "--no-adapter")
    assert both.returncode == 2
    doctor = run("doctor")
    assert "default adapter:" in doctor.stdout and "gemma3-270m-explain" in doctor.stdout
    placed = run("doctor", "--model", "gemma3-270m")
    assert placed.returncode == 0, placed.stderr
    assert "adapter:" in placed.stdout and "LoRA rank" in placed.stdout


def test_explain_subcommand_for_a_topic_named_like_a_command():
    out = run("explain", "models", "--seed", "1")
    assert out.returncode == 0 and parse(out.stdout.rstrip("\n"))


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("emogram ")


def test_the_installed_command_exists():
    import shutil
    exe = shutil.which("emogram") or os.path.join(os.path.dirname(sys.executable), "emogram")
    if not os.path.exists(exe):
        pytest.skip("emogram is not installed as a command in this environment (pip install .)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0


def test_bank_flags_sources_in_verbose_and_json(tmp_path):
    """--verbose names the entries an answer used; --format json carries them; --bank PATH reads a
    bank of one's own first; --no-bank answers without one; a bad bank line is one error line."""
    out = run("transformers (machine learning)", "--seed", "0", "--verbose")
    assert out.returncode == 0, out.stderr
    assert "source, followed:" in out.stderr and "transformers (machine learning)" in out.stderr
    data = json.loads(run("transformers", "--seed", "0", "--format", "json").stdout)
    assert data["sources"][0]["topic"] == "transformers (machine learning)"
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"topic": "how the school bell rings", "answer": "clock: 🕰️ -> switch: 🔌 -> bell rings: 🔔"}\n',
                    encoding="utf-8")
    data = json.loads(run("how does the school bell ring", "--seed", "0", "--format", "json",
                          "--bank", str(mine)).stdout)
    assert data["sources"][0]["bank"] == str(mine) and data["plan"] == ["clock", "switch", "bell rings"]
    data = json.loads(run("transformers", "--seed", "0", "--format", "json", "--no-bank").stdout)
    assert "sources" not in data
    mine.write_text('{"topic": "x", "answer": "Clock: 🕰️"}\n', encoding="utf-8")
    out = run("tea", "--bank", str(mine))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert f"{mine}:1:" in out.stderr and len(out.stderr.strip().splitlines()) == 1
