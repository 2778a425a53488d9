"""What the bank costs a warm answer: the same Explainer answering each topic with the bank and
without it (bank=False, the answer before the bank), alternating, so both see the same machine.

    python bench/bank_cost.py                 # 30 topics: 10 followed, 10 read, 10 phrases
    python bench/bank_cost.py --rounds 3      # each topic 3 times a side

Topics: paraphrased bank topics (an entry is followed), the ceiling set's topics (neighbours are
read), ELCo-like two-word phrases (mostly nothing); the median seconds of each side and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PHRASES = ["big city", "hot water", "cold feet", "bright future", "heavy rain", "dark glass",
           "quiet night", "broken heart", "fresh bread", "open door"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    from emogram import Explainer
    refs = HERE / "references"
    para = [it["query"] for it in json.loads((refs / "paraphrases.json").read_text(encoding="utf-8"))["items"][:10]]
    ceiling = [it["topic"] for it in json.loads((refs / "ceiling.json").read_text(encoding="utf-8"))["items"][::10]]
    ex = Explainer()
    for t in ("how a kettle boils", "sleep"):  # warm up both paths
        ex.explain(t, seed=0)
        ex.explain(t, seed=0, bank=False)
    rows = []
    for group, topics in (("followed", para), ("read", ceiling), ("phrase", PHRASES)):
        bank, alone, used = [], [], []
        for _ in range(args.rounds):
            for t in topics:
                started = time.perf_counter()
                e = ex.explain(t, seed=0)
                bank.append(time.perf_counter() - started)
                used.append(e.sources[0].used if e.sources else "none")
                started = time.perf_counter()
                ex.explain(t, seed=0, bank=False)
                alone.append(time.perf_counter() - started)
        b, a = statistics.median(bank), statistics.median(alone)
        share = {u: used.count(u) / len(used) for u in sorted(set(used))}
        rows.append((group, len(topics), b, a, b / a, share))
    print("| topics | n | with the bank (s) | without (s) | ratio | what was used |\n|---|---|---|---|---|---|")
    for group, n, b, a, r, share in rows:
        print(f"| {group} | {n} | {b:.3f} | {a:.3f} | {r:.2f}x | "
              + ", ".join(f"{k} {v:.0%}" for k, v in share.items()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
