"""``emogram serve``: a served answer is the command's own answer, byte for byte (text, errors, exit
codes, a path relative to the command's folder); the server declines what it must not answer
(another emogram, other settings, another command, a malformed request) and the command then
answers itself; a directory others may write to is never used; a stale socket is harmless; the
server stops when asked and when idle, and removes its socket.

One real server process (the default model and adapter); the commands are real processes too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from emogram import server
from emogram.backend import models
from emogram.errors import InputError

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
STARTED_WITH: dict[Path, dict[str, str]] = {}  # each server's environment


def _env(serve_dir: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a command for the server at ``serve_dir``: the one it was started with
    (a variable another test sets later must not make it decline), or this process's."""
    base = STARTED_WITH.get(Path(serve_dir), os.environ) if str(serve_dir) != "0" else os.environ
    env = {k: v for k, v in base.items() if k != server.ENV_SERVE}
    env[server.ENV_SERVE] = str(serve_dir)
    env.update(extra)
    return env


# Commands and servers run in an empty folder unless a test names one: ``python -m emogram`` in a
# checkout would import the checkout's emogram, not the installed one the tests import, and a server
# rightly declines another emogram.
NEUTRAL = Path(tempfile.mkdtemp(prefix="emogram-neutral-"))


def emogram(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emogram", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or NEUTRAL, timeout=300)


def start(serve_dir: Path, *extra: str) -> subprocess.Popen:
    STARTED_WITH[serve_dir] = _env(serve_dir)
    proc = subprocess.Popen([sys.executable, "-m", "emogram", "serve", *extra], env=STARTED_WITH[serve_dir], cwd=NEUTRAL,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()  # "ready ..." once the model is loaded and warm
    assert "listening on" in line, line + proc.stderr.read()
    return proc


@pytest.fixture(scope="module")
def serve_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    folder.chmod(0o700)
    proc = start(folder, "--idle", "10")
    yield folder
    emogram(["serve", "--stop"], _env(folder))
    proc.wait(timeout=60)


def served(result: subprocess.CompletedProcess) -> bool:
    return "served by:" in result.stderr


def test_a_served_answer_is_the_commands_own(serve_dir):
    args = ["how tides work", "--seed", "3", "-f", "json"]
    here = emogram(args, _env("0"))
    there = emogram(args, _env(serve_dir))
    assert here.returncode == there.returncode == 0, here.stderr + there.stderr
    assert there.stdout == here.stdout
    check = emogram(["how tides work", "--seed", "3", "-v"], _env(serve_dir))
    assert check.returncode == 0 and served(check), check.stderr
    assert "process so far:" in check.stderr  # the command's own total, added by the command
    assert check.stdout.strip() == str(json.loads(here.stdout)["text"]).strip()


HEAVY = ("numpy", "lark", "emoji", "llama_cpp", "emogram.decoding", "emogram.option_table")


def test_a_served_command_imports_nothing_heavy(serve_dir):
    """A served command only sends its arguments: importing the engine would cost it 0.2 s of CPU
    (the whole of a served answer), paid again by every command of a busy server's queue, on the
    cores the server answers with."""
    probe = ("import os, sys\nfrom emogram import cli\n"
             "code = cli.main(['how tides work', '--seed', '3', '-v'])\n"
             "sys.stdout.flush()\n"
             "os.write(2, ('\\nMODULES ' + ' '.join(sorted(sys.modules))).encode())\nsys.exit(code)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_env(serve_dir),
                         cwd=NEUTRAL, timeout=300)
    assert run.returncode == 0 and served(run), run.stderr
    modules = run.stderr.rsplit("MODULES ", 1)[1].split()
    assert run.stdout.strip() and not [m for m in modules if m.startswith(HEAVY)], modules


def test_errors_and_exit_codes_are_the_commands_own(serve_dir):
    for args, code in ((["   "], 1), (["tides", "--bogus"], 2), (["tides", "--max-tokens", "0"], 1)):
        here, there = emogram(args, _env("0")), emogram(args, _env(serve_dir))
        assert (there.returncode, there.stdout, there.stderr) == (here.returncode, here.stdout, here.stderr)
        assert there.returncode == code


def test_a_relative_model_path_is_the_commands(serve_dir, tmp_path):
    (tmp_path / "mine.gguf").symlink_to(models.resolve("gemma3-270m").path)
    args = ["--model", "mine.gguf", "--no-adapter", "bees", "--seed", "2", "-v"]
    there = emogram(args, _env(serve_dir), cwd=tmp_path)
    here = emogram(args, _env("0"), cwd=tmp_path)
    assert there.returncode == 0 and served(there), there.stderr
    assert there.stdout == here.stdout


def test_other_settings_are_answered_here(serve_dir):
    result = emogram(["tides", "--seed", "1", "-v"], _env(serve_dir, EMOGRAM_PROMPT_CACHE="0"))
    assert result.returncode == 0 and result.stdout.strip() and not served(result)


def _raw(serve_dir: Path, payload: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(serve_dir / server.SOCKET_NAME))
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        return [json.loads(line) for line in conn.makefile("r", encoding="utf-8")]


def test_what_the_server_must_not_answer_is_declined(serve_dir):
    good = {"identity": server.identity(), "settings": server.settings(STARTED_WITH[serve_dir]),
            "argv": ["tides", "--seed", "1"], "cwd": str(NEUTRAL), "tty": [False, False]}
    assert _raw(serve_dir, json.dumps(good).encode() + b"\n")[-1] == {"exit": 0, "timings": False}
    for change in ({"identity": "another emogram"}, {"settings": {"EMOGRAM_MODEL": "x"}},
                   {"argv": ["batch", "topics.txt"]}, {"argv": ["serve"]}, {"argv": "tides"},
                   {"cwd": "/no/such/folder"}, {"tty": None}):
        frames = _raw(serve_dir, json.dumps({**good, **change}).encode() + b"\n")
        assert len(frames) == 1 and "declined" in frames[0], (change, frames)
    for junk in (b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b""):
        frames = _raw(serve_dir, junk)
        assert len(frames) == 1 and "declined" in frames[0], (junk, frames)
    assert served(emogram(["tides", "--seed", "1", "-v"], _env(serve_dir)))  # still serving


def test_a_silent_connection_does_not_hold_the_server(serve_dir):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(serve_dir / server.SOCKET_NAME))  # connected, and says nothing
        start = time.monotonic()
        result = emogram(["tides", "--seed", "1", "-v"], _env(serve_dir))
        assert result.returncode == 0 and served(result), result.stderr
        assert time.monotonic() - start < server.READ_SECONDS + 60
        assert silent.recv(4096).startswith(b'{"declined"')  # given up on, with a word


def test_a_directory_others_may_write_to_is_not_used(tmp_path):
    tmp_path.chmod(0o777)
    try:
        with pytest.raises(InputError, match="not a private directory"):
            server.Server(lambda a: 0, lambda a: True, tmp_path / server.SOCKET_NAME)
        assert server.ask_at(tmp_path / server.SOCKET_NAME, ["tides"]) is None
    finally:
        tmp_path.chmod(0o700)


def test_a_stale_socket_is_harmless_and_the_server_stops_when_idle(tmp_path):
    tmp_path.chmod(0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / server.SOCKET_NAME))  # a socket file with nobody listening
    stale.close()
    result = emogram(["tides", "--seed", "1", "-v"], _env(tmp_path))
    assert result.returncode == 0 and result.stdout.strip() and not served(result)
    proc = start(tmp_path, "--idle", "0.02")  # replaces the stale socket; 1.2 s idle
    assert proc.wait(timeout=60) == 0
    assert "idle" in proc.stderr.read()
    assert not (tmp_path / server.SOCKET_NAME).exists()


def test_stop(tmp_path):
    tmp_path.chmod(0o700)
    proc = start(tmp_path, "--idle", "10")
    with pytest.raises(InputError, match="already listens"):
        server.Server(lambda a: 0, lambda a: True, tmp_path / server.SOCKET_NAME)
    stopped = emogram(["serve", "--stop"], _env(tmp_path))
    assert stopped.returncode == 0, stopped.stderr
    assert proc.wait(timeout=60) == 0
    assert not (tmp_path / server.SOCKET_NAME).exists()
    again = emogram(["serve", "--stop"], _env(tmp_path))
    assert again.returncode == 1 and "no server" in again.stderr


def test_a_bad_idle_time_is_a_usage_error(tmp_path):
    tmp_path.chmod(0o700)
    for value in ("nan", "inf", "-1"):
        result = emogram(["serve", "--idle", value], _env(tmp_path))
        assert result.returncode == 1 and "emogram: error: --idle must be" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
