"""The type check: mypy over ``emogram/`` with the settings in pyproject.toml, no errors.

It is what makes the backend contract (``decoding/model_protocol.py``) binding: llama.cpp's model
is checked against the protocol the engine is typed with. The control plants a model that lost a
method the contract names, in a copy of the sources, and sees mypy say so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "pyproject.toml"


def mypy(package: Path, cache: Path) -> tuple[str, int]:
    out, err, status = api.run(["--config-file", str(CONFIG), "--cache-dir", str(cache),
                                "--no-error-summary", str(package)])
    return out + err, status


def test_the_package_type_checks():
    report, status = mypy(ROOT / "emogram", ROOT / ".mypy_cache")
    assert status == 0, report


def test_a_model_that_breaks_the_backend_contract_is_seen(tmp_path):
    """Control: ``llama.Model`` without ``new_context`` no longer keeps the contract."""
    copy = tmp_path / "emogram"
    shutil.copytree(ROOT / "emogram", copy, ignore=shutil.ignore_patterns("*.so", "*.gguf", "*.gz", "__pycache__"))
    llama = copy / "backend" / "llama.py"
    text = llama.read_text(encoding="utf-8")
    assert "    def new_context(" in text
    llama.write_text(text.replace("    def new_context(", "    def _renamed_context("), encoding="utf-8")
    report, status = mypy(copy, tmp_path / "cache")
    assert status != 0
    assert "model_protocol.py" in report and "BackendModel" in report, report
