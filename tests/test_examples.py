"""Every script in examples/ runs, end to end, with the embedded model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {
        "explain_transformers.py", "streaming.py", "batch_glossary.py", "palette.py", "custom_model.py"}


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
