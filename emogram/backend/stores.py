"""GGUF models that other programs already keep on disk, read in place: ollama, LM Studio and the
Hugging Face hub cache. Nothing is copied, nothing in a store is written, and neither a server nor
a network is needed. ``models.resolve`` hands these specs here:

* ``ollama:NAME[:TAG]``: a model ollama pulled (``ollama:qwen2.5:7b``, ``ollama:hf.co/OWNER/REPO:Q4_K_M``);
* ``lmstudio:PUBLISHER/REPO[/FILE]``: a GGUF in LM Studio's models folder (``FILE`` may be a glob);
* ``hf-cache:OWNER/REPO[:GLOB]``: a GGUF in the Hugging Face hub cache (``hf:`` downloads; this does not).

ollama's store is read by ``ollama_store.py`` (its manifest format, cited from ollama's source); where
each store lives is ``store_places.py``.

A blob is checked against its manifest: its size always, its sha256 once per file (remembered in
emogram's cache, never in the store). LM Studio's folder follows ``lmstudio-ai/lmstudio-js``
``findLMStudioHome.ts`` and ``lmstudio-ai/lms`` ``importCmd.ts``; the hub cache follows
``huggingface/huggingface_hub`` ``constants.py`` and the Hub's ``docs/hub/local-cache.md``.

A split GGUF (``NAME-00001-of-00003.gguf``, llama.cpp's ``llama_split_path``) is listed once, by its
first file, and refused: emogram reads its output matrix from the one file it loads.
The backend knows no emoji: this module only finds files and reads their metadata.
"""


from __future__ import annotations

import fnmatch
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import BlobMissingError, DigestMismatchError, ModelError, ModelNotFoundError, ModelStoreError
from ..files import read_regular
from . import ollama_store
from .ollama_store import parse_ollama_name  # noqa: F401  (part of this module's surface)
from .store_places import (SMALL_FILE, SPEC_FORMS, STORES, Found, broken, gguf_files,  # noqa: F401
                           hf_cache_dir, inside, lmstudio_models_dir, not_found, ollama_roots, store_of,
                           where)

_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
VERIFIED_KEEP = 64  # digest checks remembered (one small file each)


# --- GGUF files in folders: LM Studio, the hub cache ----------------------------------------------

def _gguf_entries(store: str, files: Iterable[tuple[str, Path]]) -> Iterator[Found]:
    """(name, path) pairs -> entries, projectors (``mmproj``) left out and a split model listed
    once, by its first file, as refused."""
    splits: dict[tuple[Path, str, int], dict[int, tuple[str, Path]]] = {}
    for name, path in files:
        if path.name.lower().startswith("mmproj"):
            continue
        match = _SPLIT.match(path.name)
        if match is None:
            if not path.exists():  # a hub-cache link whose download never finished
                yield broken(store, name, path, BlobMissingError(
                    f"{store}:{name} is a link to a file that is not there ({path}); "
                    "download it again"))
            else:
                yield Found(store, name, path, path.stat().st_size)
            continue
        key = (path.parent, match["prefix"], int(match["count"]))
        splits.setdefault(key, {})[int(match["no"])] = (name, path)
    for (folder, prefix, count), shards in splits.items():
        first = f"{prefix}-{1:05d}-of-{count:05d}.gguf"
        if 1 in shards:
            name, path = shards[1]
        else:  # named after the first file all the same
            some_name, some_path = next(iter(shards.values()))
            name, path = some_name[:-len(some_path.name)] + first, folder / first
        size = sum(p.stat().st_size for _, p in shards.values() if p.exists())
        missing = [k for k in range(1, count + 1) if k not in shards or not shards[k][1].exists()]
        lacks = f"; files {', '.join(map(str, missing))} of {count} are missing" if missing else ""
        yield broken(store, name, path, ModelStoreError(
            f"{store}:{name} is a split GGUF in {count} files{lacks}; emogram runs a single file: "
            f"join them with `llama-gguf-split --merge {path.name} {prefix}.gguf` and pass that path"),
            size)


def _folders(root: Path, pattern: str) -> list[Path]:
    try:
        return sorted(p for p in root.glob(pattern) if p.is_dir())
    except (OSError, ValueError):
        return []


def _lmstudio_files() -> Iterator[tuple[str, Path]]:
    root = lmstudio_models_dir()
    for repo in _folders(root, "*/*"):
        for path in gguf_files(repo):
            yield path.relative_to(root).as_posix(), path


_COMMIT = re.compile(r"[0-9A-Za-z_][0-9A-Za-z_.\-]{0,199}\Z")  # one folder's name: never "..", never "a/b"


def _hf_snapshot(repo_dir: Path) -> Path | None:
    """``refs/main``'s snapshot, else the newest snapshot (llama.cpp's ``get_cached_ref`` also
    prefers ``refs/main``). The ref is read bounded, and must name one folder of ``snapshots/``."""
    try:
        commit = read_regular(repo_dir / "refs" / "main", SMALL_FILE, "hub cache ref", ModelError)
        name = commit.decode("ascii").strip()
        if _COMMIT.match(name) and (repo_dir / "snapshots" / name).is_dir() \
                and inside(repo_dir / "snapshots", repo_dir / "snapshots" / name):
            return repo_dir / "snapshots" / name
    except (ModelError, UnicodeDecodeError, OSError):
        pass
    snapshots = [p for p in _folders(repo_dir / "snapshots", "*") if inside(repo_dir / "snapshots", p)]

    def age(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0
    return max(snapshots, key=age, default=None)


def _hf_files() -> Iterator[tuple[str, Path]]:
    root = hf_cache_dir()
    for repo_dir in _folders(root, "models--*"):
        repo_id = repo_dir.name[len("models--"):].replace("--", "/")
        snapshot = _hf_snapshot(repo_dir)
        if snapshot is None:
            continue
        # Symlinks into blobs/ (or copies, on Windows) are passed on unresolved: llama.cpp finds
        # a split model's other files by name, beside the first.
        for path in gguf_files(snapshot):
            yield f"{repo_id}:{path.relative_to(snapshot).as_posix()}", path


def _folder_find(store: str, name: str) -> Found:
    if store == "lmstudio":
        parts = name.strip("/").split("/")
        if len(parts) < 2 or not all(parts):
            raise ModelError(f"LM Studio models look like {SPEC_FORMS['lmstudio']}, not lmstudio:{name}")
        repo, pattern = "/".join(parts[:2]), "/".join(parts[2:]) or "*.gguf"
        entries = list(_gguf_entries(store, _lmstudio_files()))
        mine = [f for f in entries if f.name.casefold().startswith(repo.casefold() + "/")]
        rel = lambda f: f.name[len(repo) + 1:]  # noqa: E731
    else:
        repo, _, pattern = name.partition(":")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise ModelError(f"hub-cache models look like {SPEC_FORMS['hf-cache']}, not hf-cache:{name}")
        pattern = pattern or "*.gguf"
        entries = list(_gguf_entries(store, _hf_files()))
        mine = [f for f in entries if f.name.partition(":")[0].casefold() == repo.casefold()]
        rel = lambda f: f.name.partition(":")[2]  # noqa: E731
    matches = [f for f in mine if fnmatch.fnmatch(rel(f).lower(), pattern.lower())
               or fnmatch.fnmatch(rel(f).rsplit("/", 1)[-1].lower(), pattern.lower())]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = [f.spec for f in matches]
        raise ModelNotFoundError(
            f"{len(matches)} GGUF files of {repo} in {store} match {pattern!r}: {', '.join(names[:8])}; "
            "name one of them", tuple(names))
    raise not_found(store, name, [f.name for f in (mine or entries)])



def discover(stores: Iterable[str] = STORES) -> list[Found]:
    """Every model found in the given stores, broken ones included (with their ``error``)."""
    out: list[Found] = []
    for store in stores:
        if store == "ollama":
            out += ollama_store.all_entries()
        elif store == "lmstudio":
            out += _gguf_entries(store, _lmstudio_files())
        elif store == "hf-cache":
            out += _gguf_entries(store, _hf_files())
        else:
            raise ModelError(f"unknown store {store!r}; the stores are {', '.join(STORES)}")
    return out


def find(spec: str) -> Found:
    """The entry a spec names, unchecked (its ``error`` may be set); ``ModelNotFoundError`` if none."""
    store = store_of(spec)
    if store is None:
        raise ModelError(f"{spec!r} names no store; use {', '.join(SPEC_FORMS.values())}")
    name = spec[len(store) + 1:].strip()
    if not name:
        raise ModelError(f"give a model name after {store}:, as in {SPEC_FORMS[store]}")
    return ollama_store.find(name) if store == "ollama" else _folder_find(store, name)


def resolve(spec: str, *, verified: Path | None = None, progress: bool = False) -> Found:
    """The GGUF file a store spec names, checked: a typed ``ModelError`` for an unknown name
    (``ModelNotFoundError``, with the nearest names), a manifest without its blob
    (``BlobMissingError``), a layer that is not GGUF (``NotGGUFError``), a blob whose size or
    sha256 differs from its manifest (``DigestMismatchError``) and a split GGUF
    (``ModelStoreError``). The sha256 is checked once per file; ``verified`` is the folder that
    remembers it (None: check every time)."""
    found = find(spec)
    if found.error is not None:
        raise found.error
    if found.digest is not None:
        verify_digest(found, verified, progress=progress)
    return found


def verify_digest(found: Found, verified: Path | None = None, *, progress: bool = False) -> None:
    """Hash the file and compare with ``found.digest``; a match is remembered under ``verified``
    (keyed by the file's path, size, modification time and the digest)."""
    assert found.digest is not None
    st = found.path.stat()
    key = hashlib.sha256(f"{found.path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{found.digest}"
                         .encode()).hexdigest()[:40]
    # a remembered check counts only in a directory no one else may write to (the caches' rule)
    marker = verified / f"{key}.ok" if verified is not None and _private(verified) else None
    if marker is not None and marker.is_file():
        return
    digest, done = hashlib.sha256(), 0
    show = progress and sys.stderr.isatty()
    with found.path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
            done += len(block)
            if show:
                sys.stderr.write(f"\rchecking the sha256 of {found.spec} (once): "
                                 f"{100 * done // max(st.st_size, 1):3d}%")
                sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
    got = "sha256:" + digest.hexdigest()
    if got != found.digest:
        raise DigestMismatchError(f"{found.spec}: the blob {found.path} has {got}, but its manifest "
                                  f"says {found.digest}: the file is damaged; pull it again with: "
                                  f"ollama pull {found.name}")
    if marker is not None:
        try:
            marker.write_text(f"{found.digest} {found.path}\n", encoding="utf-8")
            olds = sorted(marker.parent.glob("*.ok"), key=lambda p: p.stat().st_mtime)
            for old in olds[:-VERIFIED_KEEP]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # an unwritable cache only means the check runs again next time


def _private(folder: Path) -> bool:
    from ..files import directory_problem, note_once
    problem = directory_problem(folder, create=True)
    if problem is not None:
        note_once(f"sha256 checks are not remembered in {folder}: it {problem}")
    return problem is None


# --- what a model is, for ``emogram models`` ------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What ``emogram models`` shows of a found model."""

    found: Found
    architecture: str = ""
    chat_template: bool = False
    reasons: bool = False  # "<think>" in its chat template
    problem: str = ""  # why it cannot run here; "" when it can

    @property
    def runnable(self) -> bool:
        return not self.problem


def facts(found: Found, *, probe: bool = True) -> Facts:
    """Read a found model's metadata (architecture, chat template) without loading its weights;
    with ``probe``, ask this llama.cpp build to read its architecture and vocabulary too."""
    if found.error is not None and (type(found.error) is not ModelStoreError or not found.path.is_file()):
        return Facts(found, problem=str(found.error))  # only a split model's first file is read
    from .gguf import read_table
    try:
        meta = read_table(found.path).metadata
    except ModelError as exc:
        return Facts(found, problem=str(found.error or exc))
    arch = str(meta.get("general.architecture", ""))
    template = meta.get("tokenizer.chat_template")
    has_template = isinstance(template, str) and bool(template.strip())
    reasons = has_template and "<think>" in template  # type: ignore[operator]
    problem = str(found.error) if found.error is not None else ""
    if not problem and probe:
        problem = unsupported(found.path) or ""
    return Facts(found, arch, has_template, reasons, problem)


def unsupported(path: Path) -> str | None:
    """Why this llama.cpp build cannot read the model (an architecture it lacks, a key it needs),
    or None: llama.cpp itself loads the architecture, hyperparameters and vocabulary, no weights."""
    from . import library, logs
    from .library import C
    library.init_backend()
    params = C.llama_model_default_params()
    params.vocab_only = True
    logs.clear()
    model = C.llama_model_load_from_file(str(path).encode("utf-8"), params)
    if model:
        C.llama_model_free(model)
        return None
    said = logs.recent(12)
    arch = re.search(r"unknown model architecture: '([^']*)'", said)
    if arch:
        return f"architecture {arch[1]!r} is not in this llama.cpp build (llama-cpp-python {library.VERSION})"
    lines = [line.strip() for line in said.splitlines() if "error" in line.lower()] or said.splitlines()
    return f"llama.cpp cannot read it: {lines[-1] if lines else 'no reason given'}"
