"""Answers to topics the adapter WAS taught (from data/corpus/corpus.jsonl), with and without it,
in bench/quality.py's results format, so bench/blind.py can make a sheet of them:

    python bench/corpus_run.py --n 30                      # 30 corpus topics to explain, seed 0
    python bench/blind.py sheet R.json R.json --half corpus --old-strategy no-adapter --new-strategy default

A reading of these beside the held-out reading shows what the model learnt and what it memorised.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import quality  # noqa: E402

from emogram.quality.references import Item  # noqa: E402
from emogram.training import corpus  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="which topics (default 0)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    entries = [e for e in corpus.load(corpus.CORPUS_DIR / "corpus.jsonl") if e.kind == "explain"]
    chosen = random.Random(args.seed).sample(entries, args.n)
    items = [Item(f"corpus:{e.topic}", e.topic, "topic", "corpus") for e in chosen]
    strategies = [quality.STRATEGIES["default"], quality.STRATEGIES["no-adapter"]]
    model, outputs, warm = quality.generate(None, strategies, items, [0], warmup=())
    result = {"benchmark": "emogram corpus topics (bench/corpus_run.py)", "date": date.today().isoformat(),
              "model": model, "half": "corpus", "seeds": 1,
              "items": {it.key: {"set": "corpus", "topic": it.topic, "kind": "topic", "half": "corpus",
                                 "taught": e.answer} for it, e in zip(items, chosen)},
              "strategies": {s.name: {"options": s.options, "note": s.note, "outputs": outputs[s.name]}
                             for s in strategies}}
    path = args.out / f"corpus-topics-{result['date']}-n{args.n}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
