"""The bank's emoji pass: new emoji for reviewed entries, the words kept, so that a reader who sees
only the emoji sees the mechanism.

Blind readers rated answers that followed a bank entry "related emoji, no explanation": the
entries' words were right, but most parts showed one plain emoji ("stick when oxygen low: 🔗"),
where a strong model composes two or three ("🩸🔗"). This pass redraws the emoji of the bank's
topics to explain. The words, the separators and the order are the reviewed facts and may not
change; a second, independent reviewer checks every redrawn line's emoji before it ships.

    python -m emogram.training.bank emoji-todo 6           # deal the bank's entries into 6 lanes' work lists
    python -m emogram.training.bank_emoji check E1         # a writer's lane file, one line a problem
    python -m emogram.training.bank_emoji check-review E1  # the reviewer's decisions on it
    python -m emogram.training.bank_emoji show E1 1 200    # work-list lines 1-200: old and new emoji

Files, in ``data/bank/emoji/``:

* ``todo/E<n>.jsonl``: a lane's work list, entries as the bank has them, in an order drawn by a
  hash of the topic, so that a lane done in part covers every domain alike;
* ``E<n>.jsonl``: the writer's new emoji, ``{"line": N, "emoji": ["🩸🔗", ...]}``, one group a part,
  for work-list line N, in the work list's order (a line left out keeps its emoji);
* ``reviews/E<n>.jsonl`` (and ``reviews/E<n>-<k>.jsonl`` for a second reviewer of the same lane,
  who takes a later stretch of it): the reviewer's decisions: ``{"through": N}`` once every redrawn
  line up to work-list line N is reviewed (``{"from": M, "through": N}``: lines M to N), and for each
  that fails ``{"line": N, "action": "fix", "emoji":
  [...], "why": "..."}`` or ``{"line": N, "action": "revert", "why": "..."}`` (keep the old emoji).

Only reviewed lines ship (those inside a ``from``-``through`` stretch). ``python -m emogram.training.bank build``
applies them (``apply``) and lists the counts and every review decision in ``data/bank/EMOJI.md``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import corpus as corpus_module
from .corpus import Entry, allowed_emoji, load, split_glossed
from .evaluation import checkout
from .reviews import decision_problems, read_jsonl

def emoji_dir() -> Path:
    return checkout("data/bank") / "emoji"


def skeleton(answer: str) -> tuple[tuple[str | None, str], ...]:
    """What the pass may not change: each part's separator and words, in order."""
    return tuple((p.op, p.words) for p in split_glossed(answer))


def _order(topic: str) -> str:
    return hashlib.sha256(topic.encode("utf-8")).hexdigest()


def make_todo(entries: list[Entry], lanes: int, skip: tuple[str, ...] = ()) -> list[list[Entry]]:
    """The topics to explain dealt into ``lanes`` work lists, each in hash order."""
    todo = sorted((e for e in entries if e.kind == "explain" and e.topic not in skip), key=lambda e: _order(e.topic))
    return [todo[k::lanes] for k in range(lanes)]


def redrawn(answer: str, groups: object) -> str:
    """``answer`` with each part's emoji replaced by ``groups`` (one string a part, in order);
    ``ValueError`` when they do not fit it."""
    parts = split_glossed(answer)
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError("emoji must be a list of strings, one group a part")
    if len(groups) != len(parts):
        raise ValueError(f"{len(groups)} groups for {len(parts)} parts")
    out = []
    for p, g in zip(parts, groups):
        if p.op is not None:
            out.append(f" {p.op} ")
        out.append(f"{p.words}: {g}")
    return "".join(out)


def _problems(old: str, groups: object, allowed) -> list[str]:
    try:
        new = redrawn(old, groups)
        if skeleton(new) != skeleton(old):
            return ["a group holds a separator or a colon: only emoji, no spaces"]
    except ValueError as exc:
        return [str(exc)]
    return corpus_module.check(Entry("t", "explain", new), allowed, min_explain=3)


def _todo(directory: Path, lane: str) -> list[Entry]:
    return load(directory / "todo" / f"{lane}.jsonl")


def check(lane: str, directory: Path | None = None) -> int:
    """A writer's lane file against its work list; prints one line a problem."""
    directory = directory or emoji_dir()
    todo = _todo(directory, lane)
    path = directory / f"{lane}.jsonl"
    allowed, last, bad, count = allowed_emoji(), 0, 0, 0
    for n, d, err in read_jsonl(path):
        count += 1
        problems = [err] if d is None else []
        if d is not None:
            line = d.get("line")
            if not isinstance(line, int) or not 1 <= line <= len(todo):
                problems.append(f"line must be a work-list line, 1 to {len(todo)}")
            elif line <= last:
                problems.append(f"line {line} comes after line {last}: keep the work list's order, once each")
            else:
                problems += _problems(todo[line - 1].answer, d.get("emoji"), allowed)
                last = line
        for p in problems:
            print(f"{path}:{n}: {p}")
            bad += 1
    print(f"{path}: {count} lines (work list up to line {last}), {bad} problems", file=sys.stderr)
    return 1 if bad else 0


@dataclass
class Pass:
    """The emoji pass as reviewed: new answers by topic, and what the review decided."""
    answers: dict[str, str] = field(default_factory=dict)
    written: int = 0        # lines the writers redrew
    reviewed: int = 0       # of them, lines a reviewer has read
    decisions: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # lane, topic, action, answer, why


def reviewed_pass(directory: Path | None = None) -> Pass:
    """Every lane's reviewed lines, the reviewer's fixes in and reverts out."""
    directory = directory or emoji_dir()
    result = Pass()
    for path in sorted(directory.glob("E*.jsonl")):
        todo = _todo(directory, path.stem)
        written = {d["line"]: d.get("emoji") for _, d, _ in read_jsonl(path)
                   if d is not None and isinstance(d.get("line"), int) and 1 <= d["line"] <= len(todo)}
        result.written += len(written)
        stretches, decisions = [], {}
        for review in _review_files(directory, path.stem):
            for _, d, _ in read_jsonl(review):
                if d is not None and isinstance(d.get("through"), int):
                    stretches.append((d.get("from", 1) if isinstance(d.get("from", 1), int) else 1, d["through"]))
                elif d is not None and isinstance(d.get("line"), int):
                    decisions[d["line"]] = d
        for line, groups in sorted(written.items()):
            if not any(first <= line <= last for first, last in stretches):
                continue
            result.reviewed += 1
            old = todo[line - 1]
            decision = decisions.get(line)
            if decision is not None:
                action, why = str(decision.get("action")), str(decision.get("why", ""))
                shown = ""
                if action == "fix":
                    groups = decision.get("emoji")
                    shown = " ".join(map(str, groups)) if isinstance(groups, list) else str(groups)
                result.decisions.append((path.stem, old.topic, action, shown, why))
                if action != "fix":
                    continue
            try:
                result.answers[old.topic] = redrawn(old.answer, groups)
            except ValueError:
                continue  # the checks name it; the entry keeps its emoji
    return result


def apply(entries: list[Entry], emoji_pass: Pass) -> tuple[list[Entry], int, list[tuple[str, str]]]:
    """The entries with their reviewed new emoji: (entries, how many changed, refused as (topic,
    why)). A new answer is refused when the entry's words changed since, or it fails the checks."""
    allowed, out, changed, refused = allowed_emoji(), [], 0, []
    for e in entries:
        new = emoji_pass.answers.get(e.topic)
        if new is None or new == e.answer:
            out.append(e)
            continue
        try:
            problems = [] if skeleton(new) == skeleton(e.answer) else ["the entry's words changed since"]
        except ValueError as exc:
            problems = [str(exc)]
        problems = problems or corpus_module.check(Entry(e.topic, e.kind, new), allowed, min_explain=3)
        if problems:
            refused.append((e.topic, "; ".join(problems)))
            out.append(e)
            continue
        out.append(Entry(e.topic, e.kind, new, e.writer, e.domain))
        changed += 1
    return out, changed, refused


def markdown(emoji_pass: Pass, changed: int, refused: list[tuple[str, str]]) -> str:
    lines = ["# The bank's emoji pass", "",
             "Generated by `python -m emogram.training.bank build` from `data/bank/emoji/` "
             "(`emogram/training/bank_emoji.py` says how it works); do not edit.", "",
             f"- lines redrawn by the writers: {emoji_pass.written}",
             f"- of them, read by a reviewer: {emoji_pass.reviewed}",
             f"- review decisions: {sum(d[2] == 'fix' for d in emoji_pass.decisions)} fixed, "
             f"{sum(d[2] == 'revert' for d in emoji_pass.decisions)} reverted to the old emoji",
             f"- entries of the bank with new emoji: {changed}",
             f"- refused by the build (words changed since, or a check failed): {len(refused)}", "",
             "| lane | topic | decision | emoji | why |", "|---|---|---|---|---|"]
    lines += [f"| {lane} | {topic} | {action} | {answer} | {why} |".replace("\n", " ")
              for lane, topic, action, answer, why in emoji_pass.decisions]
    lines += [f"| | {topic} | refused by the build | | {why} |" for topic, why in refused]
    return "\n".join(lines) + "\n"


def _review_files(directory: Path, lane: str) -> list[Path]:
    """A lane's review files, the first reviewer's first: a later reader's decision on a line wins."""
    reviews = directory / "reviews"
    return [p for p in [reviews / f"{lane}.jsonl", *sorted(reviews.glob(f"{lane}-*.jsonl"))] if p.is_file()]


def check_review(lane: str, directory: Path | None = None) -> int:
    """A reviewer's decisions on a lane (``E1``, or ``E1-2`` for a second reviewer's file): each
    names a redrawn line, says why, and a fix passes."""
    directory = directory or emoji_dir()
    todo = _todo(directory, lane.split("-")[0])
    written = {d["line"] for _, d, _ in read_jsonl(directory / f"{lane.split('-')[0]}.jsonl")
               if d is not None and isinstance(d.get("line"), int) and 1 <= d["line"] <= len(todo)}
    path = directory / "reviews" / f"{lane}.jsonl"
    allowed, bad = allowed_emoji(), 0
    seen: set[object] = set()
    for n, d, err in read_jsonl(path):
        problems = [err] if d is None else []
        if d is not None and "through" in d:
            first = d.get("from", 1)
            if not isinstance(d["through"], int) or not 0 < d["through"] <= max(written, default=0):
                problems.append(f"through must be 1 to {max(written, default=0)}, the writer's last line so far")
            elif not isinstance(first, int) or not 1 <= first <= d["through"]:
                problems.append("from must be a work-list line, at most through")
        elif d is not None:
            line, action = d.get("line"), d.get("action")
            problems += decision_problems(d, seen=seen, actions=("fix", "revert"), line_problem=None
                                          if line in written else f"line {line!r} is not a line the writer redrew")
            if action == "fix" and not problems and isinstance(line, int):
                problems += _problems(todo[line - 1].answer, d.get("emoji"), allowed)
            seen.add(line)
        for p in problems:
            print(f"{path}:{n}: {p}")
            bad += 1
    print(f"{path}: {len(seen)} decisions on {len(written)} redrawn lines, {bad} problems", file=sys.stderr)
    return 1 if bad else 0


def show(lane: str, first: int, last: int, directory: Path | None = None) -> None:
    """For a reviewer: each redrawn line in a range of the work list, its words with old and new emoji."""
    directory = directory or emoji_dir()
    todo = _todo(directory, lane)
    for _, d, _ in read_jsonl(directory / f"{lane}.jsonl"):
        if d is None:
            continue
        line, groups = d.get("line"), d.get("emoji")
        if not isinstance(line, int) or not first <= line <= last or not 1 <= line <= len(todo):
            continue
        e = todo[line - 1]
        parts = split_glossed(e.answer)
        groups = groups if isinstance(groups, list) else []
        shown = " | ".join(f"{p.words}: {p.group} => {g}" for p, g in zip(parts, groups))
        print(f"{line}\t{e.topic}\t{shown}")


def write_todo(entries: list[Entry], lanes: int, skip: tuple[str, ...] = ()) -> None:
    """The work lists (``todo/E<n>.jsonl``) for ``entries``, the shipped bank as it is before a pass."""
    directory = emoji_dir() / "todo"
    directory.mkdir(parents=True, exist_ok=True)
    for k, lane in enumerate(make_todo(entries, lanes, skip), 1):
        text = "".join(json.dumps({"topic": e.topic, "kind": e.kind, "answer": e.answer}, ensure_ascii=False) + "\n"
                       for e in lane)
        (directory / f"E{k}.jsonl").write_text(text, encoding="utf-8")
        print(f"todo/E{k}.jsonl: {len(lane)} entries", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check"] and len(args) == 2:
        return check(args[1])
    if args[:1] == ["check-review"] and len(args) == 2:
        return check_review(args[1])
    if args[:1] == ["show"] and len(args) == 4 and args[2].isdigit() and args[3].isdigit():
        show(args[1], int(args[2]), int(args[3]))
        return 0
    print("\n".join(__doc__.strip().splitlines()[10:13]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
