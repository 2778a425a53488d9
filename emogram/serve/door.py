"""The door of ``emogram serve``: one thread reads every connection's request, many at once, each
within its deadline and all within a memory bound; it declines what it cannot take and queues the
rest for the answering thread (``answer.Server``), telling each waiting command its place."""

from __future__ import annotations

import json
import os
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import InputError
from . import place
from .place import BEAT_SECONDS, MAX_BUFFERED, MAX_PENDING, MAX_QUEUED, MAX_REQUEST

STOP = object()  # in the queue: stop once the answer in hand (if any) is done


class RequestError(InputError):
    """A request the server cannot take: not a JSON object, or a field of the wrong kind."""


def parse_request(line: bytes) -> dict:
    """One request line -> ``{"stop": True}`` or ``{"identity", "settings", "argv", "cwd", "tty"}``,
    each of its kind; ``RequestError`` for anything else (bad UTF-8 or JSON, nesting too deep, a
    NUL byte in a path or an argument, a field missing or of another kind)."""
    from ..files import load_json
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



@dataclass
class _Pending:
    deadline: float
    data: bytearray = field(default_factory=bytearray)



class Door:
    """The reading half of ``Server``: its thread (``_door_loop``) takes connections from
    ``sock``, reads each request and puts ``(conn, request)`` on ``_queue``."""

    sock: socket.socket
    identity: str
    settings: dict[str, str]
    serves: Callable[[list[str]], bool]
    _queue: queue.Queue
    _closed: threading.Event
    _stopping: threading.Event
    _places: threading.Lock

    def _say(self, text: str, stream=None) -> None:
        raise NotImplementedError

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
                    self._drop(sel, pending, conn, {"declined": f"no complete request within {place.READ_SECONDS:g} s"})
        except Exception as exc:  # never silently: the server stops, and says why
            if not self._closed.is_set():
                self._say(f"emogram serve: stopping: {type(exc).__name__}: {exc}\n")
                self._stopping.set()
                self._queue.put(STOP)
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
                    waiting = [item for item in self._queue.queue if item is not STOP]
                for number, (conn, _) in enumerate(waiting, 1):
                    _send_now(conn, {"queued": number})
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
            pending[conn] = _Pending(time.monotonic() + place.READ_SECONDS)
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
            self._queue.put(STOP)
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
