"""The documentation as users meet it: the site builds with ``mkdocs build --strict`` (broken links
and missing references fail), every ```python block of README.md and docs/*.md runs, every
``emogram`` command of a shell block is parsed by the command's own argparse parsers, every
``bench/``, ``examples/`` and ``tests/`` script the pages cite exists, and the README stays a front
door. So a renamed option or script cannot survive in the docs.

A block preceded by ``<!-- not-run: reason -->`` is not run (files or a cluster the reader brings);
a shell command with a ``...`` argument is a placeholder and is not parsed. Blocks that need a model
load the real default model, once for the file."""

from __future__ import annotations

import argparse
import os
import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(\S.*?)\s*-->")
FENCE = re.compile(r"^(`{3,})(\w*)\s*$")
SHELLS = {"sh", "bash", "console", "shell"}
CITED_SCRIPT = re.compile(r"(?<![\w/.])((?:bench|examples|tests)/[\w./-]*?\.(?:py|sh))\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason given in a preceding <!-- not-run: ... --> comment

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, in order."""
    found, lines, i = [], page.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, lang, start = opening.group(1), opening.group(2).lower(), i
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        reason = NOT_RUN.search(before)
        found.append(Block(page, start + 1, lang, "\n".join(lines[start + 1:i]) + "\n",
                           reason.group(1) if reason else None))
        i += 1
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang in ("python", "py")]
SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in SHELLS]


def shell_commands(block: Block) -> list[str]:
    """The command lines of a shell block: ``$ `` lines of a console session (the rest is output),
    every line of a script; backslash continuations joined."""
    text = block.code.replace("\\\n", " ")
    if block.lang == "console":
        return [line[2:] for line in text.splitlines() if line.startswith("$ ")]
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def emogram_invocations(command: str) -> list[list[str]]:
    """The argument lists given to ``emogram`` (or ``python -m emogram``) in one shell line: split at
    pipes and ``&&``/``;``/``&``, with redirections and leading ``VAR=value`` settings dropped."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments, current, tokens = [], [], list(lexer)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("|", "||", "&&", ";", "&"):
            segments.append(current)
            current = []
        elif token in (">", ">>", "<", ">&", "&>"):
            if current and current[-1].isdigit():  # 2> file
                current.pop()
            i += 1  # the target
        else:
            current.append(token)
        i += 1
    segments.append(current)
    found = []
    for words in segments:
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        if words[:1] == ["emogram"]:
            found.append(words[1:])
        elif words[:3] in (["python", "-m", "emogram"], ["python3", "-m", "emogram"]):
            found.append(words[3:])
    return found


class Parsed(Exception):
    """Raised by the real parser's ``parse_args`` once the arguments parsed: the command stops there,
    before any model work."""

    def __init__(self, prog: str, namespace: argparse.Namespace):
        super().__init__(prog)
        self.prog, self.namespace = prog, namespace


def parse_only(args: list[str], monkeypatch, capsys) -> Parsed:
    """Run the ``emogram`` command in this process up to its own argparse parse, and stop there. A
    flag or value the parser refuses is argparse's usage error (SystemExit 2), reported as a
    failure with argparse's message."""
    from emogram import cli

    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(self.prog, real(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setenv("EMOGRAM_SERVE", "0")  # never hand the command to a running server
    try:
        cli.main(args)
    except Parsed as parsed:
        return parsed
    except SystemExit as exc:
        pytest.fail(f"emogram {shlex.join(args)}: the parser refused it (exit {exc.code}): "
                    f"{capsys.readouterr().err.strip()}")
    pytest.fail(f"emogram {shlex.join(args)}: finished without parsing its arguments with argparse")


# -- the site --------------------------------------------------------------------------------------

def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict``: a broken link, a missing API reference or a failed hook fails."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8").count(
        'id="emogram.api.explain"') == 1


# -- the README -----------------------------------------------------------------------------------

def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_keeps_the_ci_commands():
    """.ci/run runs exactly the README's Quick start commands."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ('pip install . && emogram "transformers"', 'pip install ".[test]" && pytest'):
        assert command in readme


# -- the blocks ------------------------------------------------------------------------------------

def test_blocks_are_found():
    """The fence reader sees the pages' blocks (a reader that saw none would pass every test)."""
    assert len(PYTHON_BLOCKS) >= 5 and len(SHELL_BLOCKS) >= 10
    assert sum(b.not_run is not None for b in PYTHON_BLOCKS) <= len(PYTHON_BLOCKS) // 2


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.where)
def test_python_block_runs(block, tmp_path, monkeypatch):
    if block.not_run:
        pytest.skip(f"marked not-run: {block.not_run}")
    monkeypatch.chdir(tmp_path)  # whatever a block writes stays out of the checkout
    exec(compile(block.code, block.where, "exec"), {"__name__": "__docs__"})


SHELL_COMMANDS = [(b, command) for b in SHELL_BLOCKS for command in shell_commands(b)]
EMOGRAM_COMMANDS = [(b, args) for b, command in SHELL_COMMANDS for args in emogram_invocations(command)
                    if "..." not in args]


@pytest.mark.parametrize("block,args", EMOGRAM_COMMANDS,
                         ids=[f"{b.where} {shlex.join(a)[:60]}" for b, a in EMOGRAM_COMMANDS])
def test_emogram_command_parses(block, args, monkeypatch, capsys):
    parse_only(args, monkeypatch, capsys)


def test_shell_blocks_hold_emogram_commands():
    assert len(EMOGRAM_COMMANDS) >= 30


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_scripts_exist(page):
    """Every bench/, examples/ and tests/ script a page names, in prose or in a block, exists."""
    text = page.read_text(encoding="utf-8")
    missing = sorted({path for path in CITED_SCRIPT.findall(text) if not (ROOT / path).is_file()})
    assert not missing, f"{page.relative_to(ROOT)} cites scripts that do not exist: {missing}"


# -- the checks themselves -------------------------------------------------------------------------

def test_a_renamed_flag_fails_the_parse(monkeypatch, capsys):
    """The check bites: a flag the parser does not know is refused, in every command."""
    for args in (["tea", "--emoji-versions", "12.0"], ["batch", "t.txt", "--processes", "2"],
                 ["grammar", "--rows", "1-2"], ["serve", "--timeout", "3"]):
        with pytest.raises(pytest.fail.Exception, match="refused"):
            parse_only(args, monkeypatch, capsys)
    parsed = parse_only(["tea", "--lines", "2-3", "--seed", "7"], monkeypatch, capsys)
    assert parsed.namespace.lines == (2, 3) and parsed.namespace.seed == 7


def test_shell_lines_are_split_like_a_shell():
    assert emogram_invocations('cat topics.txt | emogram batch --lines 1-2 > out.jsonl') == [
        ["batch", "--lines", "1-2"]]
    assert emogram_invocations('pip install . && emogram "transformers"   # install') == [["transformers"]]
    assert emogram_invocations("EMOGRAM_SERVE=0 python -m emogram tea 2> err.txt &") == [["tea"]]
    assert emogram_invocations("pytest tests/test_docs.py") == []


PYTHON_MODULES = sorted({m.group(1) for _, command in SHELL_COMMANDS
                         for m in re.finditer(r"python3? -m (emogram[\w.]*)", command)})


@pytest.mark.parametrize("module", PYTHON_MODULES)
def test_cited_module_exists(module):
    """``python -m emogram.x.y`` in a shell block names a module that exists."""
    assert importlib.util.find_spec(module) is not None, f"no module {module}"


# -- printed answers -------------------------------------------------------------------------------

def console_outputs() -> list[tuple[Block, list[str], str]]:
    """``$ emogram ... --seed N`` lines of console blocks that show what they print: (block, args,
    the printed text). A seed fixes the answer, so the page can be checked against the real one."""
    found = []
    for block in SHELL_BLOCKS:
        if block.lang != "console":
            continue
        lines = block.code.splitlines()
        for i, line in enumerate(lines):
            invocations = emogram_invocations(line[2:]) if line.startswith("$ ") else []
            if len(invocations) != 1 or "--seed" not in invocations[0]:
                continue
            shown = []
            for after in lines[i + 1:]:
                if after.startswith("$ "):
                    break
                shown.append(after)
            if any(s.strip() for s in shown):
                found.append((block, invocations[0], "\n".join(shown).strip()))
    return found


CONSOLE_OUTPUTS = console_outputs()


def test_console_outputs_are_found():
    assert len(CONSOLE_OUTPUTS) >= 3  # the README's hero


@pytest.mark.parametrize("block,args,shown", CONSOLE_OUTPUTS,
                         ids=[f"{b.where} {shlex.join(a)[:60]}" for b, a, _ in CONSOLE_OUTPUTS])
def test_console_output_is_what_the_command_prints(block, args, shown, monkeypatch, capsys):
    """The hero's answers are real: the command, run here, prints exactly what the page shows. Seeded
    texts depend on the CPU's SIMD paths, so they are compared on the CPU the seed-twin fixtures were
    recorded on (tests/test_seed_twins.py) and skipped elsewhere."""
    import json

    from emogram import cli
    from emogram.backend.library import system_info

    fixture = json.loads((ROOT / "tests" / "fixtures" / "seed_twins_bank.json").read_text(encoding="utf-8"))
    if " ".join(system_info().split()).rstrip(" |") not in fixture["machines"]:
        pytest.skip("the pages' seeded answers were recorded on another CPU")
    monkeypatch.setenv("EMOGRAM_SERVE", "0")  # this process answers, not a running server
    capsys.readouterr()
    assert cli.main(args) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == shown, f"{block.where}: `emogram {shlex.join(args)}` prints\n{printed}"
