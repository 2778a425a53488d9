"""The model registry and safe loading, with the real GGUF files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from emogram import ModelError, explain
from emogram.backend import machine, models
from emogram.backend.library import supports_gpu_offload
from emogram.backend.llama import Model
from emogram.backend.machine import use_extra_buffers

HERE = Path(__file__).resolve().parent  # not the repository root: test the installed package


@pytest.mark.parametrize("name", sorted(models.PRESETS))
def test_each_preset_resolves_and_loads(name):
    source = models.resolve(name)
    assert source.path.is_file() and source.path.suffix == ".gguf"
    model = models.load(name)
    assert model.n_vocab > 40_000
    assert model.tokenize("hello")
    assert models.load(name) is model  # shared per process


def test_a_path_loads_and_is_shared_with_its_preset(smol):
    path = models.resolve("smollm2-135m").path
    assert models.load(str(path)) is smol
    assert models.load(path) is smol


def test_environment_variable_chooses_the_model(monkeypatch):
    monkeypatch.setenv("EMOGRAM_MODEL", "smollm2-135m")
    assert models.resolve(None).preset.name == "smollm2-135m"
    monkeypatch.delenv("EMOGRAM_MODEL")
    assert models.resolve(None).preset.name == models.DEFAULT_PRESET


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    real = models.resolve("smollm2-135m").path.read_bytes()
    files = {
        "missing": tmp_path / "nope.gguf",
        "directory": tmp_path,
        "not gguf": tmp_path / "text.gguf",
        "tiny": tmp_path / "tiny.gguf",
        "truncated": tmp_path / "truncated.gguf",
        "bad version": tmp_path / "version.gguf",
    }
    files["not gguf"].write_text("this is not a model\n" * 10)
    files["tiny"].write_bytes(b"GGUF\x03\x00")
    files["truncated"].write_bytes(real[: 3_000_000])
    files["bad version"].write_bytes(b"GGUF" + (99).to_bytes(4, "little") + real[8:4096])
    return files


@pytest.mark.parametrize("kind", ["missing", "directory", "not gguf", "tiny", "truncated", "bad version"])
def test_bad_files_raise_a_typed_error_naming_the_path(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ModelError) as info:
        Model(path)
    assert str(path) in str(info.value)


def test_bad_files_never_kill_the_process(tmp_path):
    """The same checks in a child process: it must exit normally, having caught every error."""
    paths = [str(p) for p in _bad_files(tmp_path).values()]
    code = ("import sys\nfrom emogram import ModelError\nfrom emogram.backend.llama import Model\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n        Model(p)\n    except ModelError:\n        pass\n"
            "print('survived')\n")
    out = subprocess.run([sys.executable, "-c", code, *paths], cwd=HERE, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "survived" in out.stdout


def test_gemma_is_assembled_once_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOGRAM_CACHE", str(tmp_path))
    path = models.PRESETS["gemma3-270m"].path()
    assert path.parent == tmp_path and path.stat().st_size > 250_000_000
    marker = path.with_name(path.name + ".sha256")
    digest, size, mtime_ns = marker.read_text().split()  # the sha256, and the very file it vouches for
    assert digest == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert (int(size), int(mtime_ns)) == (path.stat().st_size, path.stat().st_mtime_ns)
    mtime = path.stat().st_mtime_ns
    assert models.PRESETS["gemma3-270m"].path() == path and path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_assembled_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOGRAM_CACHE", str(tmp_path))
    path = models.PRESETS["gemma3-270m"].path()
    with path.open("r+b") as f:
        f.write(b"XXXX")
    os.utime(path.with_name(path.name + ".sha256"), (0, 0))  # marker now older than the file
    assert models.PRESETS["gemma3-270m"].path().read_bytes()[:4] == b"GGUF"


def test_unknown_spec_is_treated_as_a_path():
    with pytest.raises(ModelError, match="not found"):
        models.resolve("no-such-model")


def test_hugging_face_without_the_package_says_what_to_install():
    code = ("import sys; sys.modules['huggingface_hub'] = None\n"
            "from emogram import ModelError\nfrom emogram.backend import models\n"
            "try:\n    models.resolve('hf:someone/some-model-GGUF:*Q4_K_M.gguf')\n"
            "except ModelError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert "pip install huggingface_hub" in out.stdout


def test_hugging_face_offline_is_a_clear_error():
    pytest.importorskip("huggingface_hub")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    code = ("from emogram import ModelError\nfrom emogram.backend import models\n"
            "try:\n    models.resolve('hf:someone/some-model-GGUF')\n"
            "except ModelError as e:\n    print('ModelError:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True, env=env, timeout=60)
    assert "ModelError: could not fetch someone/some-model-GGUF" in out.stdout


def test_malformed_hugging_face_reference():
    with pytest.raises(ModelError, match="hf:OWNER/REPO"):
        models.resolve("hf:just-a-name")


def test_device_choices():
    m = Model(models.resolve("smollm2-135m").path, device="cpu")
    assert m.load_info.n_gpu_layers == 0 and not m.load_info.gpu_offload
    m.close()
    if not supports_gpu_offload():
        with pytest.raises(ModelError, match="without GPU support"):
            Model(models.resolve("smollm2-135m").path, device="gpu")


@pytest.mark.parametrize("amx", [False, True])
def test_extra_buffer_policy_can_be_forced_but_never_on_amx(monkeypatch, amx):
    """Off unless asked; asked, on, except where the CPU advertises AMX (the SIGILL guard)."""
    monkeypatch.setattr(machine, "cpu_advertises_amx", lambda: amx)
    monkeypatch.setenv("EMOGRAM_EXTRA_BUFTS", "0")
    assert use_extra_buffers() is False
    monkeypatch.setenv("EMOGRAM_EXTRA_BUFTS", "1")
    assert use_extra_buffers() is (not amx)


def test_two_threads_share_one_model_safely(smol):
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = str(explain(f"topic number {k}", model="smollm2-135m", seed=k, max_tokens=24))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(results) == 2 and all(results.values())


def test_no_llama_cpp_log_on_stderr_by_default():
    code = ("from emogram import explain\n"
            "print(explain('rain', model='smollm2-135m', seed=1, max_tokens=12))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert out.stderr == ""


def test_flash_attention_setting_reaches_llama_cpp(smol, monkeypatch):
    """EMOGRAM_FLASH_ATTN picks llama.cpp's attention kernel: "off" and the default ("auto", on
    here) round differently, so the same prompt gives different logits; junk falls back to auto."""
    import numpy as np

    from emogram.backend.machine import FLASH_ATTN, flash_attention

    monkeypatch.setenv("EMOGRAM_FLASH_ATTN", "junk")
    assert flash_attention() == FLASH_ATTN["auto"]
    tokens = smol.tokenize("Emoji explanations.\nTopic: rain and snow over the hills\nEmoji:", add_special=True)
    logits = {}
    for setting in ("auto", "off", "auto"):
        monkeypatch.setenv("EMOGRAM_FLASH_ATTN", setting)
        ctx = smol.new_context(n_seq=1, n_ctx=256)
        try:
            ctx.decode(tokens, range(len(tokens)), [0] * len(tokens),
                       [i == len(tokens) - 1 for i in range(len(tokens))], full_logits=True)
            got = np.array(ctx.logits(0))
        finally:
            ctx.close()
        if setting in logits:
            assert np.array_equal(got, logits[setting])  # the same setting: the same numbers
        logits[setting] = got
    assert not np.array_equal(logits["auto"], logits["off"])
