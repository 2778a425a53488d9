"""Shared by the batch tests: generic topics, the batch command as a process, record checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import emoji

from emogram import parse

THINGS = ["a kettle", "a bridge", "a garden", "a library", "a bicycle", "a volcano", "a lighthouse",
          "a bakery", "a river", "a market", "a telescope", "a violin", "a glacier", "a harbour",
          "a forest", "a museum", "a kite", "a compass", "a beehive", "a windmill"]
ANGLES = ["how {} works", "the history of {}", "building {}", "{} at night", "{} in winter",
          "cleaning {}", "drawing {}", "{} in a big city", "a child visiting {}", "repairing {}"]

# Short answers keep 200-topic tests within a few minutes on two cores.
FAST = ["--lines", "1", "--steps", "1-2", "--seed", "5"]


def generic_topics(n: int) -> list[str]:
    topics = [angle.format(thing) for angle in ANGLES for thing in THINGS]
    assert n <= len(topics)
    return topics[:n]


def batch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "emogram", "batch", *args]


def run_batch(*args: str, cwd: Path, input: str | None = None, timeout: int = 600
              ) -> subprocess.CompletedProcess:
    return subprocess.run(batch_command(*args), cwd=cwd, input=input, capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def assert_valid(record: dict) -> None:
    assert record["error"] is None, record
    text = record["text"]
    assert str(parse(text)) == text
    assert emoji.purely_emoji(text.replace(" ", "").replace("\n", ""))
    assert record["gloss"] and record["timings"]["eval_tokens"] > 0


def wait_for_lines(path: Path, n: int, process: subprocess.Popen, timeout: float = 300) -> int:
    """Wait until ``path`` holds at least ``n`` complete lines; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = path.read_bytes().count(b"\n") if path.exists() else 0
        if count >= n:
            return count
        assert process.poll() is None, f"the batch ended early:\n{process.stderr.read() if process.stderr else ''}"
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines in {timeout} s")


def descendants(pid: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of every process under ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append((child, commands.get(child, "")))
                frontier.append(child)
    return found
