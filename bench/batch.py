"""`emogram batch` jobs: their throughput by every way of running them, the topics of a large run,
and the check of a run's output.

    python bench/batch.py paths                   # the 200 topics of bench/batch_topics.txt
    python bench/batch.py paths --topics 10       # a quick check of the script itself
    python bench/batch.py paths --model smollm2-135m --paths loop,batch-1
    python bench/batch.py topics 10000 > topics-10k.txt
    python bench/batch.py check OUT.jsonl[.gz] TOPICS.txt [--prefix EARLIER.jsonl]

``paths``: the same topics through every way of running many of them, one run each. Paths (each a
fresh process, started and timed from here, so start-up counts as a user sees it):
  loop        Explainer.explain in a Python loop, one process with every core (what people write today)
  batch-1     emogram batch, one process with every core
  workers-2   emogram batch --workers 2: two processes, cores // 2 llama.cpp threads each
  ray-2       emogram batch --ray --workers 2: a local Ray cluster started by the job, two actors with
              cores // 2 CPUs (and threads) each

Printed per path: wall time and topics/s over it (the figure that matters) and the time to the first
record (start-up: process start, imports, model loads, Ray's start and scheduling; a coarse figure, as
Ray delivers results a block of topics at a time). Then Ray's overhead against the local path with
the same processes and threads (ray-2 against workers-2): extra wall seconds, extra seconds to the
first record, and the ratio of topics/s. (The records' own timings are not summed into a "busy"
figure: with batched decoding a record's time overlaps the others' in its batch.)
Written: bench/results/batch-<model>-<N>topics-<date>.json. Run it alone on the machine: every path
uses all the cores.

``topics N``: N distinct, deterministic topics for a large run (the 10,000-topic run of issue 16),
built from the emoji keywords of the lexicon (CLDR words, not from any evaluation set) in a few
everyday templates, so they read like what people send ("how a kite works", "a lost umbrella"); the
order is shuffled with a fixed seed.

``check``: an output against its input, every topic once and every record valid. Prints whether the
file ends with a complete line; records, distinct keys and topics against the input; how many texts
parse back to themselves (emogram's grammar), error records, invalid ones and input topics missing;
with --prefix, whether the output still starts with that earlier file byte for byte (a run killed
with kill -9, then resumed, must not have touched its records). Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emogram.backend.machine import usable_cores  # noqa: E402

PATHS = ("loop", "batch-1", "workers-2", "ray-2")

LOOP = r"""
import json, sys, time
from emogram import Explainer
from emogram.backend.machine import usable_cores
topics, model, seed = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
explainer = Explainer(model, threads=usable_cores())
with open(topics, encoding="utf-8") as handle, open(sys.argv[4], "w", encoding="utf-8") as out:
    for topic in (line.strip() for line in handle if line.strip()):
        e = explainer.explain(topic, seed=seed)
        out.write(json.dumps({"topic": topic, "text": e.text,
                              "timings": {"total_seconds": e.stats.total_seconds}}, ensure_ascii=False) + "\n")
        out.flush()
"""


def command(path: str, topics: Path, output: Path, model: str | None, seed: int) -> list[str]:
    if path == "loop":
        return [sys.executable, "-c", LOOP, str(topics), model or "", str(seed), str(output)]
    cmd = [sys.executable, "-m", "emogram", "batch", str(topics), "-o", str(output), "--seed", str(seed),
           "--no-progress"]
    if model:
        cmd += ["--model", model]
    half = max(1, usable_cores() // 2)
    if path == "workers-2":
        cmd += ["--workers", "2"]
    elif path == "ray-2":
        cmd += ["--ray", "--workers", "2", "--threads", str(half)]
    return cmd


def processes(path: str) -> int:
    return 1 if path in ("loop", "batch-1") else 2


def run_path(path: str, topics: Path, n: int, workdir: Path, model: str | None, seed: int) -> dict:
    """Run one path, watching its output to time the first record."""
    output = workdir / f"{path}.jsonl"
    start = time.monotonic()
    process = subprocess.Popen(command(path, topics, output, model, seed), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    first = None
    while process.poll() is None:
        if first is None and output.exists() and output.stat().st_size:
            first = time.monotonic() - start
        time.sleep(0.02)
    wall = time.monotonic() - start
    err = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{path} failed ({process.returncode}):\n{err}")
    records = [json.loads(line) for line in output.read_bytes().splitlines()]
    if len(records) != n or any(r.get("error") for r in records):
        raise SystemExit(f"{path} wrote {len(records)} records for {n} topics, "
                         f"{sum(bool(r.get('error')) for r in records)} with errors")
    return {"path": path, "topics": n, "processes": processes(path), "wall_s": round(wall, 3),
            "topics_per_s": round(n / wall, 3), "first_record_s": round(first if first is not None else wall, 3)}


def time_paths(args, p: argparse.ArgumentParser) -> int:
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = set(paths) - set(PATHS)
    if unknown:
        p.error(f"unknown paths: {', '.join(sorted(unknown))}")
    if "ray-2" in paths:
        try:
            import ray.data  # noqa: F401
        except ImportError:  # pragma: no cover
            p.error('ray-2 needs Ray: pip install ".[ray]" (or leave it out with --paths)')
    all_topics = [t for t in (HERE / "batch_topics.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
    topics = all_topics[:args.topics]
    cores = usable_cores()
    print(f"{len(topics)} topics, model {args.model or 'default'}, {cores} usable cores, seed {args.seed}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="emogram-bench-batch-") as tmp:
        workdir = Path(tmp)
        topic_file = workdir / "topics.txt"
        topic_file.write_text("\n".join(topics) + "\n", encoding="utf-8")
        # one untimed topic first, so that every path finds the saved prompt state (as any run
        # after a user's first does)
        warm = workdir / "warm"
        warm.mkdir()
        (warm / "topics.txt").write_text(topics[0] + "\n", encoding="utf-8")
        run_path("batch-1", warm / "topics.txt", 1, warm, args.model, args.seed)
        for path in paths:
            row = run_path(path, topic_file, len(topics), workdir, args.model, args.seed)
            rows.append(row)
            print(f"{path:10s} wall {row['wall_s']:8.2f} s  {row['topics_per_s']:6.2f} topics/s  "
                  f"first record {row['first_record_s']:6.2f} s", flush=True)
    by = {r["path"]: r for r in rows}
    overhead = None
    if "ray-2" in by and "workers-2" in by:
        ray_row, local = by["ray-2"], by["workers-2"]
        overhead = {"extra_wall_s": round(ray_row["wall_s"] - local["wall_s"], 3),
                    "extra_first_record_s": round(ray_row["first_record_s"] - local["first_record_s"], 3),
                    "topics_per_s_ratio": round(ray_row["topics_per_s"] / local["topics_per_s"], 3)}
        print(f"Ray's overhead against --workers 2: {overhead['extra_wall_s']:+.2f} s wall, "
              f"{overhead['extra_first_record_s']:+.2f} s to the first record; topics/s "
              f"{overhead['topics_per_s_ratio']}x")
    args.out.mkdir(parents=True, exist_ok=True)
    label = (args.model or "default").replace("/", "_")
    target = args.out / f"batch-{label}-{len(topics)}topics-{date.today().isoformat()}.json"
    target.write_text(json.dumps({"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                                  "usable_cores": cores, "model": args.model or "default", "seed": args.seed,
                                  "paths": rows, "ray_overhead": overhead}, indent=2) + "\n")
    print(f"wrote {target}")
    return 0


TEMPLATES = ("{w}", "how a {w} works", "the history of the {w}", "a lost {w}", "{w} for beginners",
             "why people love the {w}", "a tiny {w}", "drawing a {w}")


def make_topics(n: int, seed: int = 10_000) -> list[str]:
    from emogram.knowledge.lexicon import _lexicon
    words = sorted({w for entry in _lexicon().entries for w in entry.cldr
                    if w.isalpha() and w.islower() and 3 <= len(w) <= 12})
    out = [t.format(w=w) for w in words for t in TEMPLATES]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} topics can be made")
    random.Random(seed).shuffle(out)
    return out[:n]


def check_output(output: Path, topics_file: Path, prefix: Path | None) -> int:
    from emogram import EmogramError, parse
    opener = gzip.open if output.suffix == ".gz" else open
    with opener(output, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    lines = lines[:-1] if complete else lines
    keys, topics, valid, errors, invalid = set(), set(), 0, 0, 0
    for line in lines:
        record = json.loads(line)
        keys.add(record["key"])
        topics.add(record["topic"])
        if record.get("error"):
            errors += 1
            continue
        try:
            valid += str(parse(record["text"])) == record["text"]
        except EmogramError:
            invalid += 1
    wanted = {t.strip() for t in topics_file.read_text(encoding="utf-8").splitlines() if t.strip()}
    missing = wanted - topics
    print(f"last line complete: {complete}")
    print(f"records {len(lines)}, distinct keys {len(keys)}, distinct topics {len(topics)}; "
          f"input topics {len(wanted)}, missing {len(missing)}")
    print(f"valid {valid}, error records {errors}, invalid {invalid}")
    ok = complete and len(lines) == len(keys) == len(topics) == len(wanted) and not missing
    ok = ok and valid == len(lines)
    if prefix:
        earlier = prefix.read_bytes()
        kept = raw.startswith(earlier)
        n = earlier.count(b"\n")
        print(f"starts with {prefix.name} ({n} records) byte for byte: {kept}")
        ok = ok and kept
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("paths", help="time the same topics through every way of running a batch")
    t.add_argument("--topics", type=int, default=200, help="the first N topics of bench/batch_topics.txt")
    t.add_argument("--model", help="preset or .gguf path (default: the default model)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {', '.join(PATHS)}")
    t.add_argument("--out", type=Path, default=HERE / "results")
    m = sub.add_parser("topics", help="write N distinct, deterministic topics for a large run")
    m.add_argument("n", type=int, nargs="?", default=10_000, help="how many (default 10000)")
    c = sub.add_parser("check", help="check an emogram batch output against its input")
    c.add_argument("output", type=Path)
    c.add_argument("topics", type=Path)
    c.add_argument("--prefix", type=Path, help="an earlier copy the output must still start with")
    args = p.parse_args(argv)
    if args.command == "topics":
        sys.stdout.write("".join(t + "\n" for t in make_topics(args.n)))
        return 0
    if args.command == "check":
        return check_output(args.output, args.topics, args.prefix)
    return time_paths(args, t)


if __name__ == "__main__":
    sys.exit(main())
