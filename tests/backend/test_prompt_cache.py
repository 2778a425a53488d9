"""The prompt-prefix cache: a one-shot command restores the few-shot examples' llama.cpp state from
disk instead of evaluating them again, and gets the very same logits (so the same answers); and
the directory's trust policy (private, no symlinks, size cap, prune only our own files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emogram import explain
from emogram.backend import models
from emogram.backend import prompt_cache as pc
from emogram.backend.llama import Model
from emogram.backend.prompt_cache import PromptCache
from emogram.defaults import ENV_CACHE

HERE = Path(__file__).resolve().parent
SHARED = "Explain each topic with emoji.\nTopic: tea\nEmoji: 🍵 ➡️ ☕\nTopic: rain\nEmoji: ☁️ ➡️ 🌧️\n"
OWN = "Topic: volcanoes\nEmoji:"


@pytest.fixture(scope="module")
def gemma_model():
    model = Model(models.resolve("gemma3-270m").path, device="cpu")
    yield model
    model.close()


def _tokens(model: Model) -> tuple[list[int], list[int]]:
    return model.tokenize(SHARED, add_special=True), model.tokenize(OWN)


def _after(model: Model, payload: bytes | None) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Logits (full and candidate-only) after SHARED + OWN: SHARED evaluated, or restored from
    ``payload``; returns the state of SHARED too."""
    shared, own = _tokens(model)
    ctx = model.new_context(n_seq=2, n_ctx=1024)
    try:
        if payload is None:
            ctx.decode(shared, range(len(shared)), [1] * len(shared), [False] * len(shared))
        else:
            assert ctx.state_set(1, payload)
        state = ctx.state_get(1)
        assert ctx.state_set(0, state)  # how the scheduler gives a sequence its prefix
        n = len(shared)
        ctx.decode(own, range(n, n + len(own)), [0] * len(own), [i == len(own) - 1 for i in range(len(own))],
                   full_logits=True)
        ctx.head.positions(np.arange(1000, 3000))
        return ctx.logits(0).copy(), ctx.candidate_logits(0), state
    finally:
        ctx.close()


def test_a_restored_prefix_gives_bit_identical_logits(gemma_model):
    evaluated_full, evaluated_head, state = _after(gemma_model, None)
    assert len(state) > 100_000
    restored_full, restored_head, _ = _after(gemma_model, state)
    assert np.array_equal(evaluated_full, restored_full)
    assert np.array_equal(evaluated_head, restored_head)


def test_files_round_trip_and_damage_is_ignored(tmp_path):
    cache = PromptCache(tmp_path / "prompts", b"model-a")
    cache.store([1, 2, 3], b"payload" * 100)
    assert cache.load([1, 2, 3]) == b"payload" * 100
    assert cache.load([1, 2, 4]) is None
    (file,) = (tmp_path / "prompts").glob("*.kv")
    blob = bytearray(file.read_bytes())
    blob[-10] ^= 0xFF  # one flipped byte: the checksum no longer matches
    file.write_bytes(bytes(blob))
    assert cache.load([1, 2, 3]) is None


def test_files_are_named_by_identity_and_tokens(tmp_path):
    a, b = PromptCache(tmp_path, b"model-a"), PromptCache(tmp_path, b"model-b")
    assert a.file_for([1, 2, 3]) == a.file_for([1, 2, 3])
    assert a.file_for([1, 2, 3]) != a.file_for([1, 2, 4])
    assert a.file_for([1, 2, 3]) != b.file_for([1, 2, 3])


def test_the_directory_is_created_private_and_a_shared_one_is_refused(tmp_path):
    cache = PromptCache(tmp_path / "mine", b"m")
    cache.store([1], b"x" * 10)
    assert (os.stat(tmp_path / "mine").st_mode & 0o777) == 0o700
    assert cache.load([1]) == b"x" * 10
    os.chmod(tmp_path / "mine", 0o777)  # anyone may write here now: nothing in it is trusted
    assert cache.load([1]) is None
    cache.store([2], b"y" * 10)
    assert not cache.file_for([2]).exists()


def test_symlinks_and_oversized_files_are_not_read(tmp_path, monkeypatch):
    cache = PromptCache(tmp_path / "c", b"m")
    cache.store([1], b"x" * 10)
    elsewhere = tmp_path / "elsewhere.kv"
    elsewhere.write_bytes(cache.file_for([1]).read_bytes())
    cache.file_for([2]).symlink_to(elsewhere)
    assert cache.load([2]) is None
    monkeypatch.setattr(pc, "MAX_BYTES", 20)
    assert cache.load([1]) is None


def test_pruning_removes_only_our_own_files(tmp_path):
    directory = tmp_path / "c"
    cache = PromptCache(directory, b"m")
    cache.store([0], b"first")
    for k in range(pc.KEEP + 5):
        f = directory / f"{k:040x}.kv"
        f.write_bytes(pc.MAGIC + b"\0" * 40)
        os.utime(f, (1_000_000 + k, 1_000_000 + k))
    foreign = [directory / "notes.kv", directory / f"{'f' * 40}.kv"]
    foreign[0].write_bytes(pc.MAGIC + b"not our name")
    foreign[1].write_bytes(b"someone else's file with our name pattern")
    cache.store([1], b"second")
    ours = cache.ours()
    assert len(ours) == pc.KEEP
    assert directory / f"{0:040x}.kv" not in ours  # the oldest went first
    assert cache.file_for([1]) in ours
    assert all(f.exists() for f in foreign)


def test_a_well_formed_file_llama_cpp_refuses_does_not_kill_the_process(tmp_path):
    """A file with our header and a valid checksum but a payload llama.cpp cannot read (another
    build's layout, say): llama.cpp's loader reports failure and the prefix is evaluated instead."""
    code = """
import hashlib
from emogram import explain
from emogram.api import _engine_for
from emogram.backend import models
from emogram.backend.prompt_cache import MAGIC
from emogram.knowledge import prompts
from emogram.options import build_request
model = models.load("gemma3-270m")
engine = _engine_for(model)
grammar = build_request().grammar
shared, own = engine._tokens(prompts.build(model, "volcanoes", grammar.shape, grammar.emoji_filter,
                                           think=False))
cache = engine.scheduler.prompt_cache
payload = bytes(range(256)) * 64
cache.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
cache.file_for(shared).write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
e = explain("volcanoes", seed=1, plan=False)  # the direct prompt, whose prefix was planted
print("answered", e.stats.prompt_tokens > len(shared))
"""
    env = {**os.environ, models.ENV_PROMPT_CACHE: str(tmp_path / "c")}
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "answered True" in out.stdout


def test_an_unwritable_cache_is_not_an_error(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    cache = PromptCache(blocker / "prompts", b"m")
    cache.store([1], b"x")
    assert cache.load([1]) is None


def test_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(models.ENV_PROMPT_CACHE, "0")
    assert models.prompt_cache_dir() is None
    monkeypatch.setenv(models.ENV_PROMPT_CACHE, str(tmp_path))
    assert models.prompt_cache_dir() == tmp_path
    monkeypatch.delenv(models.ENV_PROMPT_CACHE)
    monkeypatch.setenv(ENV_CACHE, str(tmp_path))
    assert models.prompt_cache_dir() == tmp_path / "prompts"


def test_cli_answers_are_the_same_with_the_file_and_without(tmp_path):
    """End to end through the command line: a cold run writes the file, a warm run reads it, and
    both print the same answer; the warm one evaluates only the topic's own tokens. Without the
    adapter: with it the prompt is the topic alone, and there is no shared prefix to keep; and
    without the bank, whose neighbours are read after the shared prefix (the topic's own part)."""
    env = {**os.environ, models.ENV_PROMPT_CACHE: str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-m", "emogram", "volcanoes", "--seed", "5", "--verbose",
                            "--no-adapter", "--no-bank"],
                           cwd=HERE, capture_output=True, text=True, env=env, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.strip()

    def prompt_tokens(run) -> int:
        line = next(l for l in run.stderr.splitlines() if l.startswith("prompt eval count"))
        return int(line.split(":")[1].split()[0])

    assert prompt_tokens(runs[1]) < prompt_tokens(runs[0]) / 4
    assert len(PromptCache(tmp_path, b"").ours()) == 1


def test_explain_through_the_shared_model_matches_an_uncached_model():
    """The process-wide model (prompt cache on, as users get it) and a model without a cache give
    the same answer for the same seed."""
    from emogram.decoding.engine import Engine
    from emogram.options import build_request
    cached = explain("glaciers", seed=11, model="gemma3-270m", adapter=False).text
    bare = Model(models.resolve("gemma3-270m").path, device="auto")
    try:
        assert Engine(bare).explain("glaciers", build_request(seed=11)).text == cached
    finally:
        bare.close()


def test_the_flash_attention_setting_is_part_of_a_cache_files_identity(smol, monkeypatch, tmp_path):
    """llama.cpp refuses a state saved with flash attention in a context without it (another KV
    layout): the two settings must not share files, or each would overwrite the other's."""
    from emogram.backend.prompt_cache import for_model

    monkeypatch.setattr(smol, "prompt_cache_dir", tmp_path, raising=False)
    files = {}
    for setting in ("auto", "off"):
        monkeypatch.setenv("EMOGRAM_FLASH_ATTN", setting)
        files[setting] = for_model(smol).file_for([1, 2, 3])
    assert files["auto"] != files["off"]


def test_the_bank_entries_a_topic_read_are_reused_in_memory_and_never_written(tmp_path):
    """With the adapter, the bank entries an answer reads are its prompt's shared prefix: the same
    topic again (another seed) restores their state instead of evaluating them, and gives the text
    a fresh engine gives; no such prefix is written to the prompt cache on disk (one file per topic
    would churn it)."""
    from emogram.decoding.engine import Engine
    from emogram.options import build_request
    source = models.resolve("gemma3-270m")
    model = Model(source.path, device="auto", prompt_cache=tmp_path, adapter=models.resolve_adapter(source))
    engine = Engine(model)
    try:
        first = engine.explain("how tides work", build_request(seed=3))
        assert [s.used for s in first.sources][:1] == ["read"]
        again = engine.explain("how tides work", build_request(seed=3))
        other_seed = engine.explain("how tides work", build_request(seed=4))
        assert again.text == first.text
        assert again.stats.prompt_tokens < first.stats.prompt_tokens / 4
        assert other_seed.stats.prompt_tokens == again.stats.prompt_tokens
        assert PromptCache(tmp_path, b"").ours() == []
    finally:
        model.close()
    fresh = Model(source.path, device="auto", adapter=models.resolve_adapter(source))
    try:
        assert Engine(fresh).explain("how tides work", build_request(seed=4)).text == other_seed.text
    finally:
        fresh.close()
