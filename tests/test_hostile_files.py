"""Hostile files and names given to emogram's readers (issue 30): each is a typed ``EmogramError``
with one line, or a correct result, never a traceback, a hang or a runaway read.

The defects of main 8cf7f18 each have their test here (the server's are in ``test_serve_hostile.py``):
nested GGUF arrays (4), a manifest of the wrong shape (5), a name that climbs out of the store (6), a
config blob that is a device or a FIFO (7), a damaged checksum file (8), a NUL byte in an adapter
path (9), a cache or model directory others may write to and a model file swapped under its
checksum file (10), and an adapter given through a pipe (the third minor point)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import emogram
import store_helpers as sh
from emogram.backend import gguf, models, stores
from emogram.backend.prompt_cache import PromptCache
from emogram.errors import ModelError, ModelStoreError

NEUTRAL = {k: v for k, v in os.environ.items() if k != "EMOGRAM_SERVE"} | {"EMOGRAM_SERVE": "0"}


def nested_gguf(path: Path, depth: int = 100_000) -> Path:
    """A GGUF file whose one metadata value is an array of arrays ``depth`` deep (the crafted file
    of defect 4)."""
    value = struct.pack("<IQ", 4, 1) + b"\0\0\0\0"  # the innermost: one u32
    head = b"".join(struct.pack("<IQ", 9, 1) for _ in range(depth))
    key = b"x"
    tensor = struct.pack("<Q", 1) + b"t" + struct.pack("<IQIQ", 1, 4, 0, 0)  # one f32 vector of 4
    data = (b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<I", 9) + head[12:] + value + tensor)  # the key's own type says "array" already
    path.write_bytes(data + bytes(64))
    return path


def command(*args: str, env: dict | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emogram", *args], capture_output=True, text=True,
                          env=env or NEUTRAL, timeout=timeout, **kw)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("emogram: error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


# --- 4: nested arrays in a GGUF file ------------------------------------------------------------

def test_nested_gguf_arrays_are_a_model_error_everywhere(tmp_path):
    path = nested_gguf(tmp_path / "nested.gguf")
    with pytest.raises(ModelError, match="nests arrays more than"):
        gguf.read_table(path)
    with pytest.raises(ModelError, match="nests arrays more than"):
        emogram.explain("tea", adapter=path)
    assert "nests arrays" in one_line_error(command("tea", "--adapter", str(path), cwd=tmp_path))


def test_arrays_nested_within_the_limit_are_read(tmp_path):
    """The limit refuses only what is deeper than ``MAX_NESTING``: an adapter holding a nested array
    of that depth is still an adapter (its table reads; arrays are skipped)."""
    path = nested_gguf(tmp_path / "ok.gguf", depth=gguf.MAX_NESTING)
    assert gguf.read_table(path).metadata == {}
    with pytest.raises(ModelError, match="nests arrays"):
        gguf.read_table(nested_gguf(tmp_path / "deeper.gguf", depth=gguf.MAX_NESTING + 1))


# --- 5, 6, 7: ollama's store --------------------------------------------------------------------

@pytest.fixture
def store(tmp_path, monkeypatch):
    """An ollama store of the test's own with one good model (SmolLM2's file), and empty LM Studio
    and hub-cache folders; the environment points emogram at them."""
    smol = models.resolve("smollm2-135m").path
    root = tmp_path / "ollama"
    sh.ollama_model(root, "smollm2:135m", smol, sh.sha256(smol))
    env = {"OLLAMA_MODELS": str(root), "LMSTUDIO_HOME": str(tmp_path / "lms"), "HF_HUB_CACHE": str(tmp_path / "hub")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return root, {**NEUTRAL, **env}


def _manifest(root: Path, name: str, body: object) -> Path:
    model, _, tag = name.partition(":")
    path = root / "manifests" / "registry.ollama.ai" / "library" / model / (tag or "latest")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


WRONG_SHAPES = {"layers-int": {"layers": 5}, "layers-str": {"layers": "x"}, "layer-int": {"layers": [5]},
                "media-int": {"layers": [{"mediaType": 5, "digest": "sha256:" + "0" * 64}]},
                "size-str": {"layers": [{"mediaType": sh.MODEL_LAYER, "digest": "sha256:" + "0" * 64, "size": "9"}]},
                "a-list": [1, 2], "a-number": 7, "config-int": {"config": 5, "layers": []}}


def test_a_manifest_of_the_wrong_shape_is_named_and_the_listing_goes_on(store):
    root, env = store
    for name, body in WRONG_SHAPES.items():
        _manifest(root, f"{name}:latest", body)
    _manifest(root, "deep:latest", None).write_bytes(b"[" * 200_000)
    entries = {f.name: f for f in stores.discover(["ollama"])}
    assert entries["smollm2:135m"].error is None
    for name in [*WRONG_SHAPES, "deep"]:
        error = entries[f"{name}:latest"].error
        assert isinstance(error, ModelStoreError), (name, error)
        with pytest.raises(ModelStoreError):
            stores.resolve(f"ollama:{name}")
    assert "nested too deeply" in str(entries["deep:latest"].error)
    assert '"layers" is a JSON int' in str(entries["layers-int:latest"].error)
    listing = command("models", "--json", env=env)
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr[-2000:]
    rows = {json.loads(line)["model"]: json.loads(line) for line in listing.stdout.splitlines()}
    assert rows["ollama:smollm2:135m"]["runnable"]
    assert '"layers" is a JSON int' in rows["ollama:layers-int:latest"]["problem"]
    assert not rows["ollama:deep:latest"]["runnable"]


def test_a_name_that_climbs_out_of_the_store_is_refused_unread(store, tmp_path):
    root, env = store
    smol = models.resolve("smollm2-135m").path
    outside = tmp_path / "outside" / "ns" / "model" / "tag"  # a manifest that would resolve, outside
    outside.parent.mkdir(parents=True)
    outside.write_text(json.dumps({"layers": [{"mediaType": sh.MODEL_LAYER, "digest": sh.sha256(smol),
                                              "size": smol.stat().st_size}]}), encoding="utf-8")
    climbs = os.path.relpath(tmp_path / "outside", root / "manifests")  # "../../outside"
    for name in (f"{climbs}/ns/model:tag", "../../../../../../../etc:passwd", "library/..:x", "./ns/m:t",
                 "a\x00b", "ns/mo\\del:t"):
        with pytest.raises(ModelError, match="not an ollama model name"):
            stores.resolve(f"ollama:{name}")
    # a link inside the store that leads out of it is not followed either
    link = root / "manifests" / "registry.ollama.ai" / "library" / "linked" / "latest"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(ModelStoreError, match="leads out of the store"):
        stores.resolve("ollama:linked")
    result = command("tea", "--model", f"ollama:{climbs}/ns/model:tag", env=env)
    assert "not an ollama model name" in one_line_error(result)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_config_blob_that_is_a_device_or_a_fifo_is_never_read(store, kind):
    """``emogram models`` and a resolve, in a child process with 1 GB of address space and a time
    limit: a FIFO would hang them, /dev/zero would fill memory (defect 7)."""
    root, env = store
    manifest = next((root / "manifests").rglob("135m"))
    body = json.loads(manifest.read_text())
    config = root / "blobs" / body["config"]["digest"].replace(":", "-")
    config.unlink()
    if kind == "fifo":
        os.mkfifo(config)
    else:
        config.symlink_to("/dev/zero")
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.RLIM_INFINITY))\n"
            "from emogram.backend import stores\n"
            "found = stores.discover(['ollama'])\n"
            "print(len(found), [str(f.error) for f in found])\n"
            "print(stores.resolve('ollama:smollm2:135m', verified=None).path)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == "1 ['None']"  # the config is not needed: "" means GGUF


# --- 8, 10: the checksum file beside the assembled model, and who may write there ---------------------

GEMMA_SHA = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_a_damaged_checksum_file_or_a_swapped_model_is_hashed_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOGRAM_CACHE", str(tmp_path))
    preset = models.PRESETS["gemma3-270m"]
    path = preset.path()
    size = path.stat().st_size
    marker = path.with_name(path.name + ".sha256")
    assert marker.read_text().split()[0] == GEMMA_SHA
    # 10: another GGUF put in the model's place, its checksum file touched: checked, and rebuilt
    smol = models.resolve("smollm2-135m").path
    path.unlink()
    sh.place(smol, path)
    os.utime(marker)
    assert preset.path() == path and path.stat().st_size == size
    with path.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == GEMMA_SHA
    # 8: one extra byte (not UTF-8) in the checksum file: no traceback, the file is hashed again
    marker.write_bytes(marker.read_bytes() + b"\xff")
    assert preset.path() == path
    assert marker.read_bytes().endswith(b"\n") and b"\xff" not in marker.read_bytes()  # rewritten
    result = command("tea", "--seed", "1", "--lines", "1", env={**NEUTRAL, "EMOGRAM_CACHE": str(tmp_path)})
    assert result.returncode == 0 and result.stdout.strip(), result.stderr[-2000:]
    # 10: a directory others may write to: never trusted on its checksum file's word, and said why
    capsys.readouterr()
    tmp_path.chmod(0o777)
    try:
        assert preset.path() == path
        assert preset.path() == path
    finally:
        tmp_path.chmod(0o700)
    said = capsys.readouterr().err
    assert said.count("is hashed again on every run") == 1 and "others may write to it (mode 0777)" in said


def test_a_cache_directory_others_may_write_to_says_once_why_it_is_off(tmp_path, capsys):
    folder = tmp_path / "prompts"
    folder.mkdir(mode=0o700)
    cache = PromptCache(folder, b"identity")
    cache.store([1, 2, 3], b"state")
    assert cache.load([1, 2, 3]) == b"state"
    assert capsys.readouterr().err == ""  # a private directory: nothing to say
    folder.chmod(0o777)
    try:
        assert cache.load([1, 2, 3]) is None and cache.load([1, 2, 3]) is None
        cache.store([4], b"more")
    finally:
        folder.chmod(0o700)
    said = capsys.readouterr().err
    assert said.count("emogram: note:") == 1 and f"the cache {folder} is off" in said
    assert "others may write to it (mode 0777)" in said


# --- 9 and the pipe: paths no reader can use ------------------------------------------------------

def test_a_nul_byte_in_an_adapter_or_model_path_is_a_model_error():
    for kwargs in ({"adapter": "a\x00b.gguf"}, {"model": "a\x00b.gguf"}, {"adapter": Path("x\x00.gguf")}):
        with pytest.raises(ModelError, match="NUL byte"):
            emogram.explain("tea", **kwargs)


def test_an_adapter_through_a_pipe_is_told_to_be_a_regular_file(tmp_path):
    shipped = models.PRESETS["gemma3-270m"].adapter_path()
    read, write = os.pipe()
    try:
        os.write(write, shipped.read_bytes()[:4096])  # a valid adapter's start: not the point
        with pytest.raises(ModelError, match="is not a regular file .* save it to a file"):
            emogram.explain("tea", adapter=f"/dev/fd/{read}")
    finally:
        os.close(read)
        os.close(write)
    result = subprocess.run(f'"{sys.executable}" -m emogram tea --adapter <(cat "{shipped}")', shell=True,
                            executable="/bin/bash", capture_output=True, text=True, env=NEUTRAL, timeout=300,
                            cwd=tmp_path)
    assert "is not a regular file" in one_line_error(result)
