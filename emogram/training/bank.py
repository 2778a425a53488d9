"""Building the shipped explanation bank (``emogram/knowledge/bank.jsonl.gz``) from what the writers
wrote and the reviewers decided.

    python -m emogram.training.bank build     # corpus + data/bank/writers + reviews -> the bank
    python -m emogram.training.bank stats     # counts by domain and kind
    python -m emogram.training.bank check-review B1   # a reviewer's decisions on writer B1's file
    python -m emogram.training.bank emoji-todo 6      # the emoji pass's work lists (bank_emoji.py)

Inputs, all in the checkout:

* ``data/corpus/corpus.jsonl``: the teaching corpus (its lines come first);
* ``data/bank/writers/*.jsonl``: the bank writers' lines (``data/bank/BRIEF.md``, ``PLAN.md``);
* ``data/bank/reviews/*.jsonl``: a second, independent reviewer's decision on each writer line that
  failed the review: ``{"line": N, "action": "fix", "answer": "...", "why": "..."}`` (a corrected
  answer, optionally a corrected ``topic``) or ``{"line": N, "action": "remove", "why": "..."}``.
  A review file has the writer file's name.
* ``data/bank/emoji/``: the emoji pass, new emoji for the same words, reviewed (``bank_emoji.py``).

Every line is then checked as the corpus's are (format, inventory, decodable words, no twin topic,
no evaluation topic); ``data/bank/REMOVED.md`` lists what the review and the checks removed, and
why, ``data/bank/REVIEW.md`` what the review fixed and ``data/bank/EMOJI.md`` what the emoji pass
changed. The written file is byte-for-byte the same
for the same inputs (``tests/knowledge/test_bank_data.py`` fails when it is stale).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from pathlib import Path

from . import bank_emoji
from . import corpus as corpus_module
from .corpus import Entry, dumps, load
from .evaluation import checkout
from .reviews import decision_problems, read_jsonl

BANK_DIR = checkout("data/bank")
OUT = Path(__file__).resolve().parents[1] / "knowledge" / "bank.jsonl.gz"
MAINTAINERS = "B0"  # the writer file of entries the maintainers wrote themselves
SEED_TOPICS = ("transformers (machine learning)",)  # the seed video's question: the product's own
#                                                     demo (issue #29), not a quality evaluation


def reviewed(writer_file: Path, reviews_dir: Path) -> tuple[list[Entry], list[tuple[Entry, str]], list[tuple[Entry, Entry, str]]]:
    """A writer's lines after the review: (kept, removed with why, fixed as (before, after, why))."""
    lines = load(writer_file)
    decisions: dict[int, dict] = {}
    review = reviews_dir / writer_file.name
    for n, d, err in read_jsonl(review):
        if d is None or not isinstance(d.get("line"), int) or d.get("action") not in ("fix", "remove"):
            raise ValueError(f"{review}:{n}: a decision needs an int line and action fix or remove ({err or d})")
        decisions[d["line"]] = d
    kept, removed, fixed = [], [], []
    for n, e in enumerate(lines, 1):
        e = Entry(e.topic, e.kind, e.answer, e.writer or writer_file.stem, e.domain)
        d = decisions.get(n)
        if d is None:
            kept.append(e)
        elif d["action"] == "remove":
            removed.append((e, "review: " + str(d.get("why", ""))))
        else:
            after = Entry(d.get("topic", e.topic), e.kind, d["answer"], e.writer, e.domain)
            fixed.append((e, after, str(d.get("why", ""))))
            kept.append(after)
    return kept, removed, fixed


def build(tokenize=None, is_word=None, max_tokens: int = 6):
    from .evaluation import evaluation_topics
    staging = BANK_DIR / ".staging"
    staging.mkdir(exist_ok=True)
    files = [corpus_module.CORPUS_DIR / "corpus.jsonl"]
    review_removed, review_fixed = [], []
    writers = sorted((BANK_DIR / "writers").glob("*.jsonl"))
    for path in writers:
        kept, removed, fixed = reviewed(path, BANK_DIR / "reviews")
        review_removed += removed
        review_fixed += fixed
        out = staging / path.name
        out.write_text("".join(dumps(e) + "\n" for e in kept), encoding="utf-8")
        # the maintainers' file (B0) leads: its senses are the more-asked ones and win their twins
        files.insert(0, out) if path.stem == MAINTAINERS else files.append(out)
    built = corpus_module.build(files, evaluation_topics(), tokenize, is_word, max_tokens, ordered=True,
                                keep=SEED_TOPICS)
    for f in files:
        if f.parent == staging:
            f.unlink()
    staging.rmdir()
    built.removed[:0] = review_removed
    emoji_pass = bank_emoji.reviewed_pass()
    built.kept, changed, refused = bank_emoji.apply(built.kept, emoji_pass)
    return built, review_fixed, bank_emoji.markdown(emoji_pass, changed, refused)


def rendered(built, fixed, emoji: str) -> dict[Path, bytes]:
    """What ``build`` writes: the shipped bank, REMOVED.md, REVIEW.md and EMOJI.md, as bytes by path."""
    data = "".join(dumps(e) + "\n" for e in built.kept).encode("utf-8")
    removed = corpus_module.removed_markdown(built, "the bank", "python -m emogram.training.bank build")
    lines = ["# Entries the review fixed", "", "Generated by `python -m emogram.training.bank build` from "
             "`data/bank/reviews/`; do not edit.", "", f"{len(fixed)} entries fixed.", "",
             "| writer | topic | before | after | why |", "|---|---|---|---|---|"]
    lines += [f"| {a.writer} | {a.topic} | {a.answer} | {b.answer} | {why} |".replace("\n", " ")
              for a, b, why in fixed]
    return {OUT: gzip.compress(data, compresslevel=9, mtime=0),
            BANK_DIR / "REMOVED.md": removed.encode("utf-8"),
            BANK_DIR / "REVIEW.md": ("\n".join(lines) + "\n").encode("utf-8"),
            BANK_DIR / "EMOJI.md": emoji.encode("utf-8")}


def write(built, fixed, emoji: str) -> None:
    for path, data in rendered(built, fixed, emoji).items():
        path.write_bytes(data)


def build_default():
    """The shipped bank, checked with the default model's tokenizer."""
    from emogram.backend.llama import Model
    from emogram.backend.models import resolve
    from emogram.decoding.gloss_words import WORD_TOKENS, is_word_token
    model = Model(resolve().path, device="cpu")
    try:
        return build(model.tokenize, is_word_token(model.pieces(), model.control_mask()), WORD_TOKENS)
    finally:
        model.close()


def check_review(name: str) -> int:
    """A reviewer's file (data/bank/reviews/NAME.jsonl) against its writer's: every decision names a
    line of it, says why, and a fixed answer passes the bank's checks. Prints one line a problem."""
    writer = BANK_DIR / "writers" / f"{name}.jsonl"
    review = BANK_DIR / "reviews" / f"{name}.jsonl"
    lines = load(writer)
    bad = seen = 0
    lines_seen: set[int] = set()
    for n, d, err in read_jsonl(review):
        seen += 1
        if d is None:
            print(f"{review}:{n}: {err}")
            bad += 1
            continue
        line, action = d.get("line"), d.get("action")
        in_file = isinstance(line, int) and 1 <= line <= len(lines)
        problems = decision_problems(d, seen=lines_seen, actions=("fix", "remove"),
                                     line_problem=None if in_file else f"line must be 1 to {len(lines)}")
        if action == "fix" and not problems and isinstance(line, int):
            e = lines[line - 1]
            fixed = Entry(d.get("topic", e.topic), e.kind, str(d.get("answer", "")), e.writer, e.domain)
            problems += corpus_module.check(corpus_module.plain(fixed), corpus_module.allowed_emoji(), min_explain=3)
        if isinstance(line, int):
            lines_seen.add(line)
        for p in problems:
            print(f"{review}:{n}: {p}")
            bad += 1
    print(f"{review}: {seen} decisions on {len(lines)} lines, {bad} problems", file=sys.stderr)
    return 1 if bad else 0


def stats(entries) -> str:
    kinds = Counter(e.kind for e in entries)
    domains = Counter(e.domain or "?" for e in entries)
    rows = [f"{len(entries)} entries: " + ", ".join(f"{v} {k}" for k, v in kinds.most_common())]
    rows += [f"  {v:6d} {k}" for k, v in domains.most_common()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build"]:
        built, fixed, emoji = build_default()
        write(built, fixed, emoji)
        print(f"bank: {len(built.kept)} entries kept, {len(built.removed)} removed, {len(fixed)} fixed "
              f"by the review ({OUT.name}, data/bank/REMOVED.md, data/bank/REVIEW.md)", file=sys.stderr)
        return 0
    if args[:1] == ["check-review"] and len(args) == 2:
        return check_review(args[1])
    if args[:1] == ["emoji-todo"] and len(args) == 2 and args[1].isdigit():
        entries = [e for e in load(OUT) if e.writer != MAINTAINERS]
        bank_emoji.write_todo(entries, int(args[1]), SEED_TOPICS)
        return 0
    if args[:1] == ["stats"]:
        entries = [Entry(d["topic"], d["kind"], d["answer"], d.get("writer", ""), d.get("domain", ""))
                   for d in map(json.loads, gzip.decompress(OUT.read_bytes()).decode().splitlines())]
        print(stats(entries))
        return 0
    print("\n".join(__doc__.strip().splitlines()[2:7]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
