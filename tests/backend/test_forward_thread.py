"""Every llama.cpp forward pass runs on one thread per process (``forward_thread.py``): with two
models, each with a decode thread of its own, libgomp otherwise throttles both to about half speed
for the rest of the process (``bench/two_models.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from emogram.backend import forward_thread


def test_run_returns_the_result_and_raises_the_error_on_the_callers_side():
    assert forward_thread.run(lambda a, b: (a + b, threading.current_thread().name), 2, 3) == (5, "emogram-forward")

    def boom():
        raise KeyError("from the forward thread")

    with pytest.raises(KeyError, match="from the forward thread"):
        forward_thread.run(boom)
    assert forward_thread.run(lambda: 7) == 7  # the thread survived the error


def test_a_call_made_on_the_forward_thread_runs_inline():
    """A nested call would otherwise wait for the thread that is running it: a deadlock."""
    assert forward_thread.run(lambda: forward_thread.run(lambda: threading.current_thread().name)) == "emogram-forward"


def test_ctrl_c_while_waiting_is_raised_only_after_the_pass_is_over():
    """SIGINT to the waiting main thread: the KeyboardInterrupt comes after ``fn`` returned, so
    the caller cannot free a context that the forward thread is still using."""
    code = ("import signal, threading, time\n"
            "from emogram.backend import forward_thread\n"
            "finished = []\n"
            "def slow():\n"
            "    time.sleep(0.6); finished.append(time.monotonic())\n"
            "main = threading.main_thread().ident\n"
            "threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGINT)).start()\n"
            "try:\n"
            "    forward_thread.run(slow)\n"
            "except KeyboardInterrupt:\n"
            "    raised = time.monotonic()\n"
            "    print('ok' if finished and raised >= finished[0] else 'early')\n"
            "else:\n"
            "    print('no interrupt')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", (out.stdout, out.stderr)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_gets_a_forward_thread_of_its_own():
    code = ("import os, sys; from emogram.backend import forward_thread as f; f.run(lambda: 1)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    fresh = f.thread() is None  # the parent's thread does not exist here: forgotten\n"
            "    os._exit(0 if fresh and f.run(lambda: 41) + 1 == 42 else 3)\n"
            "_, status = os.waitpid(pid, 0); sys.exit(os.waitstatus_to_exitcode(status))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_two_models_decode_on_one_thread(gemma_engine, smol_engine, monkeypatch):
    """Both models' forward passes, and a single-sequence context's, all on the forward thread."""
    from emogram.backend.library import C
    from emogram.options import build_request

    seen: set[int] = set()
    original = C.llama_decode

    def recording(ctx, batch):
        seen.add(threading.get_ident())
        return original(ctx, batch)

    monkeypatch.setattr(C, "llama_decode", recording)
    for engine in (gemma_engine, smol_engine, gemma_engine):
        engine.explain("rain", build_request(seed=1, max_tokens=24, plan=False))
    assert seen == {forward_thread.thread().ident}
