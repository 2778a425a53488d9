"""Retrieval from the bank: does a query written as people type it find the entry it means, and does
a query that no entry covers stay unmatched? No model; a few seconds.

    python bench/bank_recall.py                      # both halves, the shipped thresholds
    python bench/bank_recall.py --calibrate          # sweep the thresholds on the tune half only

Sets (bench/references/):
  paraphrases.json  queries, each naming the bank topic it means (written by a fresh writer who saw
                    only the topics; none of the queries is a bank topic: a test checks it)
  coverage_labels.json  250 queries (the ceiling set's 100 topics and 150 more, uncovered_candidates.txt)
                    with a reader's judgement of which of their top-5 entries, if any, explains the
                    same thing; those with none are the uncovered queries, the others a second
                    paraphrase set ("natural")
  calibration_labels.json  203 more queries labelled the same way (8 candidates each), all tune data:
                    the decision's thresholds were chosen on them with the tune half
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


def measure(search, paraphrases: list[dict], uncovered: list[dict]) -> dict:
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
        if hits and hits[0].same:
            followed += names[0] == it["topic"]
            wrong += names[0] != it["topic"]
    n = len(paraphrases) - missing
    matched = read = 0
    for it in uncovered:
        hits = search.find(it["query"], 3)
        matched += bool(hits) and hits[0].same
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
    para = load("paraphrases.json")
    labels = load("coverage_labels.json")
    unc = [it for it in labels if not it["same"]]
    natural = [{"query": it["query"], "topic": it["topic"]} for it in labels if it["same"]]
    halves = {h: ([x for x in para if half_of(x["query"]) == h], [x for x in unc if half_of(x["query"]) == h])
              for h in ("tune", "held-out")}
    if args.calibrate:  # the tune half only
        shipped = bank_search.MATCH, bank_search.LEAD_MATCH, bank_search.LEAD
        print("| MATCH | LEAD_MATCH | LEAD | followed | wrong follow | uncovered match |\n|---|---|---|---|---|---|")
        for match, lead_match, lead in [(m / 100, m / 100, 1.0) for m in range(60, 96, 4)] + [
                (0.8, lm / 100, ld / 100) for lm in (50, 55, 60, 65) for ld in (10, 20, 30)]:
            bank_search.MATCH, bank_search.LEAD_MATCH, bank_search.LEAD = match, lead_match, lead
            m = measure(search, *halves["tune"])
            print(f"| {match:.2f} | {lead_match:.2f} | {lead:.2f} | {m['followed']:.1%} | {m['wrong follow']:.1%} "
                  f"| {m['uncovered match']:.1%} |")
        bank_search.MATCH, bank_search.LEAD_MATCH, bank_search.LEAD = shipped
        # the sentence vectors (knowledge/meaning.py): their weight in the ranking, and the
        # decision: the tune half's paraphrases and the calibration set's covered queries (followed
        # to the right entry, or to a wrong one), the uncovered ones of both (followed at all)
        calib = load("calibration_labels.json")
        covered = halves["tune"][0] + [{"query": x["query"], "topic": x["topic"]} for x in calib if x["same"]]
        uncovered = halves["tune"][1] + [x for x in calib if not x["same"]]
        print(f"\n{len(covered)} covered and {len(uncovered)} uncovered tune queries (with calibration_labels.json)")
        print("| COS_WEIGHT | COS_FLOOR | COS_LEAD | ALONE_MATCH | recall@1 | followed | wrong follow | uncovered match |")
        print("|---|---|---|---|---|---|---|---|")
        for weight in (0.25, 0.5, 1.0):
            for floor in (0.0, 0.75, 0.8, 0.85):
                for cos_lead in (0.1, 0.15, 1.0):
                    for alone in (0.6, 0.7, 1.01):
                        bank_search.COS_WEIGHT, bank_search.COS_FLOOR = weight, floor
                        bank_search.COS_LEAD, bank_search.ALONE_MATCH = cos_lead, alone
                        m = measure(search, covered, uncovered)
                        print(f"| {weight:.2f} | {floor:.2f} | {cos_lead:.2f} | {alone:.2f} | {m['recall@1']:.1%} "
                              f"| {m['followed']:.1%} | {m['wrong follow']:.1%} | {m['uncovered match']:.1%} |")
        return 0
    print(f"MATCH {bank_search.MATCH} (or {bank_search.LEAD_MATCH} leading by {bank_search.LEAD}), "
          f"RELATED {bank_search.RELATED}; {len(unc)} uncovered queries, "
          f"{len(natural)} covered ones (natural)")
    print("| half | queries | recall@1 | recall@3 | followed | wrong follow | uncovered | uncovered match | read |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h, (pa, un) in halves.items():
        m = measure(search, pa, un)
        print(f"| {h} | {m['queries']} (+{m['missing']} gone) | {m['recall@1']:.1%} | {m['recall@3']:.1%} | "
              f"{m['followed']:.1%} | {m['wrong follow']:.1%} | {m['uncovered']} | {m['uncovered match']:.1%} | "
              f"{m['read']:.1%} |")
    calib = load("calibration_labels.json")
    m = measure(search, [{"query": x["query"], "topic": x["topic"]} for x in calib if x["same"]],
                [x for x in calib if not x["same"]])
    print(f"calibration set (tune data, chosen on): {m['queries']} covered: followed {m['followed']:.1%}, "
          f"wrong follow {m['wrong follow']:.1%}; {m['uncovered']} uncovered: followed {m['uncovered match']:.1%}")
    m = measure(search, natural, [])
    print(f"natural queries the reader found covered: {m['queries']}: recall@1 {m['recall@1']:.1%}, "
          f"recall@3 {m['recall@3']:.1%}, followed {m['followed']:.1%}, wrong follow {m['wrong follow']:.1%}")
    t = time.perf_counter()
    for it in para:
        search.find(it["query"], 3)
    print(f"{(time.perf_counter() - t) / len(para) * 1000:.2f} ms a query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
