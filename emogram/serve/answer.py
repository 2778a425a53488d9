"""The answering side of ``emogram serve``: the listening socket, and the thread that answers the
door's requests one at a time through the command's own code, its output sent back as frames."""

from __future__ import annotations

import json
import os
import queue
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import EmogramError, InputError
from .door import STOP, Door
from .place import IDLE_MINUTES, SEND_SECONDS, identity, private, settings, socket_path


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


class Server(Door):
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
                if item is STOP or self._stopping.is_set():
                    if item is not STOP:
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
                if item is not STOP:
                    item[0].close()
            try:
                if self.path.exists():
                    self.path.unlink()
            except OSError:
                pass
