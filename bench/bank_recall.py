"""Retrieval from the bank: does a query written as people type it find the entry it means, and does
a query that no entry covers stay unmatched? No model; about a second.

    python bench/bank_recall.py                      # both halves, the shipped thresholds
    python bench/bank_recall.py --calibrate          # sweep MATCH on the tune half only

Sets (bench/references/):
  paraphrases.json  queries, each naming the bank topic it means (written by a fresh writer who saw
                    only the topics; none of the queries is a bank topic: a test checks it)
  uncovered.json    queries that no bank entry covers (checked by a reader against each query's
                    retrieved entries); the ceiling set's topics are among them
Each set is split into a tune half and a held-out half by a hash of the query (``half_of``).

Figures:
  recall@1, @3      the meant entry is the first hit, or among the first three
  followed          the first hit is the meant entry and close enough to be followed (Hit.same)
  wrong follow      the first hit is close enough to be followed but is not the meant entry
  uncovered match   an uncovered query whose first hit is close enough to be followed (a wrong match)
  read              an uncovered query that reads at least one neighbour (Hit.related)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFS = HERE / "references"
sys.path.insert(0, str(HERE.parent))


def half_of(text: str) -> str:
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "held-out"


def load(name: str) -> list[dict]:
    return json.loads((REFS / name).read_text(encoding="utf-8"))["items"]


def measure(search, paraphrases: list[dict], uncovered: list[dict], match: float) -> dict:
    at1 = at3 = followed = wrong = missing = 0
    topics = {e.topic for e in search.entries}
    for it in paraphrases:
        if it["topic"] not in topics:
            missing += 1
            continue
        hits = search.find(it["query"], 3)
        names = [h.entry.topic for h in hits]
        at1 += names[:1] == [it["topic"]]
        at3 += it["topic"] in names
        if hits and hits[0].overlap >= match:
            followed += names[0] == it["topic"]
            wrong += names[0] != it["topic"]
    n = len(paraphrases) - missing
    matched = read = 0
    for it in uncovered:
        hits = search.find(it["query"], 3)
        matched += bool(hits) and hits[0].overlap >= match
        read += any(h.related for h in hits)
    return {"queries": n, "missing": missing, "recall@1": at1 / max(n, 1), "recall@3": at3 / max(n, 1),
            "followed": followed / max(n, 1), "wrong follow": wrong / max(n, 1),
            "uncovered": len(uncovered), "uncovered match": matched / max(len(uncovered), 1),
            "read": read / max(len(uncovered), 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibrate", action="store_true", help="sweep the match threshold on the tune half")
    args = p.parse_args(argv)
    from emogram.knowledge import bank_search
    started = time.perf_counter()
    search = bank_search.search_for(())
    print(f"bank: {len(search.entries)} entries, indexed in {time.perf_counter() - started:.2f} s")
    para, unc = load("paraphrases.json"), load("uncovered.json")
    halves = {h: ([x for x in para if half_of(x["query"]) == h], [x for x in unc if half_of(x["query"]) == h])
              for h in ("tune", "held-out")}
    if args.calibrate:
        print("| MATCH | followed | wrong follow | uncovered match |\n|---|---|---|---|")
        for match in [x / 100 for x in range(40, 96, 4)]:
            m = measure(search, *halves["tune"], match)
            print(f"| {match:.2f} | {m['followed']:.1%} | {m['wrong follow']:.1%} | {m['uncovered match']:.1%} |")
        return 0
    print(f"MATCH {bank_search.MATCH}, RELATED {bank_search.RELATED}")
    print("| half | queries | recall@1 | recall@3 | followed | wrong follow | uncovered | uncovered match | read |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h, (pa, un) in halves.items():
        m = measure(search, pa, un, bank_search.MATCH)
        print(f"| {h} | {m['queries']} (+{m['missing']} gone) | {m['recall@1']:.1%} | {m['recall@3']:.1%} | "
              f"{m['followed']:.1%} | {m['wrong follow']:.1%} | {m['uncovered']} | {m['uncovered match']:.1%} | "
              f"{m['read']:.1%} |")
    t = time.perf_counter()
    for it in para:
        search.find(it["query"], 3)
    print(f"{(time.perf_counter() - t) / len(para) * 1000:.2f} ms a query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
