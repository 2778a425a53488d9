"""The long run of the readers' fuzz (``tests/fuzz_readers.py``): N generated inputs per parser,
each checked for a correct result or an ``EmogramError``; every other exception, every hang past
the deadline and the memory the run reached are counted, not stopped at, and the first few inputs
of each finding are printed in full.

    python bench/fuzz_long.py --examples 10000                  # every parser
    python bench/fuzz_long.py --examples 2000 --targets gguf live --seed 7

The process runs under a memory limit (``--memory-mb``, RLIMIT_AS): a read that trusts a size it was
told, or a device's endless bytes, ends in a ``MemoryError`` that is counted, instead of in a
machine out of memory. The figures go to stdout, and with ``--out`` to a Markdown file.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

ALL = ("gguf", "ollama", "folders", "protocol", "live", "caches", "bank")


def run_target(name: str, examples: int, seed: int, show: int) -> dict:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    import fuzz_readers as fz
    strategy = fz.LIVE if name == "live" else fz.TARGETS[name][0]
    live = fz.LiveServer() if name == "live" else None
    counts: collections.Counter = collections.Counter()
    findings: collections.Counter = collections.Counter()
    shown: list[str] = []
    stats = {"examples": 0, "hangs": 0, "slowest": 0.0}

    @fixed_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(example) -> None:
        stats["examples"] += 1
        start = time.perf_counter()
        try:
            said = fz.run_one(name, example, live)
            counts[said.split(",")[0][:60]] += 1
            if name == "live" and example[1] == "whole" and stats["examples"] % 25 == 0:
                assert live.good()[-1] == {"exit": 0, "timings": False}, "a good request after"
        except fz.Hang:
            stats["hangs"] += 1
            findings["Hang"] += 1
            if len(shown) < show:
                shown.append(f"hang on {example!r:.2000}")
        except Exception as exc:  # noqa: BLE001 - the finding itself
            findings[type(exc).__name__] += 1
            if len(shown) < show:
                shown.append(f"{type(exc).__name__}: {exc!s:.300} on {example!r:.2000}\n"
                             f"{''.join(traceback.format_exc(limit=-4))}")
        stats["slowest"] = max(stats["slowest"], time.perf_counter() - start)

    begun = time.perf_counter()
    try:
        one()
    finally:
        if live is not None:
            live.close()
    return {"name": name, "examples": stats["examples"], "findings": dict(findings), "hangs": stats["hangs"],
            "slowest": stats["slowest"], "seconds": time.perf_counter() - begun, "outcomes": counts.most_common(8),
            "shown": shown, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=10_000, help="inputs per parser (default 10000)")
    p.add_argument("--targets", nargs="+", choices=ALL, default=list(ALL))
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--memory-mb", type=int, default=3072, help="the process's address-space limit")
    p.add_argument("--show", type=int, default=3, help="inputs printed per finding kind")
    p.add_argument("--out", type=Path, help="also write the figures here (Markdown)")
    args = p.parse_args(argv)
    limit = args.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    rows = []
    for name in args.targets:
        result = run_target(name, args.examples, args.seed, args.show)
        rows.append(result)
        bad = sum(result["findings"].values())
        print(f"{name}: {result['examples']} inputs, {bad} findings {result['findings'] or ''}, "
              f"{result['hangs']} hangs, slowest {result['slowest']:.2f}s, {result['seconds']:.0f}s in all, "
              f"peak RSS {result['max_rss_mb']:.0f} MB", flush=True)
        print("  outcomes: " + "; ".join(f"{k} x{v}" for k, v in result["outcomes"]), flush=True)
        for text in result["shown"]:
            print("  " + text.replace("\n", "\n    "), flush=True)
    if args.out:
        lines = [f"# Readers' fuzz, long run ({time.strftime('%Y-%m-%d')})", "",
                 f"`python bench/fuzz_long.py --examples {args.examples} --seed {args.seed}` "
                 f"(memory limit {args.memory_mb} MB, deadline {__import__('fuzz_readers').DEADLINE:g} s "
                 f"per input; {os.cpu_count()} cores)", "",
                 "| parser | inputs | non-emogram exceptions | hangs | slowest input | time | peak RSS |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['name']} | {r['examples']} | {sum(r['findings'].values()) - r['hangs']} | "
                         f"{r['hangs']} | {r['slowest']:.2f} s | {r['seconds']:.0f} s | {r['max_rss_mb']:.0f} MB |")
        lines += ["", "Most common outcomes per parser:", ""]
        for r in rows:
            lines.append(f"- {r['name']}: " + "; ".join(f"{k} x{v}" for k, v in r["outcomes"]))
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if all(not r["findings"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
