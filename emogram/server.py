"""``emogram serve``: keep the model loaded, so that ``emogram TOPIC`` from the shell answers in well
under a second, the way ``ollama serve`` makes ``ollama run`` quick.

Why a server: a one-shot command pays, before its answer's own half second, for llama.cpp's model
load (0.6 s of it is llama.cpp building Gemma's 262,144-token vocabulary, on every load), a
context, and emogram's set-up; the set-up cache (``backend/setup_cache.py``) trims emogram's share,
but not llama.cpp's. A server pays them once.

How it is kept safe and exact:

* It listens on a Unix socket in a private directory (``<cache>/serve``, created 0700; a directory
  that another user owns or others may write to is refused, by the server and by the command). On
  Linux the peer's uid must be the server's own.
* ``emogram TOPIC`` looks for the socket before it imports anything heavy. When a server answers,
  it sends its arguments, working directory, terminal flags and settings (``SETTINGS``: EMOGRAM_*,
  the model stores' variables, HOME), and copies the server's output and exit code.
* The server answers one request at a time (llama.cpp uses every core for one answer) through the
  very code of the command (``cli.run``), in the client's working directory, so a served answer is
  the answer the command would print itself (tested, seed for seed). Requests that come while it
  answers wait in a queue (at most ``MAX_QUEUED``; beyond that a request is declined at once).
* It declines a client whose emogram (version, files, resolved interpreter) or settings differ from
  its own; the command then runs in its own process, as it does when no server answers or the
  socket is stale.
* It exits after ``--idle`` minutes without a request (default 15), on Ctrl-C or SIGTERM (also in
  the middle of an answer: that client then answers itself if nothing was printed yet, or says the
  answer was cut and exits 1), and on ``emogram serve --stop``; it removes its socket when it goes.

What no client can do (the hostile-client suite, ``tests/test_serve_hostile.py``):

* stop or kill it: whatever a request holds (bad JSON, deep nesting, NUL bytes, a bad path, an
  error in the answer itself) is declined or answered with a one-line error, and it serves on;
* hold it: requests are read by a thread of their own (the door, ``serve/door.py``), many
  connections at once, each with one deadline for the whole request (``READ_SECONDS``), not one per
  read; a client that stops reading its answer is given up after ``SEND_SECONDS`` of waiting in all;
* fill its memory: a request is at most ``MAX_REQUEST`` bytes, at most ``MAX_PENDING`` connections
  are read at once, holding at most ``MAX_BUFFERED`` bytes together.

And the command has deadlines of its own: ``ACK_SECONDS`` for the server to take its request,
``START_SECONDS`` in the queue without a word from the server (which tells each waiting command its
place every ``BEAT_SECONDS`` while it works: it spent CPU since the last time); past either, it
answers itself. A server that works is waited on, however busy the machine: sixteen commands
answering themselves at once on two cores would each take minutes.

The protocol: one JSON line from the client (at most ``MAX_REQUEST`` bytes), then JSON lines from
the server: ``{"queued": n}`` (taken, n requests ahead of it; again each beat while it works),
``{"started": true}``, then
``{"out": text}``, ``{"err": text}``, and last ``{"exit": code}``; or ``{"declined": why}`` (before
any output: the command answers itself).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import Callable, Sequence

from .errors import InputError
from .serve.answer import Server
from .serve.client import ask, ask_at, stop
from .serve.door import STOP as _STOP, RequestError, parse_request
from .serve.place import (ACK_SECONDS, BEAT_SECONDS, ENV_SERVE, IDLE_LIMIT, IDLE_MINUTES, MAX_BUFFERED,
                          MAX_PENDING, MAX_QUEUED, MAX_REQUEST, READ_SECONDS, SEND_SECONDS, SETTING_NAMES,
                          SETTINGS, SOCKET_NAME, START_SECONDS, directory, identity, private, settings,
                          socket_path)

__all__ = ["Server", "Stopped", "RequestError", "ask", "ask_at", "stop", "serve", "parse_request", "identity",
           "settings", "directory", "socket_path", "private", "ACK_SECONDS", "BEAT_SECONDS", "ENV_SERVE",
           "IDLE_LIMIT", "IDLE_MINUTES", "MAX_BUFFERED", "MAX_PENDING", "MAX_QUEUED", "MAX_REQUEST",
           "READ_SECONDS", "SEND_SECONDS", "SETTING_NAMES", "SETTINGS", "SOCKET_NAME", "START_SECONDS", "_STOP"]


class Stopped(BaseException):
    """A signal (SIGTERM, SIGINT) asked the server to stop: raised in the answering thread, out of
    an answer too, past the command's own handlers (a ``BaseException`` that is neither
    ``SystemExit`` nor ``KeyboardInterrupt``, which an answer catches as its own)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum




def _on_signal(signum: int, frame) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):  # once: the stop itself is not interrupted
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def serve(argv: Sequence[str], run: Callable[[list[str]], int], serves: Callable[[list[str]], bool]) -> int:
    """``emogram serve``: load the model, warm it up, and answer until idle or stopped. ``run``
    carries out a command as this process's own (``cli.run``); ``serves`` says which it takes."""
    import argparse

    from .option_table import add_model_flags
    p = argparse.ArgumentParser(prog="emogram serve", description=(
        "Keep a model loaded so that `emogram TOPIC` answers in well under a second. "
        "Runs in the foreground; Ctrl-C, SIGTERM or `emogram serve --stop` stops it."))
    add_model_flags(p, "the model to load now (others load on first request); "
                    "default: $EMOGRAM_MODEL or the default preset")
    p.add_argument("--idle", type=float, default=IDLE_MINUTES, metavar="MINUTES",
                   help="stop after this many minutes without a request (default %(default)g; 0: never)")
    p.add_argument("--stop", action="store_true", help="stop the running server")
    args = p.parse_args(argv)
    if not 0 <= args.idle <= IDLE_LIMIT:  # nan, inf and negatives too
        raise InputError(f"--idle must be between 0 and {IDLE_LIMIT:g} minutes, got {args.idle}")
    if args.stop:
        if stop():
            sys.stderr.write("emogram serve: stopped\n")
            return 0
        sys.stderr.write("emogram serve: no server is running\n")
        return 1
    if not hasattr(socket, "AF_UNIX"):
        raise InputError("emogram serve needs Unix sockets, which this platform lacks")
    server = Server(run, serves, idle_minutes=args.idle)
    # Ctrl-C and SIGTERM stop the server, in the middle of an answer too (``Stopped``)
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        from .api import Explainer
        start = time.perf_counter()
        Explainer(args.model, device=args.device, progress=True).explain("tea", seed=0)
        sys.stderr.write(f"emogram serve: ready in {time.perf_counter() - start:.1f}s, listening on "
                         f"{server.path} (pid {os.getpid()}); stops after {args.idle:g} idle minutes\n")
        sys.stderr.flush()
        server.serve_forever()
        return 0
    except Stopped as stop_:
        server.close()
        sys.stderr.write(f"emogram serve: {signal.Signals(stop_.signum).name}, stopping\n")
        _unload()
        return 130 if stop_.signum == signal.SIGINT else 0
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _unload() -> None:
    """Free the models before the process ends: an answer cut by a signal may still be decoding."""
    try:
        from .backend import models
        models.unload_all()
    except Exception:
        pass
