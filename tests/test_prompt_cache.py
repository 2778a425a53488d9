"""The prompt-prefix cache: a one-shot command restores the few-shot examples' llama.cpp state from
disk instead of evaluating them again, and gets the very same logits (so the same answers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emogram import explain, models
from emogram.llama import Model, PromptCache

HERE = Path(__file__).resolve().parent
SHARED = "Explain each topic with emoji.\nTopic: tea\nEmoji: 🍵 ➡️ ☕\nTopic: rain\nEmoji: ☁️ ➡️ 🌧️\n"
OWN = "Topic: volcanoes\nEmoji:"


@pytest.fixture(scope="module")
def gemma_path():
    return models.resolve("gemma3-270m").path


def _prompt(model: Model) -> tuple[list[int], list[int]]:
    return (model.tokenize(SHARED, add_special=True, parse_special=False),
            model.tokenize(OWN, add_special=False, parse_special=False))


def _logits_after_prefill(path, cache_dir) -> tuple[np.ndarray, int, Model]:
    model = Model(path, device="cpu", prompt_cache=cache_dir)
    shared, own = _prompt(model)
    evaluated = model.prefill_split(shared, own)
    return model.logits().copy(), evaluated, model


def test_a_second_process_restores_the_prefix_and_gets_identical_logits(gemma_path, tmp_path):
    first, evaluated_first, m1 = _logits_after_prefill(gemma_path, tmp_path)
    shared, own = _prompt(m1)
    m1.close()
    assert evaluated_first == len(shared) + len(own)
    files = list(tmp_path.glob("*.kv"))
    assert len(files) == 1 and files[0].stat().st_size > 100_000
    second, evaluated_second, m2 = _logits_after_prefill(gemma_path, tmp_path)
    m2.close()
    assert evaluated_second == len(own)  # the examples came from the file
    assert np.array_equal(first, second)  # bit for bit


def test_a_damaged_file_is_ignored_and_the_prefix_evaluated(gemma_path, tmp_path):
    reference, _, m = _logits_after_prefill(gemma_path, tmp_path)
    shared, own = _prompt(m)
    m.close()
    (file,) = tmp_path.glob("*.kv")
    blob = bytearray(file.read_bytes())
    blob[-100] ^= 0xFF  # one flipped byte: the checksum no longer matches
    file.write_bytes(bytes(blob))
    again, evaluated, m = _logits_after_prefill(gemma_path, tmp_path)
    m.close()
    assert evaluated == len(shared) + len(own)
    assert np.array_equal(reference, again)


def test_a_well_formed_file_llama_cpp_refuses_does_not_kill_the_process(gemma_path, tmp_path):
    """A file with our header and a valid checksum but a payload llama.cpp cannot read (another
    build's layout, say): llama.cpp's loader reports 0 and emogram evaluates the prefix instead."""
    code = f"""
import hashlib, sys
from pathlib import Path
from emogram.llama import Model, PromptCache
model = Model({str(gemma_path)!r}, device="cpu", prompt_cache={str(tmp_path)!r})
shared = model.tokenize({SHARED!r}, add_special=True, parse_special=False)
own = model.tokenize({OWN!r}, add_special=False, parse_special=False)
payload = bytes(range(256)) * 64
model.prompt_cache.file_for(shared).parent.mkdir(parents=True, exist_ok=True)
model.prompt_cache.file_for(shared).write_bytes(
    PromptCache.MAGIC + hashlib.sha256(payload).digest() + payload)
assert not model.prompt_cache.restore(shared)
print("evaluated", model.prefill_split(shared, own) == len(shared) + len(own))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "evaluated True" in out.stdout


def test_an_unwritable_cache_is_not_an_error(gemma_path, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    reference, _, m = _logits_after_prefill(gemma_path, None)
    m.close()
    logits, _, m = _logits_after_prefill(gemma_path, blocker / "prompts")
    m.close()
    assert np.array_equal(reference, logits)
    assert not list(tmp_path.glob("**/*.kv"))


def test_files_are_named_by_model_and_tokens(gemma_path, tmp_path):
    m = Model(gemma_path, device="cpu", prompt_cache=tmp_path)
    try:
        cache = m.prompt_cache
        assert isinstance(cache, PromptCache)
        assert cache.file_for([1, 2, 3]) == cache.file_for([1, 2, 3])
        assert cache.file_for([1, 2, 3]) != cache.file_for([1, 2, 4])
    finally:
        m.close()


def test_old_files_are_pruned(gemma_path, tmp_path):
    for k in range(PromptCache.KEEP + 5):
        f = tmp_path / f"{k:040d}.kv"
        f.write_bytes(b"x")
        os.utime(f, (1_000_000 + k, 1_000_000 + k))
    m = Model(gemma_path, device="cpu", prompt_cache=tmp_path)
    try:
        shared, own = _prompt(m)
        m.prefill_split(shared, own)
    finally:
        m.close()
    kept = sorted(p.name for p in tmp_path.glob("*.kv"))
    assert len(kept) == PromptCache.KEEP
    assert f"{0:040d}.kv" not in kept  # the oldest went first


def test_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(models.ENV_PROMPT_CACHE, "0")
    assert models.prompt_cache_dir() is None
    monkeypatch.setenv(models.ENV_PROMPT_CACHE, str(tmp_path))
    assert models.prompt_cache_dir() == tmp_path
    monkeypatch.delenv(models.ENV_PROMPT_CACHE)
    monkeypatch.setenv(models.ENV_CACHE, str(tmp_path))
    assert models.prompt_cache_dir() == tmp_path / "prompts"


def test_cli_answers_are_the_same_with_the_file_and_without(tmp_path):
    """End to end through the command line: a cold run writes the file, a warm run reads it, and
    both print the same answer; the warm one evaluates only the topic's own tokens."""
    env = {**os.environ, models.ENV_PROMPT_CACHE: str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-m", "emogram", "volcanoes", "--seed", "5", "--verbose"],
                           cwd=HERE, capture_output=True, text=True, env=env, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.strip()

    def prompt_tokens(run) -> int:
        line = next(l for l in run.stderr.splitlines() if l.startswith("prompt eval count"))
        return int(line.split(":")[1].split()[0])

    assert prompt_tokens(runs[1]) < prompt_tokens(runs[0]) / 4
    assert len(list(tmp_path.glob("*.kv"))) == 1


def test_explain_through_the_shared_model_matches_an_uncached_model(gemma_path):
    """The process-wide model (prompt cache on, as users get it) and a model without a cache give
    the same answer for the same seed."""
    from emogram.api import build_request
    from emogram.engine import Engine
    cached = explain("glaciers", seed=11, model="gemma3-270m").text
    bare = Model(gemma_path, device="auto")
    try:
        assert Engine(bare).explain("glaciers", build_request(seed=11)).text == cached
    finally:
        bare.close()
