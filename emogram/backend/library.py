"""llama.cpp's library, through llama-cpp-python's ctypes bindings (``C``): loaded when the backend
is first imported (never by ``import emogram``), its log routed through ``logs``, its backend
initialised once per process. ``llama.py`` (models) and ``context.py`` (forward passes) call it.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading

from . import logs

with contextlib.redirect_stderr(None):  # importing the package prints nothing, but be sure
    import llama_cpp
    import llama_cpp.llama_cpp as C

VERSION = getattr(llama_cpp, "__version__", "")  # llama-cpp-python's

_INIT_LOCK = threading.Lock()
_INITIALISED = False
_LOG_CALLBACK = C.llama_log_callback(logs.on_log)


def init_backend() -> None:
    """Route llama.cpp's log through ``logs`` and initialise its backend, once per process."""
    global _INITIALISED
    with _INIT_LOCK:
        if not _INITIALISED:
            C.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
            C.llama_backend_init()
            _INITIALISED = True


def supports_gpu_offload() -> bool:
    init_backend()
    return bool(C.llama_supports_gpu_offload())


def system_info() -> str:
    init_backend()
    return C.llama_print_system_info().decode("utf-8", errors="replace").strip()


class Freed:
    """Something that holds llama.cpp memory: ``close`` frees it, and the collector calls
    ``close`` too (quietly: at interpreter shutdown the order of teardown varies)."""

    def close(self) -> None:
        raise NotImplementedError

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass
