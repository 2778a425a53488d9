"""One thread runs every llama.cpp forward pass in the process, whatever model or thread asks.

Why: llama.cpp's CPU backend runs each forward pass as an OpenMP parallel region, and libgomp gives
every thread that starts such a region a team of worker threads of its own. As soon as a second
thread has done so (two models, each with its own decode thread, or emogram beside stock
llama-cpp-python), the process has more OpenMP threads than cores; libgomp then stops spinning at
its barriers and sleeps instead, and a forward pass has hundreds of barriers. Measured on 2 cores
with Gemma 3 270M: 78 tokens/s alone, 43 tokens/s for the rest of the process after one answer
from a second model (``python bench/two_models.py``). With every pass on this one thread there is
one team, and a pass costs one hand-over (about 0.2 ms here) more.

``run(fn, *args)`` calls ``fn`` on the forward thread and returns its result or raises its
exception; called on the forward thread itself it just calls ``fn``. A KeyboardInterrupt that
arrives while the caller waits is raised when ``fn`` has returned, never before: the pass may be
using the context and weights that the interrupted caller would go on to free. (A second Ctrl-C
landing in the few bytecodes around the wait can still escape early: Python gives no way to
close that window. emogram's own passes are asked for on scheduler threads, which never receive
KeyboardInterrupt.) ``fn`` must not wait for an emogram generation: that generation's passes
would queue behind it, forever. The thread is started on first use, and again in a child process
after ``fork``.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class _ForwardThread:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        if threading.current_thread() is self._thread:
            return fn(*args)
        self._start()
        done = threading.Event()
        box: list = []
        interrupted: BaseException | None = None
        self._queue.put((fn, args, done, box))
        while True:
            try:
                if done.wait():
                    break
            except BaseException as exc:  # Ctrl-C: raised once the pass is over, as a ctypes call
                interrupted = exc          # would; until then it may use what the caller would free
        if interrupted is not None:
            raise interrupted
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="emogram-forward", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, args, done, box = self._queue.get()
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # handed to the caller, raised there
                box.append((False, exc))
            finally:
                done.set()
                del fn, args, done, box  # keep nothing of the last call alive until the next

    def _after_fork(self) -> None:
        """In a forked child the thread does not exist (and the lock may be held): start afresh."""
        _ForwardThread.__init__(self)


_FORWARD = _ForwardThread()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_FORWARD._after_fork)


def run(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the process's forward thread (see the module's docstring)."""
    return _FORWARD.run(fn, *args)


def thread() -> threading.Thread | None:
    """The forward thread, once started (for tests)."""
    return _FORWARD._thread
