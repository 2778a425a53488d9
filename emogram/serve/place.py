"""Where ``emogram serve`` listens and whom it serves: the socket's private directory, the
identity a command must share with the server, the settings it must share, and the limits both
sides keep (``emogram/server.py`` tells the whole story)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from .._version import __version__

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
    from ..defaults import cache_dir
    return cache_dir() / "serve"


def socket_path() -> Path:
    return directory() / SOCKET_NAME


def private(path: Path, create: bool = False) -> bool:
    """Is ``path`` a directory of ours alone, which no one else may even enter? (Created 0700 when
    ``create`` and missing.)"""
    from ..files import private_directory
    return private_directory(path, create, others=0o077)


def identity() -> str:
    """This emogram: its version, where it is and its files' sizes and times, and the Python that
    runs it. A server serves only a client with the same identity (old code never answers)."""
    here = Path(__file__).resolve().parent.parent  # the emogram package
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



def available() -> bool:
    """Can a server be asked here (Unix sockets, and ``EMOGRAM_SERVE`` not off)?"""
    return hasattr(socket, "AF_UNIX") and os.environ.get(ENV_SERVE, "").strip().lower() not in _OFF
