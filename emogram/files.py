"""Reading a file a user or another program handed us: a regular file only, and never more than a
bound. A device, a FIFO or a directory is refused before it is opened for reading (``/dev/zero``
would fill memory, a FIFO would hang), and the bound is kept by the read itself, not by the size
the file reports (which a device gives as 0)."""

from __future__ import annotations

import os
import stat

from .errors import InputError


def read_regular(path: str | os.PathLike[str], limit: int, what: str = "file",
                 error: type[Exception] = InputError) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; ``error`` (naming ``what``
    and the path) for anything else: missing, unreadable, not a regular file, too large."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise error(f"{what} {os.fspath(path)!r} cannot be read: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {os.fspath(path)!r} is not a regular file")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise error(f"{what} {os.fspath(path)!r} is larger than {limit:,} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{what} {os.fspath(path)!r} cannot be read: {_reason(exc)}") from None
    finally:
        os.close(fd)


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
