"""Blind readings against the ceiling (issue #29): emogram's answers beside a strong model's, and
beside emogram's own without the bank, A/B shuffled, for fresh readers.

    python bench/ceiling_blind.py check                # the strong model's answers are valid emogram text
    python bench/ceiling_blind.py answers              # emogram's answers (bank and no bank), ~5 min
    python bench/ceiling_blind.py answers --before bench/results/ceiling-2026-12-07-first/emogram_answers.json
                                                       # (b) against those recorded answers instead
    python bench/ceiling_blind.py sheet                # the reading sheet and its key (seeded)
    python bench/ceiling_blind.py score RATINGS.json...  # counts per comparison and reader

Comparisons (each a list of pairs; which answer is A is drawn by the seed, half each way):
  (a) ceiling    the ceiling set's 100 held-out topics (bench/references/ceiling.json, none in the
                 bank): emogram (default, with the bank) against the strong model's answer
                 (ceiling_answers.json, written from the topic and the format rules alone)
  (b) before     the same topics: emogram against emogram with bank=False (main before the bank;
                 --before FILE takes them from an earlier run, e.g. one with the adapter of then)
  (c) bank       paraphrased bank topics (held-out half of paraphrases.json, the first 60 whose
                 entry is in the bank): emogram against the strong model's answer to the same query
                 (ceiling_paraphrase_answers.json)

A reader rates every answer 2 (shows the main parts or stages in a sensible order), 1 (related
emoji, no explanation) or 0 (off topic, filler, or misleading), and says which of the pair is
better (A, B or tie), in one JSON file: {"ratings": [{"id": ..., "A": 2, "B": 1, "better": "A"}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFS = HERE / "references"
OUT = HERE / "results" / "ceiling"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

RUBRIC = ("2 = shows the main parts or stages of the topic in a sensible order; 1 = related emoji, "
          "but no explanation; 0 = off topic, filler, or misleading")
N_PARAPHRASES = 60


def paraphrase_items() -> list[dict]:
    from bank_recall import half_of
    from emogram.knowledge.bank import shipped_entries
    topics = {e.topic for e in shipped_entries()}
    items = json.loads((REFS / "paraphrases.json").read_text(encoding="utf-8"))["items"]
    strong = json.loads((REFS / "ceiling_paraphrase_answers.json").read_text(encoding="utf-8"))["answers"]
    return [it for it in items if half_of(it["query"]) == "held-out" and it["topic"] in topics
            and it["query"] in strong][:N_PARAPHRASES]


def check(args) -> int:
    """Every topic of ceiling.json answered once in ceiling_answers.json, each answer valid emogram
    text (emogram.parse) of Emoji 15.1 or older (what emogram itself may write by default)."""
    from emogram import EmogramError, EmojiFilter, parse
    allowed = set(EmojiFilter(max_version=15.1).select())
    topics = [it["topic"] for it in json.loads((REFS / "ceiling.json").read_text(encoding="utf-8"))["items"]]
    strong = json.loads((REFS / "ceiling_answers.json").read_text(encoding="utf-8"))["answers"]
    problems = [f"missing: {t!r}" for t in topics if t not in strong]
    problems += [f"not a ceiling topic: {t!r}" for t in sorted(set(strong) - set(topics))]
    for t in (t for t in topics if t in strong):
        try:
            tree = parse(strong[t])
        except EmogramError as exc:
            problems.append(f"{t!r}: not emogram text: {exc}")
            continue
        late = [e.char for line in tree.lines for g in line.groups for e in g.emoji if e.char not in allowed]
        if late:
            problems.append(f"{t!r}: newer than Emoji 15.1: {' '.join(late)}")
    print("".join(f"{line}\n" for line in problems) + f"{len(strong)} answers, {len(problems)} problems")
    return 1 if problems else 0


def answers(args) -> int:
    import time
    from emogram import Explainer
    ex = Explainer()
    ceiling = [it["topic"] for it in json.loads((REFS / "ceiling.json").read_text(encoding="utf-8"))["items"]]
    out: dict = {"ceiling": {}, "before": {}, "bank": {}}
    started = time.perf_counter()
    before = json.loads(Path(args.before).read_text(encoding="utf-8"))["before"] if args.before else None
    for t in ceiling:
        e = ex.explain(t, seed=0)
        out["ceiling"][t] = {"text": str(e), "plan": list(e.plan), "sources": [s.to_dict() for s in e.sources]}
        if before is not None:
            out["before"][t] = before[t]
            continue
        e = ex.explain(t, seed=0, bank=False)
        out["before"][t] = {"text": str(e), "plan": list(e.plan)}
    for it in paraphrase_items():
        e = ex.explain(it["query"], seed=0)
        out["bank"][it["query"]] = {"text": str(e), "plan": list(e.plan), "topic": it["topic"],
                                    "sources": [s.to_dict() for s in e.sources]}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "emogram_answers.json").write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"answers: {sum(len(v) for v in out.values())} in {time.perf_counter() - started:.0f} s "
          f"({OUT / 'emogram_answers.json'})")
    return 0


def gloss(text: str) -> str:
    from emogram import parse
    return parse(text).gloss() if text else "(no answer)"


def sheet(args) -> int:
    ours = json.loads((OUT / "emogram_answers.json").read_text(encoding="utf-8"))
    strong = json.loads((REFS / "ceiling_answers.json").read_text(encoding="utf-8"))["answers"]
    strong_para = json.loads((REFS / "ceiling_paraphrase_answers.json").read_text(encoding="utf-8"))["answers"]
    rng = random.Random(args.seed)
    pairs, key = [], {}
    for comparison, topics, other in (("a", ours["ceiling"], lambda t: strong[t]),
                                      ("b", ours["before"], lambda t: ours["before"][t]["text"]),
                                      ("c", ours["bank"], lambda t: strong_para[t])):
        for n, topic in enumerate(topics, 1):
            mine = (ours["ceiling"] if comparison == "b" else topics)[topic]["text"]
            theirs = other(topic)
            flip = rng.random() < 0.5
            a, b = (theirs, mine) if flip else (mine, theirs)
            pid = f"{comparison}{n:03d}"
            key[pid] = {"comparison": comparison, "topic": topic, "A": "other" if flip else "emogram",
                        "B": "emogram" if flip else "other"}
            pairs.append({"id": pid, "topic": topic, "A": a, "A_names": gloss(a), "B": b, "B_names": gloss(b)})
    rng.shuffle(pairs)
    for n, pair in enumerate(pairs, 1):  # ids that say nothing of the comparison
        key[f"p{n:03d}"] = key.pop(pair["id"])
        pair["id"] = f"p{n:03d}"
    (OUT / "sheet.json").write_text(json.dumps({"rubric": RUBRIC, "pairs": pairs}, ensure_ascii=False, indent=1),
                                    encoding="utf-8")
    (OUT / "key.json").write_text(json.dumps(key, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"sheet: {len(pairs)} pairs ({OUT / 'sheet.json'}); key apart ({OUT / 'key.json'})")
    return 0


def score(args) -> int:
    key = json.loads((OUT / "key.json").read_text(encoding="utf-8"))
    names = {"a": "(a) emogram vs the ceiling, held-out topics no entry covers",
             "b": "(b) emogram vs emogram without the bank, the same topics",
             "c": "(c) emogram vs the ceiling, paraphrased bank topics"}
    for path in args.ratings:
        ratings = json.loads(Path(path).read_text(encoding="utf-8"))["ratings"]
        print(f"\n{Path(path).name}")
        for comparison in "abc":
            rows = [r for r in ratings if key.get(r["id"], {}).get("comparison") == comparison]
            if not rows:
                continue
            mine = {0: 0, 1: 0, 2: 0}
            theirs = {0: 0, 1: 0, 2: 0}
            won = tied = lost = 0
            for r in rows:
                k = key[r["id"]]
                side = "A" if k["A"] == "emogram" else "B"
                other = "B" if side == "A" else "A"
                mine[int(r[side])] += 1
                theirs[int(r[other])] += 1
                better = r.get("better", "tie")
                won += better == side
                lost += better == other
                tied += better not in ("A", "B")
            n = len(rows)
            print(f"  {names[comparison]}: {n} pairs")
            print(f"    emogram rated 2/1/0: {mine[2]}/{mine[1]}/{mine[0]} ({mine[2] / n:.0%} rated 2, {mine[0] / n:.0%} rated 0)")
            print(f"    other   rated 2/1/0: {theirs[2]}/{theirs[1]}/{theirs[0]} ({theirs[2] / n:.0%} rated 2)")
            print(f"    emogram better {won}, tied {tied}, other better {lost} "
                  f"(tied or preferred: {(won + tied) / n:.0%})")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check the strong model's answers (ceiling_answers.json)")
    a = sub.add_parser("answers", help="emogram's answers for the three comparisons")
    a.add_argument("--before", help="take comparison (b)'s answers from this earlier emogram_answers.json")
    s = sub.add_parser("sheet", help="the reading sheet and its key")
    s.add_argument("--seed", type=int, default=29)
    c = sub.add_parser("score", help="counts from the readers' files")
    c.add_argument("ratings", nargs="+")
    args = p.parse_args(argv)
    return {"check": check, "answers": answers, "sheet": sheet, "score": score}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
