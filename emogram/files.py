"""Reading a file a user or another program handed us: a regular file only, and never more than a
bound. A device, a FIFO or a directory is refused before it is opened for reading (``/dev/zero``
would fill memory, a FIFO would hang), and the bound is kept by the read itself, not by the size
the file reports (which a device gives as 0).

Every metadata file emogram reads goes through ``read_regular``: GGUF headers (``backend/gguf.py``),
ollama manifests and config blobs, LM Studio's pointer and settings, the hub cache's refs
(``backend/ollama_store.py``, ``backend/store_places.py``, ``backend/stores.py``), the checksum
file beside an assembled model (``backend/models.py``) and bank files. ``load_json`` turns such
bytes into JSON with a typed error for anything else (bad UTF-8, bad JSON, nesting too deep), and
``check_path`` refuses a path no file can have (a NUL byte) with a typed error too.

The directories emogram writes to or trusts (the caches, the model store's assembled files, the
server's socket) pass one rule, ``directory_problem``: this user's, and no one else may write there.
This module imports nothing heavy: ``emogram TOPIC`` uses it before asking a running server."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

from .errors import InputError, InputTypeError


def read_regular(path: str | os.PathLike[str], limit: int, what: str = "file",
                 error: type[Exception] = InputError, *, head: bool = False, follow: bool = True) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; ``error`` (naming ``what``
    and the path) for anything else: missing, unreadable, not a regular file, too large. With
    ``head``, its first ``limit`` bytes (or fewer, for a shorter file) and a larger file is fine;
    without ``follow``, a symbolic link is refused too (the caches' files)."""
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise error(f"{what} {_shown(name)} cannot be read: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {_shown(name)} is not a regular file")
        chunks, total, want = [], 0, limit if head else limit + 1  # one byte more: is it larger?
        while total < want:
            chunk = os.read(fd, min(1 << 20, want - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise error(f"{what} {_shown(name)} is larger than {limit:,} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{what} {_shown(name)} cannot be read: {_reason(exc)}") from None
    finally:
        os.close(fd)


def load_json(data: bytes, what: str, error: type[Exception] = InputError) -> object:
    """``data`` as JSON (UTF-8); ``error`` naming ``what`` for anything else, a nesting too deep for
    the parser's stack included (Python's parser raises ``RecursionError`` there)."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise error(f"{what} is JSON nested too deeply") from None
    except ValueError as exc:
        raise error(f"{what} is not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def check_path(path: object, what: str = "path", error: type[Exception] = InputError) -> str:
    """``path`` (a ``str`` or ``os.PathLike`` of one) as text, refused with ``error`` when no file
    can have that name (a NUL byte, which the system calls reject with a bare ``ValueError``) and
    with ``InputTypeError`` when it is not a path at all."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{what} must be a path, not {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InputTypeError(f"{what} must be str, not bytes")
    if "\0" in text:
        raise error(f"{what} {_shown(text)} holds a NUL byte, which no file name can")
    return text


def _shown(name: str, limit: int = 300) -> str:
    text = repr(name)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(name)} characters)"


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def private_directory(path: Path, create: bool = False, others: int = 0o022) -> bool:
    """Is ``path`` a directory this user owns, with none of the ``others`` mode bits (by default:
    no one else may write to it)? Created 0700 when ``create`` and missing."""
    return directory_problem(path, create, others) is None


def directory_problem(path: Path, create: bool = False, others: int = 0o022) -> str | None:
    """Why ``path`` fails ``private_directory``'s rule, in words ("is writable by others (mode
    0777)"), or None when it passes."""
    try:
        if create and not path.exists():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(path)
    except (OSError, ValueError) as exc:
        return f"cannot be used ({getattr(exc, 'strerror', None) or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory" + (" (a symbolic link)" if stat.S_ISLNK(st.st_mode) else "")
    if not hasattr(os, "getuid"):
        return None
    if st.st_uid != os.getuid():
        return f"belongs to another user (uid {st.st_uid})"
    if st.st_mode & others:
        who = "others may write to it" if st.st_mode & others & 0o022 else "others may enter it"
        return f"is not private: {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


_NOTED: set[str] = set()
_NOTED_LOCK = threading.Lock()


def note_once(message: str) -> None:
    """Say ``message`` on stderr, once per process (why a cache is off, why a file is hashed again)."""
    with _NOTED_LOCK:
        if message in _NOTED:
            return
        _NOTED.add(message)
    try:
        sys.stderr.write(f"emogram: note: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
