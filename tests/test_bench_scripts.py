"""The benchmark scripts keep up with the library: each one imports, and the plain decode loop they
share (``bench/single.py``) gives llama.cpp's own numbers. ``bench/speed.py``, ``llg.py`` and
``extra_bufts.py`` once called model methods that a refactor had removed, and nothing noticed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))
# scripts that need a package the test extra does not install
OPTIONAL = {"llg": "llguidance", "llg_checks": "llguidance", "llg_constraint": "llguidance"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_bench_script_imports(name):
    needs = OPTIONAL.get(name)
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{name}.py needs {needs}")
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import {name}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_scripts_import_check_sees_a_broken_import(tmp_path):
    """Control: a script importing a name the library no longer has fails the check's command."""
    (tmp_path / "broken.py").write_text("from emogram.decoding.engine import _split_prompt\n")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import broken"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "_split_prompt" in out.stderr


def same(x: np.ndarray, y: np.ndarray) -> bool:
    return int(np.argmax(x)) == int(np.argmax(y)) and float(np.max(np.abs(x - y))) < 0.05


@pytest.fixture(scope="module")
def single():
    sys.path.insert(0, str(BENCH))
    import single
    return single


def test_single_sequence_reuses_a_shared_prefix_and_gets_fresh_numbers(smol, single):
    """Prefilling a prompt that shares a prefix with what the sequence holds keeps those cells and
    evaluates the rest: the logits, and those after a pushed token, match a fresh sequence's (to
    rounding: a prompt evaluated in two decodes sums in another order than in one)."""
    a = smol.tokenize("Emoji explanations.\nTopic: rain\nEmoji:", add_special=True)
    b = smol.tokenize("Emoji explanations.\nTopic: snow and ice\nEmoji:", add_special=True)
    reused, fresh = single.SingleSequence(smol, 512), single.SingleSequence(smol, 512)
    try:
        reused.prefill(a)
        reused.push(int(np.argmax(reused.logits())))
        reused.prefill(b)  # shares "Emoji explanations.\nTopic:" with a
        fresh.prefill(b)
        assert same(reused.logits(), fresh.logits())
        reused.prefill(b)  # the very same prompt: its last token is evaluated again
        assert same(reused.logits(), fresh.logits())
        token = int(np.argmax(fresh.logits()))
        reused.push(token)
        fresh.push(token)
        assert same(reused.logits(), fresh.logits())
        assert reused.held == fresh.held == b + [token]
    finally:
        reused.close()
        fresh.close()
