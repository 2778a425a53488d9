"""Where the stores that ``stores.py`` reads keep their models (ollama, LM Studio, the Hugging Face
hub cache), the entry every store yields (``Found``), and the errors they share. Read only."""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError, ModelNotFoundError

STORES = ("ollama", "lmstudio", "hf-cache")
SPEC_FORMS = {"ollama": "ollama:NAME[:TAG]", "lmstudio": "lmstudio:PUBLISHER/REPO[/FILE]",
              "hf-cache": "hf-cache:OWNER/REPO[:GLOB]"}
DIGEST = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")


@dataclass(frozen=True)
class Found:
    """One model in a store: its spec, the GGUF file llama.cpp would open, and what is wrong with
    it, if anything (``error``: raised by ``resolve``, shown by ``emogram models``)."""

    store: str
    name: str  # what follows the scheme: "qwen2.5:7b", "lmstudio-community/X-GGUF/x.gguf"
    path: Path
    size: int  # bytes, every file of a split model together
    digest: str | None = None  # "sha256:HEX", what an ollama manifest promises
    error: ModelError | None = field(default=None, compare=False)

    @property
    def spec(self) -> str:
        return f"{self.store}:{self.name}"


def store_of(spec: str) -> str | None:
    """The store a spec names (``"ollama"`` for ``"ollama:gemma3"``), or None."""
    head, sep, _ = spec.partition(":")
    return head if sep and head in STORES else None


# --- where the stores are -----------------------------------------------------------------------

def ollama_roots() -> list[Path]:
    """``$OLLAMA_MODELS`` alone when set; else ``~/.ollama/models`` and, on Linux, the service's."""
    env = os.environ.get("OLLAMA_MODELS")
    if env:
        return [Path(env).expanduser()]
    roots = [Path.home() / ".ollama" / "models"]
    if sys.platform.startswith("linux"):
        roots.append(Path("/usr/share/ollama/.ollama/models"))
    return roots


def lmstudio_models_dir() -> Path:
    """LM Studio's models folder: its home (``$LMSTUDIO_HOME``, the first line of
    ``~/.lmstudio-home-pointer``, ``~/.cache/lm-studio`` where it exists, else ``~/.lmstudio``),
    then ``settings.json``'s ``downloadsFolder`` if it names one, else ``HOME/models``. Read only:
    ``lms`` writes the pointer file; emogram never does."""
    home_dir = Path.home()
    home: Path | None = None
    if os.environ.get("LMSTUDIO_HOME"):
        home = Path(os.environ["LMSTUDIO_HOME"]).expanduser()
    else:
        pointer = home_dir / ".lmstudio-home-pointer"
        try:
            line = pointer.read_text(encoding="utf-8").strip().splitlines()
            home = Path(line[0]).expanduser() if line else None
        except OSError:
            pass
        if home is None:
            cache = home_dir / ".cache" / "lm-studio"
            home = cache if cache.is_dir() else home_dir / ".lmstudio"
    try:
        folder = json.loads((home / "settings.json").read_text(encoding="utf-8")).get("downloadsFolder")
        if isinstance(folder, str) and folder.strip():
            return Path(folder).expanduser()
    except (OSError, ValueError, AttributeError):
        pass
    return home / "models"


def hf_cache_dir() -> Path:
    """The hub cache: ``$HF_HUB_CACHE``, ``$HUGGINGFACE_HUB_CACHE``, ``$HF_HOME/hub``,
    ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub`` (huggingface_hub's order)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def where(store: str) -> list[Path]:
    """The folders a store is read from, for messages and ``emogram models``."""
    return {"ollama": ollama_roots, "lmstudio": lambda: [lmstudio_models_dir()],
            "hf-cache": lambda: [hf_cache_dir()]}[store]()



def broken(store: str, name: str, path: Path, error: ModelError, size: int = 0) -> Found:
    return Found(store, name, path, size, error=error)


def head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(4)
    except OSError:
        return b""


def not_found(store: str, name: str, names: list[str]) -> ModelNotFoundError:
    folders = " or ".join(str(p) for p in where(store))
    if not names:
        return ModelNotFoundError(f"no {store} model {name!r}: no model found in {folders}"
                                  f"{HINT[store]}")
    nearest = difflib.get_close_matches(name, names, n=5, cutoff=0.3) or sorted(names)[:5]
    near = ", ".join(f"{store}:{n}" for n in nearest)
    return ModelNotFoundError(f"no {store} model {name!r} in {folders}; the nearest found: {near} "
                              f"(`emogram models` lists them all)", tuple(f"{store}:{n}" for n in nearest))


HINT = {"ollama": " (set OLLAMA_MODELS if ollama keeps its models elsewhere)",
         "lmstudio": " (set LMSTUDIO_HOME if LM Studio lives elsewhere)",
         "hf-cache": " (set HF_HUB_CACHE or HF_HOME if the cache is elsewhere)"}

