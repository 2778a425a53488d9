"""The set-up cache: what every run computes the same for a model file (its vocabulary's pieces,
control and end tokens; a grammar's pre-filtered tokens; the word tables) is kept on disk and read
back instead of rebuilt. Read back, it is the very same; a damaged or forged file is rebuilt, never
trusted; a directory others may write to is not used; and answers are the same with it and
without it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emogram.backend import context as context_module
from emogram.backend import models
from emogram.backend import setup_cache as sc
from emogram.backend.llama import Model
from emogram.backend.machine import native_available
from emogram.decoding import gloss
from emogram.decoding.engine import Engine
from emogram.options import build_request

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def smol_path():
    return models.resolve("smollm2-135m").path


@pytest.fixture
def pure_python(monkeypatch):
    """The vocabulary is cached only where it is read through ctypes (with the C extension it is
    read in 0.01 s, faster than the cache's file)."""
    monkeypatch.setenv("EMOGRAM_PURE_PYTHON", "1")


def _vocabulary(model: Model) -> tuple[list[bytes], np.ndarray, list[int]]:
    return model.pieces(), model.control_mask(), model.eog_tokens()


def _fresh(path, cache_dir) -> tuple[list[bytes], np.ndarray, list[int]]:
    model = Model(path, device="cpu", prompt_cache=cache_dir)
    try:
        return _vocabulary(model)
    finally:
        model.close()


def _same(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.npz"))


def test_the_vocabulary_read_back_is_the_one_llama_cpp_gives(smol_path, tmp_path, pure_python):
    bare = _fresh(smol_path, None)
    cold = _fresh(smol_path, tmp_path)
    assert len(_files(tmp_path)) == 1  # written by the cold run
    warm = _fresh(smol_path, tmp_path)
    assert _same(bare, cold) and _same(bare, warm)
    assert len(bare[0]) == 49152 and bare[2]


def test_a_damaged_file_is_rebuilt_not_trusted(smol_path, tmp_path, pure_python):
    bare = _fresh(smol_path, None)
    _fresh(smol_path, tmp_path)
    [path] = _files(tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # a flipped byte in the arrays: the checksum no longer holds
    path.write_bytes(bytes(data))
    assert _same(_fresh(smol_path, tmp_path), bare)
    assert path.read_bytes() != bytes(data)  # written again, whole


def test_a_forged_file_with_a_good_checksum_is_rebuilt(smol_path, tmp_path, pure_python):
    """A file that passes the checksum but holds no arrays, or arrays for another vocabulary."""
    bare = _fresh(smol_path, None)
    _fresh(smol_path, tmp_path)
    [path] = _files(tmp_path)
    magic = sc.SetupCache.magic
    for payload in (b"not a zip file at all", _npz(blob=np.zeros(3, np.uint8), ends=np.array([1, 2, 3]),
                                                   control=np.zeros(3, bool), eog=np.array([0]))):
        path.write_bytes(magic + hashlib.sha256(payload).digest() + payload)
        assert _same(_fresh(smol_path, tmp_path), bare)


def _npz(**arrays) -> bytes:
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_directory_others_may_write_to_is_not_used(smol_path, tmp_path, pure_python):
    if not hasattr(os, "getuid"):
        pytest.skip("no POSIX ownership here")
    tmp_path.chmod(0o777)
    try:
        assert _same(_fresh(smol_path, tmp_path), _fresh(smol_path, None))
        assert _files(tmp_path) == []
    finally:
        tmp_path.chmod(0o700)


def test_the_engine_reads_back_the_same_prefilter_and_word_tables(smol_path, tmp_path):
    grammar = build_request().grammar
    seen = []
    for cache_dir in (None, tmp_path, tmp_path):  # none, cold, warm
        model = Model(smol_path, device="cpu", prompt_cache=cache_dir)
        try:
            engine = Engine(model)
            cands = engine.candidates(grammar, gloss.END_TEXTS)
            words = engine._word_tokens()
            seen.append((cands.tokens.tolist(), cands.n_content, cands.eog, cands.min_answer_tokens,
                         cands.partial.tolist(), words[0].tolist(), words[1], words[2].tolist()))
            engine.close()
        finally:
            model.close()
    assert seen[0] == seen[1] == seen[2]
    assert len(_files(tmp_path)) == 2  # pre-filter, word tables (the vocabulary is read from C)


def test_answers_are_the_same_with_the_cache_cold_warm_and_off(tmp_path):
    def run(cache: str) -> str:
        out = subprocess.run([sys.executable, "-m", "emogram", "how tides work", "--seed", "3", "-f", "json"],
                             cwd=HERE, capture_output=True, text=True, timeout=300,
                             env={**os.environ, models.ENV_PROMPT_CACHE: cache})
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout
    off = run("0")
    assert run(str(tmp_path)) == off  # cold: builds and writes
    assert len(_files(tmp_path)) == 3  # pre-filter, word tables, the head's verdict
    assert run(str(tmp_path)) == off  # warm: reads


def test_the_head_check_is_kept_per_model_and_adapter(tmp_path, monkeypatch):
    """The candidate head's check against llama.cpp's logits (a forward pass) runs once per model
    file and adapter; later contexts read its verdict. An adapter is part of the name: with one,
    the check runs again."""
    source = models.resolve("gemma3-270m")
    lora = models.resolve_adapter(source, None)
    assert lora is not None
    probes = []
    probe = context_module._probe_head
    monkeypatch.setattr(context_module, "_probe_head", lambda ctx: probes.append(ctx) or probe(ctx))

    def head_ok(adapter) -> bool:
        model = Model(source.path, device="cpu", prompt_cache=tmp_path, adapter=adapter)
        try:
            ctx = model.new_context(n_seq=1, n_ctx=256)
            try:
                return ctx.head_ok
            finally:
                ctx.close()
        finally:
            model.close()

    assert head_ok(None) and len(probes) == 1 and len(_files(tmp_path)) == 1
    assert head_ok(None) and len(probes) == 1  # read back: no forward pass
    assert head_ok(lora) and len(probes) == 2 and len(_files(tmp_path)) == 2  # another name
    assert head_ok(lora) and len(probes) == 2
    off = Model(source.path, device="cpu", prompt_cache=None)
    try:
        ctx = off.new_context(n_seq=1, n_ctx=256)
        assert ctx.head_ok and len(probes) == 3  # no cache: checked in every process
        ctx.close()
    finally:
        off.close()


@pytest.mark.skipif(not native_available(), reason="emogram._native is not built")
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_the_vocabulary_read_from_c_is_the_one_read_through_ctypes(name):
    model = Model(models.resolve(name).path, device="cpu", prompt_cache=None)
    try:
        native, python = model._vocabulary_arrays(), model._vocabulary_arrays_python()
    finally:
        model.close()
    for key in ("blob", "ends", "control", "eog"):
        assert native[key].dtype == python[key].dtype and np.array_equal(native[key], python[key]), key
    assert len(python["ends"]) == {"smollm2-135m": 49152, "gemma3-270m": 262144}[name]
