"""Quality of emogram's explanations against reference emoji answers, with baselines beside them.

    python bench/quality.py --elco PATH/ELCo.csv               # tune half, default strategy
    python bench/quality.py --half held-out --elco PATH         # the held-out half (report, don't tune)
    python bench/quality.py --strategy default --strategy t0.7 --limit 20
    python bench/quality.py --define 'hot2={"temperature": 1.0, "repeat_penalty": 0}'
    python bench/quality.py --rescore bench/results/quality-....json --elco PATH   # no model

Reference sets (emogram/quality/references.py): "annotators": 240 items (120 phrases, 120 topics to explain), six
answers each by AI annotators (Claude sub-agents with personas; NOT people); "elco": 209 English
phrases with 7-9 answers each by people (ELCo, CC BY 4.0; not shipped, give --elco or $EMOGRAM_ELCO).
Every set is split into a tune half and a held-out half by a hash of the topic text; tables say which.

Metrics (emogram/quality/metrics.py; content emoji = without ➡️ ➕ 🆚 🟰, both sides; skin tones dropped):
  prec      share of an answer's content emoji that some reference answer for the topic also used
  best-J    set Jaccard with the best-matching single reference answer
  hit       share of answers sharing at least one emoji with some reference answer
  recur     share of answers with a line (content sequence) that also occurs in answers to
            >= 5% of the other topics in the table (min 2): borrowed / filler lines
  L1..L4+   precision pooled by line index (drift off topic along the answer)
  rep-grp   share of groups equal to the group before them
  emoji, lines   mean content emoji and lines per answer
  valid     re-checked here: the text parses back to itself and is emoji only (must be 100%)
  s/ans     seconds per answer, after --warmup untimed answers on other topics
Baselines (emogram/quality/baselines.py): random emoji in the model's answer shapes, keyword lookup in
emojilib, and people against people (leave one out).

Writes bench/results/quality-<date>-<model>-<half>.json (every answer, per strategy and topic, so runs
can be compared: bench/blind.py) and the tables as .md beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import emoji  # noqa: E402

from emogram.quality import baselines, metrics, references, stages  # noqa: E402


@dataclass
class Strategy:
    name: str
    options: dict = field(default_factory=dict)
    note: str = ""


STRATEGIES = {
    "default": Strategy("default", {}, "emogram.explain's defaults: the shipped adapter and bank, a "
                                       "word then its emoji for each part (plan), lexicon 2, temperature 0.3"),
    "no-bank": Strategy("no-bank", {"bank": False}, "the defaults without the bank (the default before issue 29)"),
    "no-adapter": Strategy("no-adapter", {"adapter": False}, "the defaults without the adapter: the "
                                                             "few-shot glossed prompt (the default before issue 22)"),
    "direct": Strategy("direct", {"plan": False}, "no plan: emoji straight after 8 few-shot examples "
                                                  "(the default before the plan; issue 13's 'today')"),
    "no-lexicon": Strategy("no-lexicon", {"lexicon": False}, "the plan without the lexicon's bias"),
    "best-of-4": Strategy("best-of-4", {"candidates": 4}, "4 answers side by side, the most likely kept"),
    "no-steering": Strategy("no-steering", {"repeat_penalty": 0.0, "filler_penalty": 0.0,
                                            "partial_penalty": 0.0}, "no repetition, filler or byte-piece control"),
    "repeat-only": Strategy("repeat-only", {"filler_penalty": 0.0, "partial_penalty": 0.0},
                            "repetition control only"),
    "no-byte-malus": Strategy("no-byte-malus", {"partial_penalty": 0.0}, "without the byte-piece malus"),
    "examples5": Strategy("examples5", {"examples": 5}, "5 few-shot examples instead of 8"),
    "examples2": Strategy("examples2", {"examples": 2}, "2 few-shot examples instead of 8"),
    "greedy": Strategy("greedy", {"temperature": 0.0}, "temperature 0"),
    "t0.3": Strategy("t0.3", {"temperature": 0.3}, "temperature 0.3 (the default's)"),
    "t0.5": Strategy("t0.5", {"temperature": 0.5}, "temperature 0.5"),
    "t0.7": Strategy("t0.7", {"temperature": 0.7}, "temperature 0.7"),
    "hot": Strategy("hot", {"temperature": 1.0}, "temperature 1.0"),
    "think": Strategy("think", {"think": True}, "a short plan in words first"),
    "hint": Strategy("hint", {"hint": 2.0}, "+2 logits for emoji whose names share a word with the topic"),
    "one-line": Strategy("one-line", {"lines": 1}, "a single line"),
}

SET_NAMES = ("annotators", "elco")


def is_valid(text: str) -> bool:
    """The guarantee, checked independently of the engine: the text parses back to itself and,
    without the language's spaces and newlines, is emoji only."""
    from emogram import EmogramError, parse
    try:
        reparsed = str(parse(text))
    except EmogramError:
        return False
    body = text.replace(" ", "").replace("\n", "")
    return reparsed == text and bool(body) and emoji.purely_emoji(body)


def load_sets(names, elco: Path | None, norm) -> list[references.RefSet]:
    out = []
    for name in names:
        if name == "annotators":
            out.append(references.load_annotators(norm=norm))
        elif name == "elco":
            if elco is None or not elco.is_file():
                print(f"quality: ELCo skipped: no file ({'not given' if elco is None else elco}); download "
                      f"ELCo.csv from {references.ELCO_URL} and pass --elco PATH or set EMOGRAM_ELCO",
                      file=sys.stderr)
                continue
            out.append(references.load_elco(elco, norm=norm))
    return out


def groups_of(sets, half: str, limit: int | None):
    """(set, kind, items) for each table: the chosen half, the first ``limit`` items of each kind."""
    for rs in sets:
        for kind in ("topic", "phrase"):
            items = [it for it in references.select(rs.items, half) if it.kind == kind][:limit]
            if items:
                yield rs, kind, items


# --- running the model ------------------------------------------------------------------------

def warmup_topics(items, n: int) -> list[str]:
    """Topics of the old on-topic set (bench/topics.json) that no reference set asks, for warming up."""
    asked = {it.topic.lower() for it in items}
    old = json.loads((HERE / "topics.json").read_text(encoding="utf-8"))["topics"]
    return [t["topic"] for t in old if t["topic"].lower() not in asked][:n]


def generate(model, strategies, items, seeds, warmup=()) -> tuple[str, dict, dict]:
    """Every (strategy, item, seed) answer. Before each strategy, untimed answers on the ``warmup``
    topics: a process's first answers are slow while llama.cpp's grammar verdicts are first asked
    and remembered (see docs/benchmarks.md), and would otherwise inflate s/answer for the first topics."""
    from emogram import Explainer
    outputs: dict[str, dict] = {}
    warm: dict[str, float] = {}
    total = len(strategies) * len(items) * len(seeds)
    done = 0
    names = set()
    for st in strategies:
        options = dict(st.options)
        explainer = Explainer(model, adapter=options.pop("adapter", None))  # a model-level option
        names.add(explainer.model_name)
        cache: dict[tuple, dict] = {}  # the same topic text in two sets is asked once
        per_key = outputs.setdefault(st.name, {})
        t0 = time.perf_counter()
        for topic in warmup:
            explainer.explain(topic, seed=0, **options)
        warm[st.name] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        for it in items:
            for seed in seeds:
                if (it.topic, seed) not in cache:
                    start = time.perf_counter()
                    try:
                        e = explainer.explain(it.topic, seed=seed, **options)
                        text, plan, err = e.text, list(e.plan), None
                    except Exception as exc:  # noqa: BLE001 - counted as invalid, reported
                        text, plan, err = "", [], f"{type(exc).__name__}: {exc}"
                        print(f"  FAILED {it.topic!r}: {err}", file=sys.stderr)
                    rec = {"seed": seed, "text": text, "plan": plan,
                           "seconds": round(time.perf_counter() - start, 4),
                           "valid": bool(text) and is_valid(text)}
                    if err:
                        rec["error"] = err
                    cache[(it.topic, seed)] = rec
                per_key.setdefault(it.key, []).append(cache[(it.topic, seed)])
                done += 1
                if done % 25 == 0:
                    print(f"  {done}/{total} answers", file=sys.stderr)
        print(f"{st.name}: {len(items) * len(seeds)} answers in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return " + ".join(sorted(names)), outputs, warm


# --- scoring (from saved texts: the same code scores a fresh run and --rescore) ------------------

def model_answer(text: str, norm):
    from emogram import EmogramError, parse
    if not text:
        return []
    try:
        return norm.explanation(parse(text))
    except EmogramError:
        return norm.answer(text)


def score_group(result: dict, items, norm, pool) -> list[dict]:
    rows = []
    first = None
    for name, st in result["strategies"].items():
        outs = st["outputs"]
        scored, answers = [], {}
        for it in items:
            for rec in outs.get(it.key, []):
                a = model_answer(rec["text"], norm)
                answers.setdefault(it.key, []).append(a)
                scored.append({"answer": a, "refs": it.refs, "seconds": rec["seconds"],
                               "valid": bool(rec["text"]) and is_valid(rec["text"])})  # re-checked here
        if not scored:
            continue
        flags = metrics.recurring(answers)
        rows.append({"system": f"{result['model']} / {name}", **metrics.score(scored, _flat(flags, answers))})
        first = first or answers
    by_key = {it.key: it for it in items}
    if first:
        rrows, rflags = [], []
        for draw in baselines.random_answers(first, pool):
            flags = metrics.recurring(draw)
            rrows += [{"answer": a, "refs": by_key[k].refs} for k, al in draw.items() for a in al]
            rflags += _flat(flags, draw)
        rows.append({"system": f"random emoji ({baselines.DRAWS} draws, model's shapes)",
                     **metrics.score(rrows, rflags)})
    kw = result.get("baselines", {}).get("keyword", {})
    kanswers = {it.key: [norm.answer(kw[it.key])] for it in items if it.key in kw}
    if kanswers:
        krows = [{"answer": al[0], "refs": by_key[k].refs} for k, al in kanswers.items()]
        rows.append({"system": "keyword lookup (emojilib)",
                     **metrics.score(krows, _flat(metrics.recurring(kanswers), kanswers))})
    lrows, lflags = baselines.leave_one_out(items)
    if lrows:
        rows.append({"system": "references, leave one out", **metrics.score(lrows, lflags)})
    return rows


def _flat(flags: dict, answers: dict) -> list[bool]:
    return [f for k in answers for f in flags[k]]


def score_run(result: dict, sets, norm) -> list[dict]:
    pool = baselines.random_pool(norm)
    tables = []
    for rs, kind, items in groups_of(sets, result["half"], result.get("limit")):
        items = [it for it in items if it.key in result["items"]]
        if items:
            tables.append({"set": rs.name, "title": rs.title, "kind": kind, "half": result["half"],
                           "topics": len(items), "recurring_min_topics": metrics.recurring_threshold(len(items)),
                           "rows": score_group(result, items, norm, pool)})
    return tables


def stage_tables(result: dict) -> list[dict]:
    """Stage recall (emogram/quality/stages.py) for the topics to explain that have stage references: each
    strategy's plans, the topic's own words (the floor) and the writers against each other."""
    refs_by_topic = stages.load()
    tables = []
    for half in ("tune", "held-out"):
        keys = [k for k, it in result["items"].items()
                if it["kind"] == "topic" and it["topic"] in refs_by_topic and it["half"] == half]
        if not keys:
            continue
        rows = []
        for name, st in result["strategies"].items():
            scores = [stages.recall(rec.get("plan") or [], refs_by_topic[result["items"][k]["topic"]])
                      for k in keys for rec in st["outputs"].get(k, [])]
            if scores:
                rows.append({"system": f"{result['model']} / {name}", "n": len(scores),
                             "stage_recall": sum(scores) / len(scores)})
        topics = [result["items"][k]["topic"] for k in keys]
        rows.append({"system": "the topic's own words as the plan", "n": len(topics),
                     "stage_recall": sum(stages.topic_words_recall(t, refs_by_topic[t]) for t in topics) / len(topics)})
        rows.append({"system": "stage writers, each against the others", "n": len(topics),
                     "stage_recall": sum(stages.writers_recall(refs_by_topic[t]) for t in topics) / len(topics)})
        tables.append({"half": half, "topics": len(topics), "rows": rows})
    return tables


def render_stages(tables: list[dict]) -> str:
    out = []
    for t in tables:
        half = "TUNE half" if t["half"] == "tune" else "HELD-OUT half"
        out += [f"### Stage recall: topics to explain, {half} ({t['topics']} topics; "
                "share of the stage writers' parts that the plan names)", "",
                "| system | n | stage recall |", "|---|---|---|"]
        out += [f"| {r['system']} | {r['n']} | {_f(r['stage_recall'])} |" for r in t["rows"]]
        out.append("")
    return "\n".join(out)


def _f(x, pct=True, digits=1):
    if x is None:
        return "—"
    return f"{x:.{digits}%}" if pct else f"{x:.{digits}f}"


def render(tables: list[dict]) -> str:
    head = ("system", "n", "prec", "best-J", "hit", "recur", "L1", "L2", "L3", "L4+", "rep-grp",
            "emoji", "lines", "valid", "s/ans")
    out = []
    for t in tables:
        half = "TUNE half" if t["half"] == "tune" else ("HELD-OUT half" if t["half"] == "held-out" else "both halves")
        what = "topics to explain" if t["kind"] == "topic" else "phrases"
        out += [f"### {t['title']}: {what}, {half} ({t['topics']} topics; recurring = in >= "
                f"{t['recurring_min_topics']} other topics)", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in t["rows"]:
            d = r["drift"]
            out.append("| " + " | ".join([
                r["system"], str(r["answers"]), _f(r["precision"]), _f(r["best_jaccard"]), _f(r["hit"]),
                _f(r["recurring"]), _f(d["1"], digits=0), _f(d["2"], digits=0), _f(d["3"], digits=0),
                _f(d["4+"], digits=0), _f(r["repeated_groups"]), _f(r["emoji"], False), _f(r["lines"], False),
                _f(r["valid"], digits=0), _f(r["seconds"], False, 2)]) + " |")
        out.append("")
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--half", choices=("tune", "held-out", "both"), default="tune",
                   help="which half of every reference set (default: tune)")
    p.add_argument("--sets", default="annotators,elco", help="comma-separated: annotators, elco")
    p.add_argument("--elco", type=Path, help="path to ELCo.csv (default: $EMOGRAM_ELCO)")
    p.add_argument("--model", help="preset or .gguf path (default: emogram's default)")
    p.add_argument("--strategy", action="append", choices=sorted(STRATEGIES), help="repeatable; default: default")
    p.add_argument("--define", action="append", default=[], metavar="NAME=JSON",
                   help="an extra strategy: options for explain() as a JSON object (repeatable)")
    p.add_argument("--list-strategies", action="store_true", help="print the strategies and exit")
    p.add_argument("--seeds", type=int, default=1, help="answers per topic (seeds 0..N-1)")
    p.add_argument("--limit", type=int, help="only the first N items of each set and kind (quick look)")
    p.add_argument("--warmup", type=int, default=15,
                   help="untimed answers on other topics before each strategy (default 15)")
    p.add_argument("--no-keyword", action="store_true", help="leave out the keyword baseline")
    p.add_argument("--rescore", type=Path, help="score a saved results JSON again (no model)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    strategies = [STRATEGIES[s] for s in (args.strategy or ([] if args.define else ["default"]))]
    for d in args.define:
        name, _, js = d.partition("=")
        strategies.append(Strategy(name, json.loads(js), "defined on the command line"))
    if args.list_strategies:
        for s in STRATEGIES.values():
            print(f"{s.name:14s} {json.dumps(s.options, ensure_ascii=False):50s} {s.note}")
        return 0
    norm = references.normaliser()
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    if bad := [n for n in names if n not in SET_NAMES]:
        raise SystemExit(f"quality: unknown set(s) {bad}; choose from {SET_NAMES}")
    sets = load_sets(names, references.elco_path(args.elco), norm)
    if args.rescore:
        result = json.loads(args.rescore.read_text(encoding="utf-8"))
        path = args.rescore
    else:
        chosen = [(rs, it) for rs, _, items in groups_of(sets, args.half, args.limit) for it in items]
        model, outputs, warm = generate(args.model, strategies, [it for _, it in chosen],
                                        list(range(args.seeds)),
                                        warmup_topics([it for rs in sets for it in rs.items], args.warmup))
        result = {
            "benchmark": "emogram quality (bench/quality.py)", "date": date.today().isoformat(),
            "model": model, "half": args.half, "limit": args.limit, "seeds": args.seeds,
            "warmup": {"answers": args.warmup, "seconds": warm},
            "split": "tune when sha256(topic lower-cased, whitespace collapsed) is even, else held-out",
            "items": {it.key: {"set": rs.name, "topic": it.topic, "kind": it.kind, "half": it.half}
                      for rs, it in chosen},
            "strategies": {s.name: {"options": s.options, "note": s.note, "outputs": outputs[s.name]}
                           for s in strategies},
            "baselines": {} if args.no_keyword else {"keyword": baselines.keyword_answers([it for _, it in chosen])},
        }
        slug = re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-")
        stem = f"quality-{result['date']}-{slug}-{args.half}" + (f"-limit{args.limit}" if args.limit else "")
        path = args.out / f"{stem}.json"
    result["tables"] = score_run(result, sets, norm)
    result["stage_tables"] = stage_tables(result)
    result["normalisation_dropped"] = dict(norm.dropped.most_common())
    text = render(result["tables"]) + "\n" + render_stages(result["stage_tables"])
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.rescore:
        path.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    path.with_suffix(".md").write_text(text, encoding="utf-8")
    print(f"wrote {path} and {path.with_suffix('.md').name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
