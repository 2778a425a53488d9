"""llama.cpp's log and stderr: silent by default, kept for error messages, printed on request.

llama.cpp writes through a log callback (routed here) and, in a few places such as its grammar
parser, straight to file descriptor 2 with ``fprintf``. The second kind is captured by pointing
fd 2 at a temporary file for the duration of the call. fd 2 belongs to the whole process, so the
swap is serialised by one process-wide lock: two threads compiling grammars at once cannot lose
each other's output or restore the wrong descriptor.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator

_LOG: collections.deque[str] = collections.deque(maxlen=400)
_VERBOSE = False
_FD2_LOCK = threading.Lock()


def on_log(level: int, text: bytes, user_data: object) -> None:
    """llama.cpp's log callback (wrapped by ``llama.py`` in the C function type)."""
    message = text.decode("utf-8", errors="replace")
    _LOG.append(message)
    if _VERBOSE:
        sys.stderr.write(message)
        sys.stderr.flush()


def set_verbose(verbose: bool) -> None:
    """Print llama.cpp's log to stderr (True) or keep it silent (False, the default)."""
    global _VERBOSE
    _VERBOSE = bool(verbose)


def clear() -> None:
    _LOG.clear()


def recent(lines: int = 8) -> str:
    """The last lines llama.cpp logged, for error messages."""
    text = "".join(list(_LOG)[-lines * 4:])
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what native code writes straight to file descriptor 2 while the block runs. The
    captured text is appended to the yielded list when the block ends."""
    out: list[str] = []
    with _FD2_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with tempfile.TemporaryFile() as tmp:
                os.dup2(tmp.fileno(), 2)
                try:
                    yield out
                finally:
                    sys.stderr.flush()
                    os.dup2(saved, 2)
                    tmp.seek(0)
                    out.append(tmp.read().decode("utf-8", errors="replace"))
        finally:
            os.close(saved)
