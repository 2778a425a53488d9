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
* The server runs one request at a time (llama.cpp uses every core for one answer) through the
  very code of the command (``cli.run``), in the client's working directory, so a served answer is
  the answer the command would print itself (tested, seed for seed).
* It declines a client whose emogram (version, files) or settings differ from its own; the command
  then runs in its own process, as it does when no server answers or the socket is stale.
* It exits after ``--idle`` minutes without a request (default 15), on Ctrl-C or SIGTERM, and on
  ``emogram serve --stop``; it removes its socket when it goes.

The protocol: one JSON line from the client (at most ``MAX_REQUEST`` bytes), then JSON lines from
the server: ``{"out": text}``, ``{"err": text}``, and last ``{"exit": code}``, or ``{"declined":
why}`` alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from ._version import __version__

ENV_SERVE = "EMOGRAM_SERVE"  # the socket's directory (default <cache>/serve); "0" or "off": no server
_OFF = ("0", "off", "no", "false")
# what can change an answer or which model a name means: served only when the command's are the same
SETTINGS = ("EMOGRAM_", "HF_", "HUGGINGFACE_")  # prefixes
SETTING_NAMES = ("OLLAMA_MODELS", "LMSTUDIO_HOME", "XDG_CACHE_HOME", "HOME")
MAX_REQUEST = 1 << 20
READ_SECONDS = 5.0  # the longest the server waits for a connected command's request
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
    parts = [__version__, str(here), sys.executable]
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


def ask_at(path: Path, argv: Sequence[str]) -> tuple[int, bool] | None:
    """``ask``, of the server listening at ``path``."""
    if not private(path.parent) or not path.exists():
        return None
    try:
        request = {"identity": identity(), "settings": settings(), "argv": list(argv), "cwd": os.getcwd(),
                   "tty": [sys.stdout.isatty(), sys.stderr.isatty()]}
    except OSError:  # no working directory (deleted): nothing a server could resolve paths against
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None  # stale socket or no server
    first = True
    with conn:
        try:
            conn.sendall(json.dumps(request).encode("utf-8") + b"\n")
            for line in conn.makefile("r", encoding="utf-8"):
                frame = json.loads(line)
                if not isinstance(frame, dict):
                    raise ValueError("a frame is a JSON object")
                if first and "declined" in frame:
                    return None
                first = False
                if "exit" in frame:
                    return int(frame["exit"]), bool(frame.get("timings"))
                out = sys.stdout if "out" in frame else sys.stderr if "err" in frame else None
                if out is not None:
                    try:
                        out.write(frame.get("out", frame.get("err", "")))
                        out.flush()
                    except BrokenPipeError:  # the reader went away (| head): the command's own rule
                        return 0, False
        except (OSError, ValueError):
            if first:
                return None  # the server went away before answering: answer here
    if first:
        return None
    sys.stderr.write("emogram: error: the server stopped before the answer was complete\n")
    return 1, False


def stop() -> bool:
    """Ask the running server to exit; whether one did."""
    path = socket_path()
    if not private(path.parent) or not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(path))
            conn.sendall(json.dumps({"stop": True}).encode("utf-8") + b"\n")
            return conn.makefile("r", encoding="utf-8").readline().strip() == '{"stopped": true}'
    except OSError:
        return False


# -- the server's side ---------------------------------------------------------------------------

class _Frames:
    """A text stream that sends what is written as frames of one kind (``out`` or ``err``)."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, conn: socket.socket, kind: str, tty: bool) -> None:
        self.conn, self.kind, self.tty = conn, kind, tty

    def write(self, text: str) -> int:
        if text:
            try:
                self.conn.sendall(json.dumps({self.kind: text}).encode("utf-8") + b"\n")
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
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


def _read_request(conn: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    request = json.loads(data.decode("utf-8"))
    if not isinstance(request, dict):
        raise ValueError("a request is a JSON object")
    return request


def _send(conn: socket.socket, frame: dict) -> None:
    try:
        conn.sendall(json.dumps(frame).encode("utf-8") + b"\n")
    except OSError:
        pass


class Server:
    """One listening socket; requests answered one after another (``serve_forever``)."""

    def __init__(self, run: Callable[[list[str]], int], serves: Callable[[list[str]], bool],
                 path: Path | None = None, *, idle_minutes: float = IDLE_MINUTES) -> None:
        self.run, self.serves = run, serves  # the command itself, and which commands it serves
        from .errors import InputError
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
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(16)

    def serve_forever(self, log=sys.stderr) -> None:
        stopping = False
        try:
            while not stopping:
                self.sock.settimeout(self.idle if self.idle > 0 else None)
                try:
                    conn, _ = self.sock.accept()
                except socket.timeout:
                    log.write(f"emogram serve: idle for {self.idle / 60:g} minutes, stopping\n")
                    return
                with conn:
                    conn.settimeout(None)
                    stopping = self._handle(conn, log)
        finally:
            self.close()

    def _handle(self, conn: socket.socket, log) -> bool:
        """Answer one connection; True when it asked the server to stop."""
        if not _same_user(conn):
            _send(conn, {"declined": "another user"})
            return False
        try:
            conn.settimeout(READ_SECONDS)  # a command sends its request at once: none holds the server
            request = _read_request(conn)
            conn.settimeout(None)
        except (OSError, ValueError) as exc:
            _send(conn, {"declined": f"bad request: {exc}"})
            return False
        if request.get("stop") is True:
            _send(conn, {"stopped": True})
            log.write("emogram serve: stopped on request\n")
            return True
        argv, cwd, tty = request.get("argv"), request.get("cwd"), request.get("tty")
        if (not isinstance(argv, list) or not all(isinstance(a, str) for a in argv)
                or not isinstance(cwd, str) or not isinstance(tty, list) or len(tty) != 2):
            _send(conn, {"declined": "bad request"})
            return False
        if not self.serves(argv):
            _send(conn, {"declined": "only explanations are served"})
            return False
        if request.get("identity") != self.identity:
            _send(conn, {"declined": "another emogram (version or files differ)"})
            return False
        if request.get("settings") != self.settings:
            _send(conn, {"declined": "other settings (EMOGRAM_* or model store variables)"})
            return False
        try:
            os.chdir(cwd)
        except OSError:
            _send(conn, {"declined": "working directory not reachable"})
            return False
        code = self._run(conn, argv, tty)
        _send(conn, {"exit": code, "timings": code == 0 and bool({"--verbose", "-v"} & set(argv))})
        self.served += 1
        return False

    def _run(self, conn: socket.socket, argv: list[str], tty: list) -> int:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Frames(conn, "out", bool(tty[0])), _Frames(conn, "err", bool(tty[1]))
        try:
            return self.run(argv)
        except SystemExit as exc:  # argparse: --help, or a usage error (2)
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            try:
                sys.stdout.flush()
            except OSError:
                pass
            sys.stdout, sys.stderr = saved

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            try:
                if self.path.exists():
                    self.path.unlink()
            except OSError:
                pass


def serve(argv: Sequence[str], run: Callable[[list[str]], int], serves: Callable[[list[str]], bool]) -> int:
    """``emogram serve``: load the model, warm it up, and answer until idle or stopped. ``run``
    carries out a command as this process's own (``cli.run``); ``serves`` says which it takes."""
    import argparse
    p = argparse.ArgumentParser(prog="emogram serve", description=(
        "Keep a model loaded so that `emogram TOPIC` answers in well under a second. "
        "Runs in the foreground; `emogram serve --stop` stops it."))
    p.add_argument("--model", "-m", help="the model to load now (others load on first request); "
                   "default: $EMOGRAM_MODEL or the default preset")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--idle", type=float, default=IDLE_MINUTES, metavar="MINUTES",
                   help="stop after this many minutes without a request (default %(default)g; 0: never)")
    p.add_argument("--stop", action="store_true", help="stop the running server")
    args = p.parse_args(argv)
    if not 0 <= args.idle <= IDLE_LIMIT:  # nan, inf and negatives too
        from .errors import InputError
        raise InputError(f"--idle must be between 0 and {IDLE_LIMIT:g} minutes, got {args.idle}")
    if args.stop:
        if stop():
            sys.stderr.write("emogram serve: stopped\n")
            return 0
        sys.stderr.write("emogram serve: no server is running\n")
        return 1
    if not hasattr(socket, "AF_UNIX"):
        from .errors import InputError
        raise InputError("emogram serve needs Unix sockets, which this platform lacks")
    server = Server(run, serves, idle_minutes=args.idle)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        from .api import Explainer
        start = time.perf_counter()
        Explainer(args.model, device=args.device, progress=True).explain("tea", seed=0)
        sys.stderr.write(f"emogram serve: ready in {time.perf_counter() - start:.1f}s, listening on "
                         f"{server.path} (pid {os.getpid()}); stops after {args.idle:g} idle minutes\n")
        server.serve_forever()
    except BaseException:
        server.close()
        raise
    return 0
