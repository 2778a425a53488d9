"""Where the stores that ``stores.py`` reads keep their models (ollama, LM Studio, the Hugging Face
hub cache), the entry every store yields (``Found``), and the errors they share. Read only."""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError, ModelNotFoundError
from ..files import load_json, read_regular

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
        home = _path(os.environ["LMSTUDIO_HOME"])
    else:
        pointer = home_dir / ".lmstudio-home-pointer"
        try:  # bounded, regular files only: the two files below are another program's to write
            line = read_regular(pointer, SMALL_FILE, "LM Studio's home pointer", ModelError).decode(
                "utf-8").strip().splitlines()
            home = _path(line[0]) if line else None
        except (ModelError, UnicodeDecodeError):
            pass
    if home is None:  # (also when $LMSTUDIO_HOME names no folder a path can have)
        cache = home_dir / ".cache" / "lm-studio"
        home = cache if cache.is_dir() else home_dir / ".lmstudio"
    try:
        settings = load_json(read_regular(home / "settings.json", SMALL_FILE, "LM Studio's settings",
                                          ModelError), "LM Studio's settings", ModelError)
        folder = settings.get("downloadsFolder") if isinstance(settings, dict) else None
        if isinstance(folder, str) and folder.strip() and _path(folder) is not None:
            return _path(folder)  # type: ignore[return-value]
    except ModelError:
        pass
    return home / "models"


SMALL_FILE = 1 << 20  # bytes: LM Studio's pointer and settings, a hub cache's ref


def _path(text: str) -> Path | None:
    """A folder named in a file or a variable, ``~`` expanded; None for a name no folder can have."""
    if "\0" in text:
        return None
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~nobody/..."
        return Path(text)


MAX_DEPTH = 8  # folders below a repository's folder that are searched for .gguf files


def gguf_files(folder: Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """The ``.gguf`` files under ``folder`` (links to files included, links to folders not followed,
    as ``Path.rglob`` does), at most ``max_depth`` folders down, sorted. Walked without recursion,
    so a hostile tree thousands of folders deep is cut off, never a ``RecursionError``."""
    found, stack = [], [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as entries:
                listed = list(entries)
        except (OSError, ValueError):
            continue
        for entry in listed:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < max_depth:
                        stack.append((Path(entry.path), depth + 1))
                elif entry.name.endswith(".gguf") and not entry.is_dir():
                    found.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found)


def inside(base: Path, path: Path) -> bool:
    """Does ``path``, links followed, lie inside ``base`` (links followed too)? The rule that keeps a
    model name, or a name a store's file gives, from leading out of its store."""
    try:
        real_base, real = os.path.realpath(base), os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return real == real_base or real.startswith(real_base.rstrip(os.sep) + os.sep)


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
    """A file's first four bytes (b"" when it cannot be read, or is not a regular file)."""
    try:
        return read_regular(path, 4, "model file", ModelError, head=True)
    except ModelError:
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

