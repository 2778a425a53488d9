"""Quality of the explanations on the public topic set (bench/topics.json).

    python bench/quality.py                      # default model and strategy, plus the random floor
    python bench/quality.py --all                # every model x strategy in the table below
    python bench/quality.py --model smollm2-135m --strategy think

Metrics per model and strategy (one answer per topic and seed):
  valid         share of answers that re-parse to the same text and are emoji only apart from
                the language's spaces and newlines (checked here, not taken from explain(); must be 100%)
  on-topic      share of content emoji found in the topic's reference set
  repeat-groups share of groups equal to the group before them (same line or across a line break)
  longest-run   mean over answers of the longest run of one emoji
  distinct      mean number of distinct emoji per answer
  fit           share of answers whose line count is within the requested range
  tokens, s     mean answer tokens and seconds per answer
The random floor draws the same number of emoji uniformly from the inventory.

Writes bench/results/quality-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import emoji  # noqa: E402

from emogram import Explainer, EmogramError, parse  # noqa: E402
from emogram.grammar import compile_grammar  # noqa: E402


def load_topics() -> list[dict]:
    return json.loads((HERE / "topics.json").read_text(encoding="utf-8"))["topics"]


@dataclass
class Strategy:
    name: str
    options: dict = field(default_factory=dict)
    note: str = ""


STRATEGIES = {
    "default": Strategy("default", {}, "emogram.explain's defaults: 8 examples, repeat 2, filler 1, "
                                       "byte-piece 2, temperature 0.3"),
    "no-steering": Strategy("no-steering", {"repeat_penalty": 0.0, "filler_penalty": 0.0,
                                            "partial_penalty": 0.0}, "no repetition, filler or byte-piece control"),
    "repeat-only": Strategy("repeat-only", {"filler_penalty": 0.0, "partial_penalty": 0.0},
                            "repetition control only"),
    "no-byte-malus": Strategy("no-byte-malus", {"partial_penalty": 0.0}, "without the byte-piece malus"),
    "examples5": Strategy("examples5", {"examples": 5}, "5 few-shot examples instead of 8"),
    "examples2": Strategy("examples2", {"examples": 2}, "2 few-shot examples instead of 8"),
    "greedy": Strategy("greedy", {"temperature": 0.0}, "temperature 0"),
    "t0.3": Strategy("t0.3", {"temperature": 0.3}, "temperature 0.3"),
    "t0.5": Strategy("t0.5", {"temperature": 0.5}, "temperature 0.5"),
    "t0.7": Strategy("t0.7", {"temperature": 0.7}, "temperature 0.7"),
    "hot": Strategy("hot", {"temperature": 1.0}, "temperature 1.0"),
    "think": Strategy("think", {"think": True}, "a short plan in words first"),
    "hint": Strategy("hint", {"hint": 2.0}, "+2 logits for emoji whose names share a word with the topic"),
}


@dataclass
class Scores:
    model: str
    strategy: str
    answers: int = 0
    valid: int = 0
    content: int = 0
    on_topic: int = 0
    groups: int = 0
    repeated_groups: int = 0
    longest_runs: list[int] = field(default_factory=list)
    distinct: list[int] = field(default_factory=list)
    fit: int = 0
    tokens: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, topic: dict, explanation, seconds: float, lines=(1, 4)) -> None:
        self.answers += 1
        self.valid += is_valid(explanation.text)
        ref = set(topic["reference"])
        chars = [e.char for e in explanation.emoji()]
        self.content += len(chars)
        self.on_topic += sum(c in ref for c in chars)
        groups = [str(g) for g in explanation.groups()]
        self.groups += len(groups)
        self.repeated_groups += sum(a == b for a, b in zip(groups, groups[1:]))
        run = best = 0
        prev = None
        for c in chars:
            run = run + 1 if c == prev else 1
            best = max(best, run)
            prev = c
        self.longest_runs.append(best)
        self.distinct.append(len(set(chars)))
        self.fit += lines[0] <= len(explanation.lines) <= lines[1]
        self.tokens.append(explanation.stats.eval_tokens)
        self.seconds.append(seconds)
        self.examples.setdefault(topic["topic"], str(explanation))

    def row(self) -> dict:
        n = max(self.answers, 1)
        return {
            "model": self.model, "strategy": self.strategy, "answers": self.answers,
            "valid": self.valid / n, "on_topic": self.on_topic / max(self.content, 1),
            "repeat_groups": self.repeated_groups / max(self.groups, 1),
            "longest_run": statistics.mean(self.longest_runs or [0]),
            "distinct": statistics.mean(self.distinct or [0]), "fit": self.fit / n,
            "tokens": statistics.mean(self.tokens or [0]), "seconds": statistics.mean(self.seconds or [0]),
        }


def is_valid(text: str) -> bool:
    """The guarantee, checked independently of the engine: the text parses back to itself and,
    without the language's spaces and newlines, is emoji only."""
    try:
        reparsed = str(parse(text))
    except EmogramError:
        return False
    body = text.replace(" ", "").replace("\n", "")
    return reparsed == text and bool(body) and emoji.purely_emoji(body)


def random_floor(topics: list[dict], sizes: list[int], seed: int = 0) -> float:
    pool = list(compile_grammar().emoji)
    rng = random.Random(seed)
    hits = total = 0
    for k in range(20):
        for topic, size in zip(topics * (len(sizes) // len(topics) + 1), sizes):
            ref = set(topic["reference"])
            picks = [rng.choice(pool) for _ in range(size)]
            hits += sum(p in ref for p in picks)
            total += size
    return hits / max(total, 1)


def run(model: str, strategy: Strategy, topics: list[dict], seeds: list[int]) -> Scores:
    explainer = Explainer(model)
    scores = Scores(model, strategy.name)
    failures = 0
    for seed in seeds:
        for topic in topics:
            t0 = time.perf_counter()
            try:
                e = explainer.explain(topic["topic"], seed=seed, **strategy.options)
            except Exception as exc:  # counted: validity must be 100%
                failures += 1
                print(f"  FAILED {topic['topic']!r}: {exc}", file=sys.stderr)
                scores.answers += 1
                continue
            scores.add(topic, e, time.perf_counter() - t0)
    return scores


def table(rows: list[dict], floor: float) -> str:
    head = ("model", "strategy", "valid", "on-topic", "repeat-groups", "longest-run", "distinct",
            "fit", "tokens", "s/answer")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append(f"| {r['model']} | {r['strategy']} | {r['valid']:.0%} | {r['on_topic']:.1%} | "
                   f"{r['repeat_groups']:.1%} | {r['longest_run']:.2f} | {r['distinct']:.1f} | "
                   f"{r['fit']:.0%} | {r['tokens']:.1f} | {r['seconds']:.2f} |")
    out.append(f"| random emoji | (floor) | | {floor:.2%} | | | | | | |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", help="preset or path (repeatable); default: the default")
    p.add_argument("--strategy", action="append", choices=sorted(STRATEGIES), help="repeatable")
    p.add_argument("--all", action="store_true", help="both presets x every strategy")
    p.add_argument("--seeds", type=int, default=1, help="answers per topic (seeds 0..N-1)")
    p.add_argument("--limit", type=int, help="only the first N topics (quick look)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    from emogram.models import DEFAULT_PRESET, PRESETS
    models = args.model or ([*PRESETS] if args.all else [DEFAULT_PRESET])
    strategies = [STRATEGIES[s] for s in (args.strategy or (sorted(STRATEGIES) if args.all else ["default"]))]
    topics = load_topics()[: args.limit]
    seeds = list(range(args.seeds))
    rows, examples, sizes = [], {}, []
    for model in models:
        for strategy in strategies:
            t0 = time.perf_counter()
            scores = run(model, strategy, topics, seeds)
            rows.append(scores.row())
            sizes += [max(1, round(scores.content / max(scores.answers, 1)))] * len(topics)
            examples[f"{model}/{strategy.name}"] = scores.examples
            print(f"{model} / {strategy.name}: on-topic {rows[-1]['on_topic']:.1%}, repeat "
                  f"{rows[-1]['repeat_groups']:.1%}, valid {rows[-1]['valid']:.0%} "
                  f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    floor = random_floor(topics, sizes)
    print(table(rows, floor))
    args.out.mkdir(parents=True, exist_ok=True)
    label = "+".join(Path(m).stem for m in models) + ("" if [s.name for s in strategies] == ["default"]
                                                     else "-strategies")
    path = args.out / f"quality-{date.today().isoformat()}-{label}.json"
    path.write_text(json.dumps({"date": date.today().isoformat(), "topics": len(topics), "seeds": seeds,
                                "rows": rows, "random_floor": floor, "examples": examples},
                               ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
