"""Model stores built in a temporary folder, as ollama, LM Studio and the Hugging Face hub cache lay
them out, whose GGUF entries are the installed Gemma and SmolLM2 files (hard links where the
filesystem allows, else copies: a path of their own, so a model loaded through a store is not the
session's shared preset model).

``build(root)`` returns a ``Stores`` with the environment that points emogram at them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

MODEL_LAYER = "application/vnd.ollama.image.model"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Stores:
    root: Path
    ollama: Path
    lmstudio_home: Path
    hf_cache: Path
    gemma: Path  # the installed files
    smol: Path
    digests: dict[str, str] = field(default_factory=dict)  # file name -> "sha256:HEX"

    @property
    def env(self) -> dict[str, str]:
        return {"OLLAMA_MODELS": str(self.ollama), "LMSTUDIO_HOME": str(self.lmstudio_home),
                "HF_HUB_CACHE": str(self.hf_cache)}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def place(source: Path, target: Path) -> Path:
    """``target`` holds ``source``'s bytes: a hard link, or a copy across filesystems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def blob(ollama: Path, data: bytes) -> str:
    """A small blob (config, template) written as ollama writes it; its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = ollama / "blobs" / digest.replace(":", "-")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def manifest(ollama: Path, name: str, layers: list[dict], *, host: str = "registry.ollama.ai",
             namespace: str = "library", fmt: str = "gguf") -> Path:
    """``manifests/HOST/NAMESPACE/MODEL/TAG`` for ``MODEL:TAG``, with a config blob."""
    model, _, tag = name.partition(":")
    config = json.dumps({"model_format": fmt, "model_family": "test", "file_type": "Q4"}).encode()
    body = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": blob(ollama, config), "size": len(config)},
            "layers": layers}
    path = ollama / "manifests" / host / namespace / model / (tag or "latest")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def ollama_model(ollama: Path, name: str, gguf: Path, digest: str, **kw) -> Path:
    """A pulled model: its weights as ``blobs/sha256-HEX`` and a manifest naming them."""
    place(gguf, ollama / "blobs" / digest.replace(":", "-"))
    template = b"{{ .Prompt }}"
    layers = [{"mediaType": MODEL_LAYER, "digest": digest, "size": gguf.stat().st_size},
              {"mediaType": "application/vnd.ollama.image.template", "digest": blob(ollama, template),
               "size": len(template)}]
    return manifest(ollama, name, layers, **kw)


def hf_repo(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """``models--OWNER--REPO`` with ``refs/main``, ``blobs/SHA256`` and symlinked snapshot files."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    for rel, source in files.items():
        hexdigest = sha256(source).split(":")[1] if source.exists() else "f" * 64
        target = repo / "blobs" / hexdigest
        if source.exists() and not target.exists():
            place(source, target)
        link = repo / "snapshots" / COMMIT / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))
    return repo


def build(root: Path, gemma: Path, smol: Path) -> Stores:
    s = Stores(root, root / "ollama" / "models", root / "lmstudio", root / "hf" / "hub", gemma, smol)
    s.digests = {gemma.name: sha256(gemma), smol.name: sha256(smol)}
    # ollama: two pulled models
    ollama_model(s.ollama, "gemma3:270m", gemma, s.digests[gemma.name])
    ollama_model(s.ollama, "smollm2:135m", smol, s.digests[smol.name])
    # LM Studio: PUBLISHER/REPO/FILE, a projector beside one of them (never listed)
    models = s.lmstudio_home / "models"
    place(gemma, models / "lmstudio-community" / "gemma-3-270m-GGUF" / "gemma-3-270m-Q4_K_M.gguf")
    place(smol, models / "bartowski" / "SmolLM2-135M-Instruct-GGUF" / "SmolLM2-135M-Instruct-Q4_1.gguf")
    (models / "bartowski" / "SmolLM2-135M-Instruct-GGUF" / "mmproj-f16.gguf").write_bytes(b"GGUF")
    # the hub cache: symlinks in snapshots/COMMIT into blobs/
    hf_repo(s.hf_cache, "unsloth/gemma-3-270m-GGUF", {"gemma-3-270m-Q4_K_M.gguf": gemma})
    hf_repo(s.hf_cache, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", {"smollm2-135m-instruct-q4_1.gguf": smol})
    return s
