"""The benchmark scripts keep up with the library and stay findable: every script in ``bench/`` (in
its folders too) answers ``--help`` with its usage, quickly and without measuring anything; every
module the scripts share imports; ``bench/README.md`` lists each one. ``bench/speed.py``, the
llguidance comparison and ``extra_bufts.py`` once called model methods that a refactor had removed,
and nothing noticed; ``profile_constraint.py --report`` once looked for a function the engine split
had removed and printed "0 samples"."""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
DATA = ("results", "references")  # what the scripts read and write, not scripts
# what needs a package the test extra does not install
OPTIONAL = {"llg/compare.py": "llguidance", "llg/checks.py": "llguidance", "llg/constraint.py": "llguidance"}


def bench_files(root: Path = BENCH) -> list[str]:
    """Every script and shared module under ``root``, as a path relative to it."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix in (".py", ".sh")
                  and p.relative_to(root).parts[0] not in DATA and "__pycache__" not in p.parts)


def is_script(path: Path) -> bool:
    """A script runs on its own (shell, or a ``__main__`` guard); the rest are modules scripts share."""
    return path.suffix == ".sh" or 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")


def help_problem(path: Path) -> str | None:
    """Why ``path --help`` is not a quick usage message, or None when it is."""
    cmd = ["bash", str(path)] if path.suffix == ".sh" else [sys.executable, str(path)]
    try:
        out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60, cwd=path.parent)
    except subprocess.TimeoutExpired:
        return "--help ran for over 60 s: it runs the benchmark instead of printing its usage"
    if out.returncode != 0:
        return f"--help exited {out.returncode}: {out.stderr[-2000:]}"
    if "usage:" not in out.stdout:
        return f"--help printed no usage: {out.stdout[-500:]!r}"
    return None


def needs(name: str) -> None:
    package = OPTIONAL.get(name)
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"bench/{name} needs {package} (the bench extra)")


SCRIPTS = [name for name in bench_files() if is_script(BENCH / name)]
MODULES = [name for name in bench_files() if not is_script(BENCH / name)]


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_bench_script_prints_its_usage(name):
    needs(name)
    assert help_problem(BENCH / name) is None


@pytest.mark.parametrize("name", MODULES)
def test_each_module_the_scripts_share_imports(name):
    needs(name)
    path = BENCH / name
    code = f"import sys; sys.path.insert(0, {str(path.parent)!r}); import {path.stem}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def index_entries(readme: str) -> set[str]:
    """The paths ``bench/README.md``'s index names, one per table row: ``| `speed.py` | ...``."""
    return set(re.findall(r"^\|\s*`([^`]+\.(?:py|sh))`", readme, flags=re.M))


def test_the_index_lists_every_script_and_nothing_else():
    listed = index_entries((BENCH / "README.md").read_text(encoding="utf-8"))
    assert set(bench_files()) - listed == set(), "add these to bench/README.md"
    assert listed - set(bench_files()) == set(), "bench/README.md lists scripts that are gone"


def test_the_checks_see_a_script_that_ignores_help_and_one_left_out_of_the_index(tmp_path):
    """Controls: a script without argument parsing, one that fails on import, and one the index
    does not list are each caught."""
    (tmp_path / "runs.py").write_text('if __name__ == "__main__":\n    print("measuring...")\n')
    (tmp_path / "broken.py").write_text("from emogram.decoding.engine import _split_prompt\n"
                                        'if __name__ == "__main__":\n    pass\n')
    (tmp_path / "fine.sh").write_text('[ "$1" = --help ] && echo "usage: fine.sh" && exit 0\nexit 1\n')
    assert "no usage" in help_problem(tmp_path / "runs.py")
    assert "_split_prompt" in help_problem(tmp_path / "broken.py")
    assert help_problem(tmp_path / "fine.sh") is None
    assert set(bench_files(tmp_path)) - index_entries("| `fine.sh` | x |\n| `runs.py` | y |\n") == {"broken.py"}


def test_the_constraint_profile_counts_the_per_token_step(tmp_path):
    """``profile_constraint.py --report`` on a made-up py-spy profile: samples under the answer's
    per-token step count by what ran under it, reading the logits and other phases' steps do not."""
    from emogram.decoding.sequence import EmojiPhase
    lines, first = inspect.getsourcelines(EmojiPhase.step)
    inside, before = first + 3, first - 5  # a line of the step's body; one above it (another method)
    top = "process 1;thread (0x1);_run (emogram/decoding/scheduler.py:150);_decode (emogram/decoding/scheduler.py:330)"
    step = f"step (/repo/emogram/decoding/sequence.py:{inside})"
    raw = "\n".join([
        f"{top};{step};_choose (/repo/emogram/decoding/sequence.py:230) 30",
        f"{top};{step};accept (/repo/emogram/constraint/judge.py:50) 10",
        f"{top};{step} 5",  # the step's own line: C calls
        f"{top};{step};candidates (/repo/emogram/decoding/scheduler.py:65) 100",  # the logits
        f"{top};step (/repo/emogram/decoding/sequence.py:{before});_finish (x.py:1) 7",  # not the step
        f"{top};decode (emogram/backend/context.py:90) 40",  # the forward pass
    ]) + "\n"
    (tmp_path / "emogram.raw").write_text(raw, encoding="utf-8")
    out = subprocess.run([sys.executable, str(BENCH / "profile_constraint.py"), "--report",
                          str(tmp_path / "emogram.raw")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "45 samples in the per-token step" in out.stdout
    assert re.search(r"66\.7%\s+_choose\(\)", out.stdout) and re.search(r"22\.2%\s+accept\(\)", out.stdout)
    assert f"line {inside}:" in out.stdout
    (tmp_path / "elsewhere.raw").write_text(f"{top};decode (emogram/backend/context.py:90) 40\n", encoding="utf-8")
    none = subprocess.run([sys.executable, str(BENCH / "profile_constraint.py"), "--report",
                           str(tmp_path / "elsewhere.raw")], capture_output=True, text=True, timeout=120)
    assert none.returncode == 1 and "no sample is inside EmojiPhase.step" in none.stderr
