"""Check the ceiling answers (bench/references/ceiling_answers.json): every topic of ceiling.json
answered once, each answer valid emogram text (emogram.parse) of Emoji 15.1 or older.

    PYTHONPATH=. python bench/check_ceiling.py
"""
import json
import sys
from pathlib import Path

REFS = Path(__file__).resolve().parent / "references"


def main() -> int:
    from emogram import EmojiFilter, parse
    allowed = set(EmojiFilter(max_version=15.1).select())
    topics = [it["topic"] for it in json.loads((REFS / "ceiling.json").read_text(encoding="utf-8"))["items"]]
    answers = json.loads((REFS / "ceiling_answers.json").read_text(encoding="utf-8"))["answers"]
    bad = 0
    for t in topics:
        if t not in answers:
            print(f"missing: {t!r}")
            bad += 1
            continue
        try:
            tree = parse(answers[t])
        except Exception as exc:  # noqa: BLE001 - reported
            print(f"{t!r}: not emogram text: {exc}")
            bad += 1
            continue
        late = [e.char for line in tree.lines for g in line.groups for e in g.emoji if e.char not in allowed]
        if late:
            print(f"{t!r}: newer than Emoji 15.1: {' '.join(late)}")
            bad += 1
    extra = set(answers) - set(topics)
    for t in sorted(extra):
        print(f"not a ceiling topic: {t!r}")
        bad += 1
    print(f"{len(answers)} answers, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
