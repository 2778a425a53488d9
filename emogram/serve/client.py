"""The command's side of ``emogram serve``: hand an explain command to a running server and copy
its answer, or step aside (None) so that the command answers itself."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

TYPE_CHECKING = False  # typing costs a served command 5 ms of its 30
if TYPE_CHECKING:
    from typing import Sequence

from .place import ACK_SECONDS, START_SECONDS, available, identity, private, settings, socket_path


def ask(argv: Sequence[str]) -> tuple[int, bool] | None:
    """Have a running server answer ``argv`` (an explain command): its exit code and whether the
    command should add its own rows of ``--verbose``, with the output copied to this process's;
    None when no server takes it (then the command runs here)."""
    if not available():
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
