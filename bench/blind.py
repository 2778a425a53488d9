"""Blind reading of two quality runs: a rating sheet with answers A and B in random order, then counts.

    python bench/blind.py sheet OLD.json NEW.json              # writes sheet, key and ratings template
    python bench/blind.py score bench/results/blind-X-key.json bench/results/blind-X-ratings.csv

OLD.json and NEW.json are results of bench/quality.py that cover the held-out half (run it with
--half held-out or --half both). The sheet takes N held-out topics to explain (kind "topic") that both
runs answered, in a seeded random order; for each it shows the two answers as A and B (which is which
is shuffled, seeded, half each way, and written only to the key file) with the gloss of each (emoji names).

The reader fills the ratings CSV, one number per answer, without opening the key:
  2  shows the main parts or stages of the topic in a sensible order
  1  related emoji, but no explanation
  0  off topic, or filler
`score` prints, per system, how many answers got 0, 1 and 2, the mean, and per-topic wins.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

RUBRIC = ("2 = shows the main parts or stages in a sensible order; "
          "1 = related emoji, no explanation; 0 = off topic or filler")


def _load(path: Path, strategy: str | None) -> tuple[dict, str, dict]:
    res = json.loads(path.read_text(encoding="utf-8"))
    if "strategies" not in res:
        raise SystemExit(f"blind: {path} is not a results file of bench/quality.py (no 'strategies')")
    name = strategy or next(iter(res["strategies"]))
    if name not in res["strategies"]:
        raise SystemExit(f"blind: {path} has no strategy {name!r}; it has {sorted(res['strategies'])}")
    return res, name, res["strategies"][name]["outputs"]


def gloss(text: str) -> str:
    from emogram import EmogramError, parse
    if not text:
        return "(no answer)"
    try:
        return parse(text).gloss()
    except EmogramError as exc:
        return f"(does not parse: {exc})"


def choose(old: dict, new: dict, items: dict, n: int, seed: int, half: str = "held-out") -> list[str]:
    keys = sorted(k for k in old.keys() & new.keys()
                  if items.get(k, {}).get("kind") == "topic" and items[k].get("half") == half
                  and old[k] and new[k])
    if len(keys) < n:
        raise SystemExit(f"blind: only {len(keys)} {half} topics to explain are in both runs, {n} "
                         f"wanted; run bench/quality.py with --half {half} (or --half both) for both")
    return random.Random(seed).sample(keys, n)


def make_sheet(args) -> int:
    old_res, old_st, old = _load(args.old, args.old_strategy)
    new_res, new_st, new = _load(args.new, args.new_strategy)
    items = {**old_res["items"], **new_res["items"]}
    keys = choose(old, new, items, args.n, args.seed, args.half)
    a_is_old_list = [k < len(keys) // 2 for k in range(len(keys))]  # balanced: half A=old, half A=new
    random.Random(args.seed + 1).shuffle(a_is_old_list)
    stem = args.out / f"blind-{args.name or date.today().isoformat()}"
    sheet = [f"# Blind reading: {len(keys)} topics, two answers each", "",
             "Rate every answer on its own, without opening the key file:", "",
             f"- {RUBRIC.replace('; ', chr(10) + '- ')}", "",
             f"Write the numbers in `{stem.name}-ratings.csv` (columns A and B).", ""]
    key_rows, rating_rows = [], []
    for no, (k, a_is_old) in enumerate(zip(keys, a_is_old_list), 1):
        texts = {"old": old[k][0]["text"], "new": new[k][0]["text"]}
        order = ("old", "new") if a_is_old else ("new", "old")
        sheet += [f"## {no}. {items[k]['topic']}", ""]
        for label, system in zip("AB", order):
            sheet += [f"**{label}**", "", "```", texts[system] or "(no answer)", "```", "",
                      f"> {gloss(texts[system])}", ""]
        key_rows.append({"no": no, "key": k, "topic": items[k]["topic"], "A": order[0], "B": order[1],
                         "texts": {label: texts[s] for label, s in zip("AB", order)}})
        rating_rows.append({"no": no, "topic": items[k]["topic"], "A": "", "B": ""})
    args.out.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}-sheet.md").write_text("\n".join(sheet), encoding="utf-8")
    key = {"rubric": RUBRIC, "seed": args.seed,
           "systems": {"old": {"file": str(args.old), "model": old_res.get("model"), "strategy": old_st},
                       "new": {"file": str(args.new), "model": new_res.get("model"), "strategy": new_st}},
           "topics": key_rows}
    Path(f"{stem}-key.json").write_text(json.dumps(key, ensure_ascii=False, indent=1), encoding="utf-8")
    with open(f"{stem}-ratings.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["no", "topic", "A", "B"])
        w.writeheader()
        w.writerows(rating_rows)
    print(f"wrote {stem}-sheet.md (for the reader), {stem}-ratings.csv (to fill in), "
          f"{stem}-key.json (do not show the reader)")
    return 0


def tally(key: dict, ratings: list[dict]) -> dict:
    """Counts per system ("old", "new") of ratings 0, 1, 2, their mean, and per-topic wins."""
    by_no = {int(r["no"]): r for r in ratings}
    counts = {s: Counter() for s in ("old", "new")}
    wins = Counter()
    problems = []
    for t in key["topics"]:
        r = by_no.get(t["no"])
        score = {}
        for label in "AB":
            v = (r or {}).get(label, "").strip()
            if v not in ("0", "1", "2"):
                problems.append(f"topic {t['no']} answer {label}: {v!r}")
                continue
            score[t[label]] = int(v)
            counts[t[label]][int(v)] += 1
        if len(score) == 2:
            wins["old" if score["old"] > score["new"] else "new" if score["new"] > score["old"] else "tie"] += 1
    if problems:
        raise SystemExit("blind: ratings must be 0, 1 or 2 for every answer; fix: " + "; ".join(problems))
    out = {}
    for s, c in counts.items():
        n = sum(c.values())
        out[s] = {"0": c[0], "1": c[1], "2": c[2], "n": n, "mean": (c[1] + 2 * c[2]) / n if n else None}
    out["wins"] = dict(wins)
    return out


def score(args) -> int:
    key = json.loads(args.key.read_text(encoding="utf-8"))
    with open(args.ratings, encoding="utf-8", newline="") as f:
        ratings = list(csv.DictReader(f))
    t = tally(key, ratings)
    print(f"rubric: {key['rubric']}\n")
    print("| system | model / strategy | 0 | 1 | 2 | mean |\n|---|---|---|---|---|---|")
    for s in ("old", "new"):
        sy = key["systems"][s]
        print(f"| {s} | {sy['model']} / {sy['strategy']} | {t[s]['0']} | {t[s]['1']} | {t[s]['2']} | "
              f"{t[s]['mean']:.2f} |")
    w = t["wins"]
    print(f"\nper topic: new better {w.get('new', 0)}, old better {w.get('old', 0)}, tie {w.get('tie', 0)}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet", help="write the rating sheet, its key and a ratings template")
    s.add_argument("old", type=Path)
    s.add_argument("new", type=Path)
    s.add_argument("--old-strategy", help="strategy in OLD (default: its first)")
    s.add_argument("--new-strategy", help="strategy in NEW (default: its first)")
    s.add_argument("--n", type=int, default=30, help="topics (default 30)")
    s.add_argument("--half", default="held-out", choices=("held-out", "tune", "corpus"),
                   help="which half's topics (default held-out: the report; tune: a reading while tuning; corpus: bench/corpus_run.py)")
    s.add_argument("--seed", type=int, default=0, help="topic choice and A/B order (default 0)")
    s.add_argument("--name", help="file name part (default: today's date)")
    s.add_argument("--out", type=Path, default=HERE / "results")
    c = sub.add_parser("score", help="count the ratings per system")
    c.add_argument("key", type=Path)
    c.add_argument("ratings", type=Path)
    args = p.parse_args(argv)
    return make_sheet(args) if args.cmd == "sheet" else score(args)


if __name__ == "__main__":
    raise SystemExit(main())
