"""Every script in examples/ runs, end to end, with the embedded model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {
        "explain_transformers.py", "streaming.py", "batch_glossary.py", "palette.py", "custom_model.py",
        "async_server.py"}


@pytest.mark.parametrize("script, args, expect", [
    ("explain_transformers.py", (), "tokens/s"),
    ("streaming.py", ("volcanoes",), "emoji in"),
    ("palette.py", (), "palette:"),
    ("custom_model.py", (), "model:"),
])
def test_example_runs(tmp_path, script, args, expect):
    out = run(script, *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout
    assert "Traceback" not in out.stderr


def test_batch_glossary_writes_markdown_and_html(tmp_path):
    out = run("batch_glossary.py", str(tmp_path / "glossary.md"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "glossary.md").read_text(encoding="utf-8")
    assert text.count("\n| ") >= 6
    assert len(list(tmp_path.glob("glossary-*.html"))) == 5


async def _get(port: int, path: str, *, hang_up: bool = False) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    if hang_up:  # a client that leaves half way through its answer
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(1)
        writer.close()
        return "", ""
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode().splitlines()[0], body.decode()


def test_async_server_streams_concurrent_requests(tmp_path, gemma):
    """Three clients streaming at once (and one leaving half way) each get exactly the text of a
    lone same-seed call."""
    from emogram import Explainer
    asks = [("photosynthesis", 1), ("black holes", 2), ("volcanoes", 4)]
    ex = Explainer("gemma3-270m")
    twins = [str(ex.explain(topic, seed=seed)) for topic, seed in asks]
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "async_server.py"), "--model", "gemma3-270m",
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    try:
        line = server.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), server.stderr.read()
        port = int(line.rsplit(":", 1)[1])

        async def clients():
            leaving = _get(port, "/stream?" + urlencode({"topic": "the history of the universe",
                                                         "seed": 3, "lines": 4, "steps": 3}), hang_up=True)
            streams = [_get(port, "/stream?" + urlencode({"topic": t, "seed": s})) for t, s in asks]
            return await asyncio.wait_for(asyncio.gather(leaving, *streams), 300)

        _, *answers = asyncio.run(clients())
        assert answers == [("HTTP/1.1 200 OK", text) for text in twins]
        status, body = asyncio.run(_get(port, "/explain?" + urlencode({"topic": "volcanoes", "seed": 4})))
        assert status == "HTTP/1.1 200 OK" and json.loads(body)["text"] == twins[2]
        status, body = asyncio.run(_get(port, "/stream?topic=tea&lines=99"))
        assert status == "HTTP/1.1 400 Bad Request" and "lines" in body
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "Traceback" not in err


def test_the_seed_example_names_the_mechanism_in_order(tmp_path):
    """The seed's question: tokens, positions, attention and stacked layers, in that order, and the
    bank entry it followed."""
    out = run("explain_transformers.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = next(line for line in out.stdout.splitlines() if line.startswith("plan: "))
    at = [plan.index(word) for word in ("tokens", "positions", "attention", "stacked layers")]
    assert at == sorted(at)
    assert "source (followed): transformers (machine learning)" in out.stdout
