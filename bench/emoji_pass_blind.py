"""Did the bank's emoji pass help a reader who sees only the emoji? A blind A/B sheet of bank entries
with their old emoji and their redrawn ones (the words hidden: a reader sees only the topic and the
emoji chain, as a user does), for fresh readers.

    python bench/emoji_pass_blind.py sheet [--n 300] [--seed 7]   # sheet.json + key.json
    python bench/emoji_pass_blind.py score RATINGS.json...        # old against new, per reader

Entries are drawn by the seed among those the pass changed and a reviewer passed
(``emogram.training.bank_emoji.reviewed_pass``). A reader rates each answer 2 (shows the main parts
or stages in a sensible order), 1 (related emoji, no explanation) or 0 (off topic, filler or
misleading) and says which is better (A, B or tie), in one JSON file:
{"ratings": [{"id": ..., "A": 2, "B": 1, "better": "A"}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "emoji-pass"
sys.path.insert(0, str(HERE.parent))

RUBRIC = ("2 = shows the main parts or stages of the topic in a sensible order; 1 = related emoji, "
          "but no explanation; 0 = off topic, filler, or misleading")


def _emoji(answer: str) -> str:
    from emogram.training.corpus import emoji_text, split_glossed
    return emoji_text(split_glossed(answer))


def sheet(args) -> int:
    from emogram.training import bank_emoji
    from emogram.training.corpus import load
    old = {e.topic: e.answer for lane in sorted((bank_emoji.emoji_dir() / "todo").glob("E*.jsonl"))
           for e in load(lane)}
    new = bank_emoji.reviewed_pass().answers
    topics = sorted(t for t in new if t in old and _emoji(new[t]) != _emoji(old[t]))
    rng = random.Random(args.seed)
    chosen = rng.sample(topics, min(args.n, len(topics)))
    pairs, key = [], {}
    for n, topic in enumerate(chosen, 1):
        flip = rng.random() < 0.5
        a, b = (new[topic], old[topic]) if flip else (old[topic], new[topic])
        pid = f"q{n:03d}"
        key[pid] = {"topic": topic, "A": "new" if flip else "old", "B": "old" if flip else "new"}
        pairs.append({"id": pid, "topic": topic, "A": _emoji(a), "B": _emoji(b)})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sheet.json").write_text(json.dumps({"rubric": RUBRIC, "pairs": pairs}, ensure_ascii=False, indent=1),
                                    encoding="utf-8")
    (OUT / "key.json").write_text(json.dumps(key, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"sheet: {len(pairs)} pairs of {len(topics)} redrawn entries ({OUT / 'sheet.json'}); key apart")
    return 0


def score(args) -> int:
    key = json.loads((OUT / "key.json").read_text(encoding="utf-8"))
    for path in args.ratings:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))["ratings"]
        rated = {"old": [0, 0, 0], "new": [0, 0, 0]}
        better = {"old": 0, "new": 0, "tie": 0}
        for r in rows:
            k = key[r["id"]]
            for side in "AB":
                rated[k[side]][int(r[side])] += 1
            better[k[r["better"]] if r.get("better") in ("A", "B") else "tie"] += 1
        n = len(rows)
        print(f"{Path(path).name}: {n} pairs")
        for which in ("old", "new"):
            c = rated[which]
            print(f"  {which} emoji rated 2/1/0: {c[2]}/{c[1]}/{c[0]} ({c[2] / n:.0%} rated 2, {c[0] / n:.0%} rated 0)")
        print(f"  new better {better['new']}, tied {better['tie']}, old better {better['old']}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet", help="the reading sheet and its key")
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--seed", type=int, default=7)
    c = sub.add_parser("score", help="counts from the readers' files")
    c.add_argument("ratings", nargs="+")
    args = p.parse_args(argv)
    return {"sheet": sheet, "score": score}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
