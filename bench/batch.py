"""Batch throughput: the same topics through every way of running many of them, one run each.

    python bench/batch.py                      # the 200 topics of bench/batch_topics.txt
    python bench/batch.py --topics 10          # a quick check of the script itself
    python bench/batch.py --model smollm2-135m --paths loop,batch-1

Paths (each a fresh process, started and timed from here, so start-up counts as a user sees it):
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
Written: bench/results/batch-<model>-<N>topics-<date>.json.

Run it alone on the machine: every path uses all the cores.
"""

from __future__ import annotations

import argparse
import json
import platform
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topics", type=int, default=200, help="the first N topics of bench/batch_topics.txt")
    p.add_argument("--model", help="preset or .gguf path (default: the default model)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {', '.join(PATHS)}")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
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


if __name__ == "__main__":
    main()
