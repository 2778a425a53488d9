"""Arrays that are the same on every run for a given model file (and grammar), kept on disk, so a
one-shot command does not rebuild them: the vocabulary's pieces, control and end-of-generation
tokens (``llama.Model``), the tokens a grammar's answers may use (``decoding.engine``: the
pre-filter) and the word tables of glossed answers.

The files live beside the prompt cache's, under the same rules (``prompt_cache.py``): a private
directory (refused when another user owns it or others may write to it), names from a hash of
everything the arrays depend on (the model file's path, size and modification time,
llama-cpp-python's version, the source of the code that computes them, the grammar), a sha256
checksum checked before a byte is used, a size cap, and the newest ``KEEP`` files kept. A file
that is missing, damaged or unreadable is rebuilt, never trusted: the arrays are NumPy's ``.npz``
format read with ``allow_pickle=False``, so a forged file can hold wrong numbers but no code. The
answers are the same with or without the cache (tested).
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import zipfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .prompt_cache import MAX_BYTES, PromptCache

Arrays = dict[str, np.ndarray]


@functools.lru_cache(maxsize=None)
def source_digest(*modules: object) -> str:
    """A hash of the modules' source files: the code that computes an entry is part of its name,
    so a changed computation never reads an old file."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())  # type: ignore[attr-defined]
    return digest.hexdigest()[:16]


class SetupCache(PromptCache):
    magic, own, suffix = b"EMOGRAM-SETUP1\n", b"EMOGRAM-SETUP", ".npz"
    pattern = re.compile(r"^[0-9a-f]{40}\.npz$")
    keep = 32

    def arrays(self, name: str, build: Callable[[], Mapping[str, np.ndarray]]) -> Arrays:
        """The arrays stored under ``name``, or ``build()``'s, stored for next time."""
        key = list(hashlib.sha256(name.encode("utf-8")).digest())
        payload = self.load(key)
        if payload is not None and _bounded(payload):
            try:
                with np.load(io.BytesIO(payload), allow_pickle=False) as found:
                    if isinstance(found, np.lib.npyio.NpzFile):
                        return {k: found[k] for k in found.files}
            except Exception:  # noqa: BLE001 - whatever NumPy and zipfile make of a bad file
                pass  # (a bad zip, a bad header, a member compressed in a way zlib refuses,
                #       a shape too large for memory): a file we cannot read is rebuilt
        made = {k: np.asarray(v) for k, v in build().items()}
        buf = io.BytesIO()
        np.savez(buf, **made)  # type: ignore[arg-type]  # (NumPy's stubs read ** as allow_pickle)
        self.store(key, buf.getvalue())
        return made


def _bounded(payload: bytes) -> bool:
    """Is ``payload`` a zip whose members, as it declares them (the most ``zipfile`` will inflate),
    come to at most ``MAX_BYTES``? A small file could otherwise inflate to gigabytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return sum(info.file_size for info in archive.infolist()) <= MAX_BYTES
    except Exception:  # noqa: BLE001 - not a zip at all, or a broken one: rebuilt
        return False


def for_model(model) -> SetupCache | None:
    """The set-up cache for ``llama.Model`` (None when its prompt cache is off): ``model.setup_cache``."""
    directory = getattr(model, "prompt_cache_dir", None)
    if directory is None:
        return None
    from .library import VERSION
    st = model.path.stat()
    identity = f"{model.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{VERSION}".encode()
    return SetupCache(directory, identity)


def pack_bytes(items: list[bytes]) -> Arrays:
    """A list of byte strings as two arrays (the bytes joined, and where each ends)."""
    ends = np.cumsum([len(b) for b in items], dtype=np.int64)
    return {"blob": np.frombuffer(b"".join(items), dtype=np.uint8), "ends": ends}


def unpack_bytes(arrays: Mapping[str, np.ndarray]) -> list[bytes]:
    blob, ends = arrays["blob"].tobytes(), arrays["ends"].tolist()
    starts = [0] + ends[:-1]
    return [blob[a:b] for a, b in zip(starts, ends)]
