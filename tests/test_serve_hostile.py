"""The hostile-client suite for ``emogram serve`` (issue 30), over the loopback Unix socket only and
bounded in count and time: silent, slow-drip, oversized, deeply nested and NUL-laden requests, a
request whose answer fails inside, 16 well-behaved commands at once beside 50 silent connections
and a slow-drip one, a server that takes connections and never answers, a command waiting behind a
long answer (while the server works, and while it is stuck), and SIGTERM, SIGINT and SIGKILL in the
middle of an answer.

What is measured, and held: every well-behaved command prints the correct answer (the one this
process computes itself, seed for seed), served or answered in its own process within its deadline;
no exit code lies (0 only with the whole answer); the server is alive after every probe except the
signals, which stop it (SIGTERM: exit 0, SIGINT: 130, its socket removed) or kill it (SIGKILL);
its memory stays flat under the barrage. The times of the barrage are ``bench/hostile_serve.py``'s
to report; nothing here asserts a speed.

Real processes throughout: the servers (the default model and adapter) and the commands."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emogram import server

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or not Path("/proc/self/stat").exists(),
                                reason="needs Unix sockets and /proc")
NEUTRAL = Path(tempfile.mkdtemp(prefix="emogram-neutral-"))  # python -m emogram imports the installed one
SHORT = ["--lines", "1", "--steps", "1", "--emoji-per-group", "1", "--no-stream"]
TOPICS = [("tides", 1), ("bees", 2), ("volcanoes", 3), ("how the heart works", 4)]
LONG = ("the history of rome", ["--lines", "4", "--steps", "3", "--seed", "1"])  # the issue's own
SILENT = 50


def env_for(folder: Path | str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != server.ENV_SERVE}, server.ENV_SERVE: str(folder)}


def command(args: list[str], folder: Path | str, python: str = sys.executable, timeout: float = 300):
    return subprocess.run([python, "-m", "emogram", *args], capture_output=True, text=True, env=env_for(folder),
                          cwd=NEUTRAL, timeout=timeout)


def launch(args: list[str], folder: Path | str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emogram", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for(folder), cwd=NEUTRAL)


class Served:
    """A real ``emogram serve`` in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        folder.chmod(0o700)
        self.folder, self.socket = folder, folder / server.SOCKET_NAME
        self.proc = subprocess.Popen([sys.executable, "-m", "emogram", "serve", "--idle", "5"], env=env_for(folder),
                                     cwd=NEUTRAL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        assert "listening on" in line, line + self.proc.stderr.read()

    def alive(self) -> bool:
        return self.proc.poll() is None and self.socket.exists()

    def cpu(self) -> int:
        """User and system clock ticks the server has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def answering(self, limit: float = 120) -> None:
        """Wait until the server spends CPU: it is in the middle of an answer."""
        start, end = self.cpu(), time.monotonic() + limit
        while self.cpu() < start + 10:  # 0.1 s of CPU: an answer under way, not a request read
            assert time.monotonic() < end and self.proc.poll() is None, "the server never began"
            time.sleep(0.01)

    def stop(self) -> str:
        if self.proc.poll() is None:
            command(["serve", "--stop"], self.folder, timeout=60)
        self.proc.wait(timeout=60)
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def references() -> dict[tuple[str, int], str]:
    """The answers this process gives itself: what every command must print, served or not."""
    from emogram import Explainer
    explainer = Explainer()
    out = {(topic, seed): f"{explainer.explain(topic, seed=seed, lines=1, steps=1, emoji_per_group=1)}\n"
           for topic, seed in TOPICS}
    out[(LONG[0], 1)] = f"{explainer.explain(LONG[0], seed=1, lines=4, steps=3)}\n"
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve"))
    yield s
    s.stop()


def is_served(result: subprocess.CompletedProcess) -> bool:
    return "served by:" in result.stderr


def raw(s: Served, payload: bytes, *, shut: bool = True, limit: float = 30) -> list[dict]:
    """The frames the server sends for ``payload`` (sent whole, then the writing end shut)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(limit)
        conn.connect(str(s.socket))
        try:
            conn.sendall(payload)
            if shut:
                conn.shutdown(socket.SHUT_WR)
        except OSError:  # refused before the end (too large): what did it say?
            pass
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return [json.loads(line) for line in data.splitlines()]


def request(argv: list[str], **change) -> bytes:
    body = {"identity": server.identity(), "settings": server.settings(env_for("x")), "argv": argv,
            "cwd": str(NEUTRAL), "tty": [False, False], **change}
    return json.dumps(body).encode() + b"\n"


class Drip(threading.Thread):
    """A client that sends a good request one byte a ``pause``: it would take ``len / pause``
    seconds; the server's deadline for the whole request ends it long before."""

    def __init__(self, s: Served, pause: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.s, self.pause, self.sent, self.said, self.cut = s, pause, 0, b"", False

    def run(self) -> None:
        payload = request(["tides", "--seed", "1"])
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(self.s.socket))
            conn.settimeout(self.pause)
            try:
                for byte in payload:
                    conn.sendall(bytes([byte]))
                    self.sent += 1
                    try:
                        self.said += conn.recv(4096)
                        self.cut = True  # the server spoke (declined) or closed: given up on
                        return
                    except socket.timeout:
                        continue
            except OSError:
                self.cut = True


def silent_connections(s: Served, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(s.socket))
        out.append(conn)
    return out


def nested_gguf(path: Path) -> Path:
    inner = struct.pack("<IQ", 4, 1) + b"\0\0\0\0"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 1) + b"x" + struct.pack("<I", 9)
                     + struct.pack("<IQ", 9, 1) * 100_000 + inner + bytes(64))
    return path


# --- requests that once stopped or held the server -------------------------------------------------

def test_no_request_stops_or_holds_the_server(served, tmp_path):
    silent = silent_connections(served, 1)[0]
    drip = Drip(served)
    drip.start()
    probes = {
        "nested": b"[" * 200_000 + b"\n",
        "nested object": b'{"a":' * 100_000 + b"\n",
        "NUL in cwd": request(["tides"], cwd="/tmp/\x00x"),
        "NUL in argv": request(["tides\x00", "--seed", "1"]),
        "oversized": b"x" * (2 * server.MAX_REQUEST),
        "not UTF-8": b"\xff\xfe\xfd\n",
        "a cwd not a path": request(["tides"], cwd=["/"]),
        "a relative cwd": request(["tides"], cwd="relative"),
    }
    for name, payload in probes.items():
        frames = raw(served, payload)
        assert frames and "declined" in frames[0], (name, frames)
        assert served.alive(), name
    # a request the server takes, whose answer fails inside the command: a one-line typed error
    frames = raw(served, request(["tea", "--adapter", str(nested_gguf(tmp_path / "nested.gguf"))]))
    assert frames[-1] == {"exit": 1, "timings": False}, frames
    errors = "".join(f.get("err", "") for f in frames)
    assert errors.startswith("emogram: error:") and "nests arrays" in errors and "Traceback" not in errors
    assert served.alive()
    # the silent connection and the slow drip are given up on: each within its one deadline
    silent.settimeout(server.READ_SECONDS + 30)
    assert silent.recv(4096).startswith(b'{"declined"')
    silent.close()
    drip.join(timeout=server.READ_SECONDS + 30)
    assert drip.cut and drip.sent < len(request(["tides", "--seed", "1"])), (drip.sent, drip.said)
    result = command(["tides", "--seed", "1", "-v"], served.folder)
    assert result.returncode == 0 and is_served(result), result.stderr[-2000:]


def test_python_and_python3_are_one_interpreter(served):
    """``python -m emogram`` is served by a server that ``python3`` runs (the resolved interpreter is
    compared, not the path it was called by)."""
    folder = Path(sys.executable).parent
    other = folder / ("python" if Path(sys.executable).name != "python" else "python3")
    if not other.exists() or os.path.realpath(other) != os.path.realpath(sys.executable):
        pytest.skip(f"no second name for {sys.executable}")
    result = command(["tides", "--seed", "1", "-v"], served.folder, python=str(other))
    assert result.returncode == 0 and is_served(result), result.stderr[-2000:]


def test_sixteen_commands_beside_fifty_silent_connections_and_a_drip(served, references):
    for topic, seed in TOPICS:  # each answer once alone: what an answer itself keeps is kept by now
        warm = raw(served, request([topic, "--seed", str(seed), *SHORT]))
        assert warm[-1] == {"exit": 0, "timings": False}, warm
    before = served.rss_mb()
    silent = silent_connections(served, SILENT)
    drip = Drip(served, pause=1.0)
    drip.start()
    jobs = [TOPICS[k % len(TOPICS)] for k in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda job: command([job[0], "--seed", str(job[1]), *SHORT, "-v"], served.folder,
                                                    timeout=240), jobs))  # bounded: a held server fails here
    for job, result in zip(jobs, results):
        assert result.returncode == 0, (job, result.stderr[-2000:])
        assert result.stdout == references[job], (job, result.stdout, references[job])
    assert sum(map(is_served, results)) >= 1  # the server answered through the barrage
    assert served.alive()
    for conn in silent:  # each given up on, with a word
        conn.settimeout(server.READ_SECONDS + 30)
        assert conn.recv(4096).startswith(b'{"declined"')
        conn.close()
    drip.join(timeout=server.READ_SECONDS + 30)
    assert drip.cut
    print(f"server RSS {before:.0f} MB before, {served.rss_mb():.0f} MB after")
    assert served.rss_mb() - before < 64, (before, served.rss_mb())


def test_a_command_never_waits_on_a_server_that_does_not_answer(tmp_path, references):
    """A socket that takes connections and never answers (a wedged server): the command answers
    itself once its own deadline passes."""
    tmp_path.chmod(0o700)
    wedged = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    wedged.bind(str(tmp_path / server.SOCKET_NAME))
    wedged.listen(4)  # and never accepts
    try:
        result = command(["tides", "--seed", "1", *SHORT, "-v"], tmp_path, timeout=120)
    finally:
        wedged.close()
    assert result.returncode == 0 and not is_served(result), result.stderr[-2000:]
    assert result.stdout == references[("tides", 1)]


def test_a_waiting_command_waits_while_the_server_works_not_while_it_is_stuck(tmp_path):
    """The command's deadline in the queue restarts each time the server says it works (it used CPU
    since its last word), so a busy machine does not send every waiting command off to load the
    model itself; a server stuck without using CPU says nothing, and the command answers itself.
    A ``server.Server`` of this process whose command burns CPU (or sleeps) for 4 s, and a command
    in a child process whose deadline in the queue is 2.5 s (the server says it works every second)."""
    tmp_path.chmod(0o700)
    from emogram.cli import _explains

    def run(argv: list[str]) -> int:
        end = time.monotonic() + 4
        while time.monotonic() < end:
            if argv[0] == "sleep":
                time.sleep(0.05)
        sys.stdout.write("answered\n")
        return 0
    s = server.Server(run, _explains, tmp_path / server.SOCKET_NAME, idle_minutes=0)
    thread = threading.Thread(target=s.serve_forever, args=(io.StringIO(),), daemon=True)
    thread.start()
    code = ("import sys; from pathlib import Path; from emogram import server\n"
            f"print(server.ask_at(Path({str(tmp_path / server.SOCKET_NAME)!r}), ['tides'], start_seconds=2.5))\n")
    said = {}
    try:
        for first in ("burn", "sleep"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ahead:
                ahead.connect(str(s.path))
                ahead.sendall(request([first, "--seed", "1"], cwd=str(tmp_path)))
                reader = ahead.makefile("rb")
                assert json.loads(reader.readline()) == {"queued": 0}
                assert json.loads(reader.readline()) == {"started": True}  # the 4 s have begun
                child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=NEUTRAL,
                                       env=env_for(tmp_path), timeout=120)
                said[first] = child.stdout.strip().splitlines()[-1:], child.stderr
                reader.read()  # to its end: the next probe starts with an idle server
    finally:
        s._stopping.set()
        s._queue.put(server._STOP)
        thread.join(timeout=30)
    assert said["burn"][0] == ["(0, False)"], said["burn"]  # waited, and was served
    assert said["sleep"][0] == ["None"], said["sleep"]  # gave up: this process answers


# --- signals in the middle of an answer -----------------------------------------------------------

def _mid_answer(s: Served, sig: int, args: list[str]) -> subprocess.CompletedProcess:
    client = launch(args, s.folder)
    s.answering()
    s.proc.send_signal(sig)
    out, err = client.communicate(timeout=300)
    return subprocess.CompletedProcess(client.args, client.returncode, out, err)


def _truthful(result: subprocess.CompletedProcess, reference: str) -> None:
    """Exit 0 with the whole answer, or non-zero saying the answer was cut: never 0 with a cut one."""
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    if result.returncode == 0:
        assert result.stdout == reference, (result.stdout, reference)
    else:
        assert result.returncode == 1 and "stopped before the answer was complete" in result.stderr
        assert reference.startswith(result.stdout.rstrip("\n"))


def test_sigterm_mid_answer_stops_the_server_and_the_command_says_the_truth(tmp_path, references):
    s = Served(tmp_path)
    result = _mid_answer(s, signal.SIGTERM, [LONG[0], *LONG[1], "--no-stream"])
    # nothing was printed yet (--no-stream): the command answers itself, whole
    assert result.returncode == 0 and result.stdout == references[(LONG[0], 1)], result.stderr[-2000:]
    assert s.proc.wait(timeout=60) == 0
    said = s.proc.stderr.read()
    assert "SIGTERM, stopping" in said and "Traceback" not in said, said
    assert not s.socket.exists()


def test_ctrl_c_mid_answer_stops_the_server_as_the_readme_says(tmp_path, references):
    s = Served(tmp_path)
    result = _mid_answer(s, signal.SIGINT, [LONG[0], *LONG[1]])  # streamed: perhaps cut
    _truthful(result, references[(LONG[0], 1)])
    assert s.proc.wait(timeout=60) == 130
    said = s.proc.stderr.read()
    assert "SIGINT, stopping" in said and "Traceback" not in said, said
    assert not s.socket.exists()


def test_sigkill_mid_answer_leaves_the_command_to_answer_itself(served, references):
    """The last of the module: the module's server is killed."""
    result = _mid_answer(served, signal.SIGKILL, [LONG[0], *LONG[1], "--no-stream"])
    assert result.returncode == 0 and result.stdout == references[(LONG[0], 1)], result.stderr[-2000:]
    assert served.proc.wait(timeout=60) == -signal.SIGKILL
    after = command(["tides", "--seed", "1", *SHORT], served.folder)  # a stale socket: answered here
    assert after.returncode == 0 and after.stdout.strip()
