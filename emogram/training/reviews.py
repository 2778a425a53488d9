"""What the bank's two reviews share (``bank.py``'s fact review, ``bank_emoji.py``'s emoji review):
reading a reviewer's JSONL file, and the checks every decision on a line must pass."""

from __future__ import annotations

import json
from pathlib import Path


def read_jsonl(path: Path) -> list[tuple[int, dict | None, str]]:
    """(line number, object or None when not a JSON object, the error) for each non-blank line; none
    when the file does not exist."""
    out: list[tuple[int, dict | None, str]] = []
    if not path.is_file():
        return out
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
        except ValueError as exc:
            out.append((n, None, f"not JSON ({exc})"))
            continue
        out.append((n, d, "") if isinstance(d, dict) else (n, None, "not a JSON object"))
    return out


def decision_problems(d: dict, *, line_problem: str | None, seen: set, actions: tuple[str, str]) -> list[str]:
    """What is wrong with one decision ``{"line", "action", "why", ...}``: ``line_problem`` says what
    is wrong with its line (None: it names a line under review), ``seen`` holds the lines decided
    already, ``actions`` the two a decision may take ("fix" first)."""
    line, action = d.get("line"), d.get("action")
    problems = []
    if line_problem is not None:
        problems.append(line_problem)
    elif line in seen:
        problems.append(f"line {line} has a decision already")
    if action not in actions:
        problems.append(f'action must be "{actions[0]}" or "{actions[1]}"')
    if not str(d.get("why", "")).strip():
        problems.append("say why")
    return problems
