"""The shared part of prompts (instructions and few-shot examples), evaluated once per machine.

llama.cpp's state of that prefix is saved to a file, so a one-shot command does not spend half a
second re-reading the same examples on every run. A file is named by a hash of the model file
(path, size, mtime), llama-cpp-python's version, the load settings and the tokens.

What the checks prove, and what they do not:

* The sha256 stored in a file is a **checksum**: it catches truncation and corruption, not
  tampering. Anyone who can write to the directory can make emogram load a state of their choice
  (llama.cpp checks the state's shape, and its loader catches its own errors, so a forged file can
  change answers but not crash the process). Hence the directory policy below.
* The directory is created private (0700). A directory that exists but belongs to another user or
  is writable by others is refused (the cache is then off, and says why once on stderr), because
  its files could have been written by them.
* Files are opened without following symlinks, as regular files only (``files.read_regular``: a
  FIFO or a device planted there is never read), and read only up to ``MAX_BYTES``.
* Pruning deletes only files emogram wrote: the name pattern ``<40 hex>.kv`` and the magic header.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import EmogramError
from ..files import directory_problem, note_once, read_regular

MAGIC = b"EMOGRAM-KV2\n"
OWN = b"EMOGRAM-KV"  # every version of emogram's files starts so (pruning may remove older ones)
KEEP = 16  # newest files kept in the directory
MAX_BYTES = 256 << 20  # a prefix of a few hundred tokens takes a few MB; refuse anything huge
_NAME = re.compile(r"^[0-9a-f]{40}\.kv$")


class PromptCache:
    """Files of one kind in a private directory: named by a hash, checked by a checksum, pruned to
    the newest ``keep``. ``setup_cache.SetupCache`` keeps its files by the same rules."""

    magic, own, suffix, pattern, keep = MAGIC, OWN, ".kv", _NAME, KEEP

    def __init__(self, directory: Path, identity: bytes) -> None:
        self.directory = Path(directory)
        self._identity = identity

    def file_for(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(self._identity)
        digest.update(np.asarray(tokens, dtype=np.int32).tobytes())
        return self.directory / f"{digest.hexdigest()[:40]}{self.suffix}"

    def trusted(self, create: bool = False) -> bool:
        """Is the directory ours alone? (Created 0700 when ``create`` and missing.) When it is not,
        and it is there (or was to be created), the cache is off, and says why once, on stderr."""
        problem = directory_problem(self.directory, create)
        if problem is not None and (create or os.path.lexists(self.directory)):
            note_once(f"the cache {self.directory} is off: it {problem}")
        return problem is None

    def load(self, tokens: Sequence[int]) -> bytes | None:
        """The saved state after ``tokens``, checked against its checksum; None if absent or bad."""
        if not self.trusted():
            return None
        path = self.file_for(tokens)
        try:  # a regular file only (never a link, a FIFO or a device), and at most MAX_BYTES
            blob = read_regular(path, MAX_BYTES, "cache file", follow=False)
        except EmogramError:
            return None
        head = len(self.magic)
        payload = blob[head + 32:]
        if (not blob.startswith(self.magic) or not payload
                or hashlib.sha256(payload).digest() != blob[head:head + 32]):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by the pruning
        return payload

    def store(self, tokens: Sequence[int], payload: bytes) -> None:
        """Save the state after ``tokens`` (best effort: a cache that cannot be written is off)."""
        if not payload or len(payload) > MAX_BYTES or not self.trusted(create=True):
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(self.magic + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, self.file_for(tokens))
            tmp = None
            self.prune()
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def ours(self) -> list[Path]:
        """Files in the directory that emogram wrote (name pattern and magic header)."""
        found = []
        for path in self.directory.glob(f"*{self.suffix}"):
            if not self.pattern.match(path.name) or path.is_symlink():
                continue
            try:
                if read_regular(path, len(self.own), "cache file", head=True, follow=False) == self.own:
                    found.append(path)
            except EmogramError:
                continue
        return found

    def prune(self) -> None:
        def age(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0
        for old in sorted(self.ours(), key=age, reverse=True)[self.keep:]:
            with contextlib.suppress(OSError):
                old.unlink()


def for_model(model) -> PromptCache | None:
    """The cache for a loaded ``llama.Model``, or None when its prompt cache is off."""
    directory = getattr(model, "prompt_cache_dir", None)
    if directory is None:
        return None
    from .library import VERSION
    from .machine import flash_attention
    st = model.path.stat()
    info = model.load_info
    # everything that changes the saved state's layout or numbers (llama.cpp refuses a state saved
    # with flash attention in a context without it: the prefix would be evaluated every time)
    identity = (f"{model.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|"
                f"{VERSION}|{info.n_gpu_layers}|"
                f"{info.extra_buffers}|unified-kv|fa{flash_attention()}|"
                f"adapter:{model.adapter.sha256 if getattr(model, 'adapter', None) else '-'}").encode()
    return PromptCache(directory, identity)
