"""Models that ollama, LM Studio and the Hugging Face hub cache hold (``backend/stores.py``), on real
files: stores built in a temporary folder (``store_helpers.py``) whose GGUF entries are the
installed Gemma and SmolLM2 files. Each resolves and answers through each store; SmolLM2 takes the
chat-template path, Gemma the completion path; every broken entry gives its typed error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import store_helpers as sh
from emogram import Explainer, ModelError, ModelNotFoundError, ModelStoreError, parse
from emogram.backend import models, stores
from emogram.errors import BlobMissingError, DigestMismatchError, NotGGUFError
from emogram.knowledge.prompts import build_gloss
from emogram.language.unicode import DEFAULT_EMOJI_VERSION, lookup

REPO = Path(__file__).resolve().parents[2]
TOPIC = "how tides work"

SPECS = {  # store -> (Gemma's spec, SmolLM2's spec), as a user would type them
    "ollama": ("ollama:gemma3:270m", "ollama:smollm2:135m"),
    "lmstudio": ("lmstudio:lmstudio-community/gemma-3-270m-GGUF",
                 "lmstudio:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"),
    "hf-cache": ("hf-cache:unsloth/gemma-3-270m-GGUF",
                 "hf-cache:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:*q4_1*"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The three stores, and the environment pointing emogram at them (for this module)."""
    gemma, smol = models.resolve("gemma3-270m").path, models.resolve("smollm2-135m").path
    s = sh.build(tmp_path_factory.mktemp("stores"), gemma, smol)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in s.env.items():
            mp.setenv(key, value)
        yield s


@pytest.fixture
def ollama(built, tmp_path, monkeypatch):
    """An empty ollama store of the test's own, for planting broken entries."""
    root = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    return root


def _same_file(a: Path, b: Path) -> bool:
    return os.path.samefile(a, b)


# --- resolving ---------------------------------------------------------------------------------

def test_ollama_names_resolve_through_the_manifest_to_the_blob(built):
    source = models.resolve("ollama:gemma3:270m")
    digest = built.digests[built.gemma.name]
    assert source.path == built.ollama / "blobs" / digest.replace(":", "-")
    assert _same_file(source.path, built.gemma) and source.spec == "ollama:gemma3:270m"
    # the same manifest under ollama's other spellings: its defaults written out, another case
    for spec in ("ollama:library/gemma3:270m", "ollama:registry.ollama.ai/library/gemma3:270m",
                 "ollama:Gemma3:270M"):
        assert models.resolve(spec).path == source.path, spec


def test_lmstudio_and_hub_cache_resolve_in_place(built):
    lms = models.resolve(SPECS["lmstudio"][0]).path
    assert lms == (built.lmstudio_home / "models" / "lmstudio-community" / "gemma-3-270m-GGUF" /
                   "gemma-3-270m-Q4_K_M.gguf")
    assert models.resolve("lmstudio:lmstudio-community/gemma-3-270m-GGUF/*Q4_K_M*").path == lms
    hub = models.resolve(SPECS["hf-cache"][1]).path
    assert hub.is_symlink() and "snapshots" in hub.parts  # passed on unresolved, as llama.cpp wants
    assert _same_file(hub, built.smol)


def test_nothing_is_written_to_a_store(built):
    before = {p: p.stat().st_mtime_ns for p in built.root.rglob("*")}
    for gemma, smol in SPECS.values():
        models.resolve(gemma), models.resolve(smol)
    assert {p: p.stat().st_mtime_ns for p in built.root.rglob("*")} == before


# --- answering through each store ----------------------------------------------------------------

@pytest.mark.parametrize("store", list(SPECS))
def test_each_store_answers_smollm2_by_its_chat_template_and_gemma_by_completion(built, store):
    for spec, style in zip(SPECS[store], ("completion", "chat")):
        with Explainer(spec) as ex:
            assert _same_file(ex.model.path, built.gemma if style == "completion" else built.smol)
            assert ex.adapter_name == ""  # emogram's adapter belongs to its preset, not to a file
            assert build_gloss(ex.model, TOPIC).style == style
            assert bool(ex.model.chat_template) == (style == "chat")
            e = ex.explain(TOPIC, seed=1)
        assert parse(str(e)).tree == e.tree and e.plan
        assert all(lookup(emoji.char).version <= DEFAULT_EMOJI_VERSION
                   for line in e.tree.lines for group in line.groups for emoji in group.emoji)


def test_the_command_line_takes_a_store_model(built):
    out = subprocess.run([sys.executable, "-m", "emogram", TOPIC, "--model", "ollama:smollm2:135m",
                          "--seed", "2", "-f", "json"], cwd=REPO, capture_output=True, text=True,
                         timeout=300, env={**os.environ, **built.env})
    assert out.returncode == 0, out.stderr
    parse(json.loads(out.stdout)["text"])


# --- typed errors ------------------------------------------------------------------------------

def test_an_unknown_name_lists_the_nearest_names_found(built):
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve("ollama:gemma3")  # no tag: ollama's "latest", which was never pulled
    assert info.value.nearest[0] == "ollama:gemma3:270m" and "ollama:gemma3:270m" in str(info.value)
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve("ollama:smolm2:135m")
    assert info.value.nearest[0] == "ollama:smollm2:135m"
    with pytest.raises(ModelNotFoundError, match="nearest found: lmstudio:bartowski/SmolLM2"):
        models.resolve("lmstudio:bartowski/SmolLM2-GGUF")
    with pytest.raises(ModelNotFoundError, match="unsloth/gemma-3-270m-GGUF"):
        models.resolve("hf-cache:unsloth/gemma-3-270m-GGUF:*Q8_0*")
    with pytest.raises(ModelNotFoundError):  # also a ModelError and a LookupError
        models.resolve("ollama:qwen2.5:7b")
    assert issubclass(ModelNotFoundError, ModelError) and issubclass(ModelNotFoundError, LookupError)


def test_an_empty_store_says_where_it_looked(ollama):
    with pytest.raises(ModelNotFoundError, match=f"no model found in {ollama}.*OLLAMA_MODELS"):
        models.resolve("ollama:qwen2.5:7b")


def test_malformed_specs_are_refused(built):
    for spec in ("ollama:", "ollama:gemma3:", "lmstudio:only-a-publisher", "hf-cache:no-owner"):
        with pytest.raises(ModelError):
            models.resolve(spec)


def test_a_manifest_whose_blob_is_missing_says_so(built, ollama):
    sh.manifest(ollama, "gone:1b", [{"mediaType": sh.MODEL_LAYER, "digest": "sha256:" + "ab" * 32,
                                     "size": 1234}])
    with pytest.raises(BlobMissingError, match=r"manifest .* is there but the blob .* missing.*ollama pull gone:1b"):
        models.resolve("ollama:gone:1b")


def test_a_layer_that_is_not_gguf_is_refused(built, ollama):
    fake = ollama.parent / "model.safetensors"
    fake.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(64))
    sh.ollama_model(ollama, "tensors:1b", fake, sh.sha256(fake))
    with pytest.raises(NotGGUFError, match="not a GGUF file"):
        models.resolve("ollama:tensors:1b")
    # a model stored as per-tensor layers (ollama's newer engine) has no GGUF layer at all
    sh.manifest(ollama, "mlx:1b", [{"mediaType": "application/vnd.ollama.image.tensor",
                                    "digest": sh.blob(ollama, b"\0" * 16), "size": 16}])
    with pytest.raises(NotGGUFError, match="no GGUF layer"):
        models.resolve("ollama:mlx:1b")
    # a config that says another format
    sh.ollama_model(ollama, "other:1b", built.smol, built.digests[built.smol.name], fmt="safetensors")
    with pytest.raises(NotGGUFError, match="'safetensors'"):
        models.resolve("ollama:other:1b")


def test_a_wrong_digest_fails_with_the_typed_error(built, ollama):
    """The blob file is named by a digest its bytes do not have (same size): the sha256 check
    catches it, before llama.cpp opens the file, every time (a failure is never remembered)."""
    wrong = "sha256:" + "0" * 64
    sh.ollama_model(ollama, "damaged:270m", built.gemma, wrong)
    for _ in range(2):
        with pytest.raises(DigestMismatchError, match=f"says {wrong}: the file is damaged"):
            models.resolve("ollama:damaged:270m")
    with pytest.raises(DigestMismatchError):
        Explainer("ollama:damaged:270m")
    # a blob of the wrong size fails without hashing
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "damaged" / "270m"
    body = json.loads(manifest.read_text())
    body["layers"][0]["size"] += 1
    manifest.write_text(json.dumps(body))
    with pytest.raises(DigestMismatchError, match="bytes but its manifest says"):
        models.resolve("ollama:damaged:270m")


def test_a_digest_check_is_remembered_per_file(built, tmp_path):
    found = stores.find("ollama:smollm2:135m")
    stores.verify_digest(found, tmp_path)
    assert len(list(tmp_path.glob("*.ok"))) == 1
    stores.verify_digest(found, tmp_path)  # remembered: no second hash, no second file
    assert len(list(tmp_path.glob("*.ok"))) == 1


def test_a_split_gguf_is_listed_once_and_refused(built, tmp_path, monkeypatch):
    home = tmp_path / "lms"
    monkeypatch.setenv("LMSTUDIO_HOME", str(home))
    repo = home / "models" / "someone" / "Big-GGUF"
    sh.place(built.smol, repo / "big-00001-of-00003.gguf")
    sh.place(built.smol, repo / "big-00002-of-00003.gguf")
    found = stores.discover(["lmstudio"])
    assert [f.name for f in found] == ["someone/Big-GGUF/big-00001-of-00003.gguf"]
    with pytest.raises(ModelStoreError, match="split GGUF in 3 files; files 3 of 3 are missing.*merge"):
        models.resolve("lmstudio:someone/Big-GGUF")


def test_a_hub_cache_link_to_a_missing_blob_says_so(built, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    sh.hf_repo(cache, "someone/Half-GGUF", {"half.gguf": tmp_path / "never-downloaded.gguf"})
    with pytest.raises(BlobMissingError, match="not there"):
        models.resolve("hf-cache:someone/Half-GGUF")


def test_several_matching_files_ask_for_one(built, tmp_path, monkeypatch):
    home = tmp_path / "lms"
    monkeypatch.setenv("LMSTUDIO_HOME", str(home))
    for quant in ("Q4_K_M", "Q8_0"):
        sh.place(built.smol, home / "models" / "someone" / "Two-GGUF" / f"two-{quant}.gguf")
    with pytest.raises(ModelNotFoundError, match="2 GGUF files .* name one") as info:
        models.resolve("lmstudio:someone/Two-GGUF")
    assert len(info.value.nearest) == 2
    assert models.resolve("lmstudio:someone/Two-GGUF/*q8_0*").path.name == "two-Q8_0.gguf"


def test_lmstudio_home_comes_from_the_pointer_file_and_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("LMSTUDIO_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert stores.lmstudio_models_dir() == tmp_path / ".lmstudio" / "models"
    (tmp_path / ".cache" / "lm-studio").mkdir(parents=True)
    assert stores.lmstudio_models_dir() == tmp_path / ".cache" / "lm-studio" / "models"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".lmstudio-home-pointer").write_text(f"{tmp_path / 'elsewhere'}\n")
    assert stores.lmstudio_models_dir() == tmp_path / "elsewhere" / "models"
    (tmp_path / "elsewhere" / "settings.json").write_text(json.dumps({"downloadsFolder": "/data/llms"}))
    assert stores.lmstudio_models_dir() == Path("/data/llms")


def test_store_folders_follow_their_programs_variables(tmp_path, monkeypatch):
    for var in ("OLLAMA_MODELS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert stores.ollama_roots()[0] == tmp_path / ".ollama" / "models"
    assert stores.hf_cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert stores.hf_cache_dir() == tmp_path / "hfhome" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert stores.hf_cache_dir() == tmp_path / "hub"


@pytest.mark.parametrize("name, parts", [
    ("gemma3", ("registry.ollama.ai", "library", "gemma3", "latest")),
    ("qwen2.5:7b", ("registry.ollama.ai", "library", "qwen2.5", "7b")),
    ("user/model:tag", ("registry.ollama.ai", "user", "model", "tag")),
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
     ("hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")),
    ("localhost:5000/ns/m", ("localhost:5000", "ns", "m", "latest")),
])
def test_ollama_names_are_cut_as_ollama_cuts_them(name, parts):
    """The cases of ollama's ``types/model/name_test.go``."""
    assert stores.parse_ollama_name(name) == parts


# --- emogram models ------------------------------------------------------------------------------

def _fake_architecture(path: Path) -> Path:
    """A small GGUF of an architecture no llama.cpp has, whose chat template thinks."""
    import gguf
    import numpy as np
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "emogramtest")
    w.add_name("fake")
    w.add_chat_template("{% for m in messages %}<think>{{ m.content }}</think>{% endfor %}")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_emogram_models_lists_each_store_with_its_columns(built, tmp_path):
    home = tmp_path / "lms"
    for rel in ("lmstudio-community/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf",
                "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"):
        sh.place(built.lmstudio_home / "models" / rel, home / "models" / rel)
    _fake_architecture(home / "models" / "someone" / "Odd-GGUF" / "odd.gguf")
    sh.place(built.smol, home / "models" / "someone" / "Big-GGUF" / "big-00001-of-00002.gguf")
    env = {**os.environ, **built.env, "LMSTUDIO_HOME": str(home)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "emogram", "models", *a], cwd=REPO,  # noqa: E731
                                    capture_output=True, text=True, timeout=300, env=env)
    table = run()
    assert table.returncode == 0, table.stderr
    assert "STORE" in table.stdout and "ARCH" in table.stdout and "REASONS" in table.stdout
    rows = {json.loads(line)["model"]: json.loads(line) for line in run("--json").stdout.splitlines()}
    assert set(rows) == {"ollama:gemma3:270m", "ollama:smollm2:135m",
                         "lmstudio:lmstudio-community/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf",
                         "lmstudio:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf",
                         "lmstudio:someone/Odd-GGUF/odd.gguf",
                         "lmstudio:someone/Big-GGUF/big-00001-of-00002.gguf",
                         "hf-cache:unsloth/gemma-3-270m-GGUF:gemma-3-270m-Q4_K_M.gguf",
                         "hf-cache:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:smollm2-135m-instruct-q4_1.gguf"}
    gemma, smol = rows["ollama:gemma3:270m"], rows["ollama:smollm2:135m"]
    assert (gemma["store"], gemma["architecture"], gemma["chat_template"], gemma["reasons"],
            gemma["runnable"], gemma["size"]) == ("ollama", "gemma3", False, False, True,
                                                  built.gemma.stat().st_size)
    assert (smol["architecture"], smol["chat_template"], smol["runnable"]) == ("llama", True, True)
    odd = rows["lmstudio:someone/Odd-GGUF/odd.gguf"]
    assert (odd["architecture"], odd["chat_template"], odd["reasons"], odd["runnable"]) == (
        "emogramtest", True, True, False)
    assert "architecture 'emogramtest' is not in this llama.cpp build" in odd["problem"]
    big = rows["lmstudio:someone/Big-GGUF/big-00001-of-00002.gguf"]
    assert not big["runnable"] and "split GGUF" in big["problem"]
    for line in table.stdout.splitlines():
        if "odd.gguf" in line:
            assert "emogramtest" in line and "no: architecture" in line
