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
* hold it: requests are read by a thread of their own (the door, ``Server._door_loop``), many
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

import json
import os
import queue
import selectors
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ._version import __version__
from .errors import EmogramError, InputError

ENV_SERVE = "EMOGRAM_SERVE"  # the socket's directory (default <cache>/serve); "0" or "off": no server
_OFF = ("0", "off", "no", "false")
# what can change an answer or which model a name means: served only when the command's are the same
SETTINGS = ("EMOGRAM_", "HF_", "HUGGINGFACE_")  # prefixes
SETTING_NAMES = ("OLLAMA_MODELS", "LMSTUDIO_HOME", "XDG_CACHE_HOME", "HOME")
MAX_REQUEST = 1 << 20
READ_SECONDS = 5.0  # the longest the server waits for a connected command's whole request
MAX_PENDING = 128  # connections whose request is still being read, at once
MAX_BUFFERED = 32 << 20  # bytes of unfinished requests held, all connections together
MAX_QUEUED = 32  # requests waiting for their answer; one more is declined at once ("busy")
SEND_SECONDS = 10.0  # the longest, in all, an answer waits for a client that does not read it
ACK_SECONDS = 5.0  # the command: the longest it waits for the server to take its request
START_SECONDS = 30.0  # the command: the longest it waits in the queue with no word that the server works
BEAT_SECONDS = 1.0  # how often the door tells waiting commands their place, while the server works
IDLE_MINUTES = 15.0
IDLE_LIMIT = 1e6  # minutes: beyond this, a socket timeout overflows; 0 already means never
SOCKET_NAME = "emogram.sock"


def directory() -> Path:
    value = os.environ.get(ENV_SERVE, "").strip()
    if value and value.lower() not in _OFF:
        return Path(value)
    from .backend.models import cache_dir
    return cache_dir() / "serve"


def socket_path() -> Path:
    return directory() / SOCKET_NAME


def private(path: Path, create: bool = False) -> bool:
    """Is ``path`` a directory of ours alone, which no one else may even enter? (Created 0700 when
    ``create`` and missing.)"""
    from .backend.prompt_cache import private_directory
    return private_directory(path, create, others=0o077)


def identity() -> str:
    """This emogram: its version, where it is and its files' sizes and times, and the Python that
    runs it. A server serves only a client with the same identity (old code never answers)."""
    here = Path(__file__).resolve().parent
    # the interpreter resolved (``.../python`` and ``.../python3`` are one program) and its prefix
    # (one interpreter, two virtual environments: two sets of packages)
    parts = [__version__, str(here), os.path.realpath(sys.executable), sys.prefix]
    for root, dirs, files in os.walk(here):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".so", ".pyd", ".gguf", ".tsv")):
                st = os.stat(os.path.join(root, name))
                parts.append(f"{os.path.relpath(os.path.join(root, name), here)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default: this process's) a served command must share."""
    return {k: v for k, v in (os.environ if environ is None else environ).items()
            if (k.startswith(SETTINGS) or k in SETTING_NAMES) and k != ENV_SERVE}


def _available() -> bool:
    return hasattr(socket, "AF_UNIX") and os.environ.get(ENV_SERVE, "").strip().lower() not in _OFF


# -- the command's side --------------------------------------------------------------------------

def ask(argv: Sequence[str]) -> tuple[int, bool] | None:
    """Have a running server answer ``argv`` (an explain command): its exit code and whether the
    command should add its own rows of ``--verbose``, with the output copied to this process's;
    None when no server takes it (then the command runs here)."""
    if not _available():
        return None
    return ask_at(socket_path(), argv)


def ask_at(path: Path, argv: Sequence[str], *, ack_seconds: float = ACK_SECONDS,
           start_seconds: float = START_SECONDS) -> tuple[int, bool] | None:
    """``ask``, of the server listening at ``path``. None (answer here) when no server takes the
    request within ``ack_seconds``, it says nothing for ``start_seconds`` while the request waits
    for its answer to start (a server that works says where it is every ``BEAT_SECONDS``), it
    declines, or it goes away before anything was printed."""
    if not private(path.parent) or not path.exists():
        return None
    try:
        request = {"identity": identity(), "settings": settings(), "argv": list(argv), "cwd": os.getcwd(),
                   "tty": [sys.stdout.isatty(), sys.stderr.isatty()]}
    except OSError:  # no working directory (deleted): nothing a server could resolve paths against
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(ack_seconds)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None  # stale socket or no server
    printed = False  # once the answer shows, this process cannot answer instead
    with conn:
        try:
            conn.sendall(json.dumps(request).encode("utf-8") + b"\n")
            for line in conn.makefile("rb"):
                frame = json.loads(line)
                if not isinstance(frame, dict):
                    raise ValueError("a frame is a JSON object")
                if "declined" in frame:
                    if printed:
                        break
                    return None
                if "queued" in frame:  # taken, or the server works on: wait on, for so long again
                    conn.settimeout(start_seconds)
                    continue
                if "started" in frame:  # the answer takes what it takes, as it would here
                    conn.settimeout(None)
                    continue
                if "exit" in frame:
                    return int(frame["exit"]), bool(frame.get("timings"))
                out = sys.stdout if "out" in frame else sys.stderr if "err" in frame else None
                if out is not None:
                    printed = True
                    try:
                        out.write(str(frame.get("out", frame.get("err", ""))))
                        out.flush()
                    except BrokenPipeError:  # the reader went away (| head): the command's own rule
                        return 0, False
        except (OSError, ValueError, TypeError):  # a timeout is an OSError: answer here
            pass
    if not printed:
        return None  # the server was busy, stuck or went away before answering: answer here
    sys.stderr.write("emogram: error: the server stopped before the answer was complete\n")
    return 1, False


def stop() -> bool:
    """Ask the running server to exit; whether one did."""
    path = socket_path()
    if not private(path.parent) or not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(ACK_SECONDS)
            conn.connect(str(path))
            conn.sendall(json.dumps({"stop": True}).encode("utf-8") + b"\n")
            return conn.makefile("r", encoding="utf-8").readline().strip() == '{"stopped": true}'
    except OSError:
        return False


# -- the server's side ---------------------------------------------------------------------------

class RequestError(InputError):
    """A request the server cannot take: not a JSON object, or a field of the wrong kind."""


def parse_request(line: bytes) -> dict:
    """One request line -> ``{"stop": True}`` or ``{"identity", "settings", "argv", "cwd", "tty"}``,
    each of its kind; ``RequestError`` for anything else (bad UTF-8 or JSON, nesting too deep, a
    NUL byte in a path or an argument, a field missing or of another kind)."""
    from .files import load_json
    if len(line) > MAX_REQUEST:
        raise RequestError(f"a request is at most {MAX_REQUEST:,} bytes")
    request = load_json(line, "the request", RequestError)
    if not isinstance(request, dict):
        raise RequestError("a request is a JSON object")
    if request.get("stop") is True:
        return {"stop": True}
    argv, cwd, tty = request.get("argv"), request.get("cwd"), request.get("tty")
    identity_, settings_ = request.get("identity"), request.get("settings")
    if not isinstance(argv, list) or not all(isinstance(a, str) and "\0" not in a for a in argv):
        raise RequestError("argv is a list of strings without NUL bytes")
    if not isinstance(cwd, str) or "\0" in cwd or not os.path.isabs(cwd):
        raise RequestError("cwd is an absolute path without NUL bytes")
    if not isinstance(tty, list) or len(tty) != 2 or not all(isinstance(t, bool) for t in tty):
        raise RequestError("tty is two booleans")
    if not isinstance(identity_, str):
        raise RequestError("identity is a string")
    if not isinstance(settings_, dict) or not all(isinstance(v, str) for v in settings_.values()):
        raise RequestError("settings map names to strings")
    return {"identity": identity_, "settings": settings_, "argv": argv, "cwd": cwd, "tty": tty}


class _Conn:
    """A client's connection on the answering side: frames sent with one budget of waiting for the
    whole answer (``SEND_SECONDS``), so a client that stops reading cannot hold the server."""

    def __init__(self, sock: socket.socket, budget: float = SEND_SECONDS) -> None:
        self.sock, self.budget = sock, budget

    def send(self, frame: dict) -> None:
        data = json.dumps(frame).encode("utf-8") + b"\n"
        if self.budget <= 0:
            raise OSError("the client stopped reading")
        start = time.monotonic()
        self.sock.settimeout(self.budget)
        try:
            self.sock.sendall(data)
        finally:
            self.budget -= time.monotonic() - start


class _Frames:
    """A text stream that sends what is written as frames of one kind (``out`` or ``err``)."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, conn: _Conn, kind: str, tty: bool) -> None:
        self.conn, self.kind, self.tty = conn, kind, tty

    def write(self, text: str) -> int:
        if text:
            try:
                self.conn.send({self.kind: text})
            except OSError as exc:  # the client went away (Ctrl-C): the command's own pipe rule
                raise BrokenPipeError(str(exc)) from None
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty

    def fileno(self) -> int:
        raise OSError("a served stream has no file descriptor")


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED") or not hasattr(os, "getuid"):
        return True  # the directory's mode is the guard here
    import struct
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


def _send_now(conn: socket.socket, frame: dict) -> None:
    """A short frame from the door (a verdict): never waits more than a moment."""
    try:
        conn.settimeout(1.0)
        conn.sendall(json.dumps(frame).encode("utf-8") + b"\n")
    except OSError:
        pass


class Stopped(BaseException):
    """A signal (SIGTERM, SIGINT) asked the server to stop: raised in the answering thread, out of
    an answer too, past the command's own handlers (a ``BaseException`` that is neither
    ``SystemExit`` nor ``KeyboardInterrupt``, which an answer catches as its own)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_STOP = object()  # in the queue: stop once the answer in hand (if any) is done


@dataclass
class _Pending:
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class Server:
    """One listening socket: a thread of its own (the door) reads requests, many at once, each
    within its deadline; the thread that calls ``serve_forever`` answers them, one at a time."""

    def __init__(self, run: Callable[[list[str]], int], serves: Callable[[list[str]], bool],
                 path: Path | None = None, *, idle_minutes: float = IDLE_MINUTES) -> None:
        self.run, self.serves = run, serves  # the command itself, and which commands it serves
        self.path = Path(path) if path is not None else socket_path()
        if not private(self.path.parent, create=True):
            raise InputError(f"{self.path.parent} is not a private directory of this user (mode 0700): "
                             "emogram will not listen there")
        if len(str(self.path).encode()) > 100:
            raise InputError(f"the socket path is too long for a Unix socket: {self.path}; "
                             "set EMOGRAM_CACHE to a shorter directory")
        if self.path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # stale: no server behind it
            else:
                probe.close()
                raise InputError(f"an emogram server already listens on {self.path} "
                                 "(emogram serve --stop stops it)")
        self.identity, self.settings = identity(), settings()
        self.idle = idle_minutes * 60
        self.served = 0
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._stopping = threading.Event()
        self._door: threading.Thread | None = None
        self._places = threading.Lock()  # the door's word to waiting commands, and the answer's start
        self._log = sys.stderr
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(64)
        self.sock.setblocking(False)

    # -- the answering thread --
    def serve_forever(self, log=sys.stderr) -> None:
        self._log = log
        self._door = threading.Thread(target=self._door_loop, name="emogram-serve-door", daemon=True)
        self._door.start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.idle if self.idle > 0 else None)
                except queue.Empty:
                    self._say(f"emogram serve: idle for {self.idle / 60:g} minutes, stopping\n")
                    return
                if item is _STOP or self._stopping.is_set():
                    if item is not _STOP:
                        item[0].close()  # taken, never started: that command answers itself
                    self._say("emogram serve: stopped on request\n")
                    return
                conn, request = item
                with self._places:  # the door is not telling this one its place just now
                    pass
                with conn:
                    self._answer(_Conn(conn), request)
        finally:
            self.close()

    def _answer(self, conn: _Conn, request: dict) -> None:
        try:
            home: str | None = os.getcwd()  # the server's own folder, back after each answer
        except OSError:
            home = None
        try:
            try:
                os.chdir(request["cwd"])
            except (OSError, ValueError):
                conn.send({"declined": "working directory not reachable"})
                return
            conn.send({"started": True})  # fails at once for a client that gave up waiting
            argv = request["argv"]
            code = self._run(conn, argv, request["tty"])
            conn.send({"exit": code, "timings": code == 0 and bool({"--verbose", "-v"} & set(argv))})
            self.served += 1
        except OSError:
            pass  # the client went away: nothing to tell it
        finally:
            if home is not None:
                try:
                    os.chdir(home)
                except OSError:
                    pass

    def _run(self, conn: _Conn, argv: list[str], tty: list) -> int:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Frames(conn, "out", bool(tty[0])), _Frames(conn, "err", bool(tty[1]))
        try:
            return self.run(argv)
        except SystemExit as exc:  # argparse: --help, or a usage error (2)
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except Exception as exc:  # never the server's end: the client is told in one line
            what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] if str(exc) else type(exc).__name__
            self._say(f"emogram serve: a request failed: {what}\n", saved[1])
            try:
                sys.stderr.write(f"emogram: error: {exc if isinstance(exc, EmogramError) else what}\n")
            except OSError:
                pass
            return 1
        finally:
            try:
                sys.stdout.flush()
            except OSError:
                pass
            sys.stdout, sys.stderr = saved

    def _say(self, text: str, stream=None) -> None:
        try:
            (stream or self._log).write(text)
            (stream or self._log).flush()
        except (OSError, ValueError):
            pass

    # -- the door: requests read, many at once, each within its deadline --
    def _door_loop(self) -> None:
        sel = selectors.DefaultSelector()
        pending: dict[socket.socket, _Pending] = {}
        try:
            sel.register(self.sock, selectors.EVENT_READ)
            beat, cpu = time.monotonic(), time.process_time()
            while not self._closed.is_set():
                now = time.monotonic()
                if now - beat >= BEAT_SECONDS:
                    beat, cpu = now, self._beat(cpu)
                wait = min([0.25] + [p.deadline - now for p in pending.values()])
                for key, _ in sel.select(max(wait, 0.0)):
                    if key.fileobj is self.sock:
                        self._accept(sel, pending)
                    else:
                        self._receive(sel, pending, key.fileobj)  # type: ignore[arg-type]
                now = time.monotonic()
                for conn in [c for c, p in pending.items() if p.deadline <= now]:
                    self._drop(sel, pending, conn, {"declined": f"no complete request within {READ_SECONDS:g} s"})
        except Exception as exc:  # never silently: the server stops, and says why
            if not self._closed.is_set():
                self._say(f"emogram serve: stopping: {type(exc).__name__}: {exc}\n")
                self._stopping.set()
                self._queue.put(_STOP)
        finally:
            for conn in list(pending):
                conn.close()
            sel.close()

    def _beat(self, cpu: float) -> float:
        """While the server works (this process used CPU since the last beat: an answer under way),
        tell each waiting command its place, which restarts its ``START_SECONDS``. A server that is
        stuck uses none, says nothing, and its commands answer themselves; one that is slow, because
        the machine is busy, keeps its queue, where sixteen commands loading the model at once on two
        cores would each take minutes."""
        now = time.process_time()
        if now - cpu >= 0.02:
            with self._places:
                with self._queue.mutex:
                    waiting = [item for item in self._queue.queue if item is not _STOP]
                for place, (conn, _) in enumerate(waiting, 1):
                    _send_now(conn, {"queued": place})
        return now

    def _accept(self, sel: selectors.BaseSelector, pending: dict) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # out of file descriptors: the next round tries again
            time.sleep(0.05)
            return
        if not _same_user(conn):
            _send_now(conn, {"declined": "another user"})
            conn.close()
        elif len(pending) >= MAX_PENDING:
            _send_now(conn, {"declined": "busy"})
            conn.close()
        else:
            conn.setblocking(False)
            pending[conn] = _Pending(time.monotonic() + READ_SECONDS)
            sel.register(conn, selectors.EVENT_READ)

    def _receive(self, sel: selectors.BaseSelector, pending: dict, conn: socket.socket) -> None:
        state = pending[conn]
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(sel, pending, conn, None)
            return
        if chunk:
            if sum(len(p.data) for p in pending.values()) + len(chunk) > MAX_BUFFERED:
                self._drop(sel, pending, conn, {"declined": "busy"})
                return
            at = chunk.find(b"\n")
            end = len(state.data) + at if at >= 0 else -1
            state.data += chunk
            if end < 0 and len(state.data) <= MAX_REQUEST:
                return  # more to come, within the deadline
            line = bytes(state.data[:end] if end >= 0 else state.data)
        else:  # the client's end is shut: what it sent is the request
            line = bytes(state.data)
        sel.unregister(conn)
        del pending[conn]
        try:
            self._take(conn, line)
        except Exception as exc:  # whatever a request can raise: that request is declined
            _send_now(conn, {"declined": f"bad request ({type(exc).__name__})"})
            conn.close()

    def _drop(self, sel, pending: dict, conn: socket.socket, frame: dict | None) -> None:
        sel.unregister(conn)
        del pending[conn]
        if frame is not None:
            _send_now(conn, frame)
        conn.close()

    def _take(self, conn: socket.socket, line: bytes) -> None:
        """A complete request: declined, a stop, or queued for its answer."""
        try:
            request = parse_request(line)
        except RequestError as exc:
            _send_now(conn, {"declined": f"bad request: {exc}"})
            conn.close()
            return
        if request.get("stop"):
            _send_now(conn, {"stopped": True})
            conn.close()
            self._stopping.set()
            self._queue.put(_STOP)
            return
        why = self._refusal(request)
        if why is None and self._queue.qsize() >= MAX_QUEUED:
            why = "busy"
        if why is not None:
            _send_now(conn, {"declined": why})
            conn.close()
            return
        _send_now(conn, {"queued": self._queue.qsize()})
        conn.settimeout(None)
        self._queue.put((conn, request))

    def _refusal(self, request: dict) -> str | None:
        if not self.serves(request["argv"]):
            return "only explanations are served"
        if request["identity"] != self.identity:
            return "another emogram (version or files differ)"
        if request["settings"] != self.settings:
            return "other settings (EMOGRAM_* or model store variables)"
        if not os.path.isdir(request["cwd"]):
            return "working directory not reachable"
        return None

    def close(self) -> None:
        self._closed.set()
        door = self._door
        if door is not None and door is not threading.current_thread():
            door.join(timeout=5)
        try:
            self.sock.close()
        finally:
            while True:  # taken, never answered: those commands answer themselves
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].close()
            try:
                if self.path.exists():
                    self.path.unlink()
            except OSError:
                pass


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
