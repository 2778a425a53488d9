"""Soak: one shared model under threads, interleaved streams and asyncio tasks for minutes, every
answer compared with its sequential same-seed twin, and the process's memory watched.

    python bench/soak.py                      # 180 s on the default model
    python bench/soak.py --seconds 120 --model smollm2-135m
    python bench/soak.py --palettes 40        # also churn through 40 palettes (caches evict)

What runs, all at once, on one ``Explainer``:
  threads   4 threads, each calling ``explain`` in a loop over the work items;
  streams   one thread that opens 8 streams at once and reads them in turns (``zip`` that runs on),
            round after round, plus a 9th stream per round abandoned after its first piece;
  tasks     8 asyncio tasks on one event loop, alternating ``aexplain`` and ``astream``.

The twins (each work item explained alone, on an idle model) are computed first. Counted: answers,
answers that differ from their twin, errors (any exception), and the slots and KV cells still held
at the end. The run itself happens in a child process, so an abort (a crash in llama.cpp) is
counted too, instead of taking the figures with it. RSS is sampled every half second; after the
warm-up (the first fifth of the run) memory is called flat when the largest RSS of the last fifth
is within 3% of the largest RSS of the second fifth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOPICS = ["photosynthesis", "black holes", "the water cycle", "volcanoes", "how vaccines work",
          "recursion", "a cup of tea", "the french revolution", "plate tectonics", "machine learning",
          "the moon landing", "a bicycle", "bread", "rain", "a library", "the internet"]
SHAPES = [{}, {"lines": 1, "steps": 2}, {"lines": 2, "steps": (1, 3)}]
PALETTE_POOL = list("🌱🌳🌲🌴🌵🌾🌿🍀🍁🍂🍃🍄🌰🦀🦞🦐🦑🐙🐚🐌🦋🐛🐜🐝🐞🦗🦂🦟🦠💐🌸💮🌹🥀🌺🌻🌼🌷"
                    "🍇🍈🍉🍊🍋🍌🍍🥭🍎🍏🍐🍑🍒🍓🫐🥝🍅🫒🥥🥑🍆🥔🥕🌽🫑🥒🥬🥦🧄🧅🥜🫘🌰🍞🥐🥖🫓🥨🥯🥞🧇🧀🍖🍗🥩🥓")


def work_items(palettes: int) -> list[tuple[str, int, dict]]:
    items = [(topic, 100 + k, SHAPES[k % len(SHAPES)]) for k, topic in enumerate(TOPICS)]
    for k in range(palettes):  # each palette is a grammar of its own: a setup made, later evicted
        palette = "".join(PALETTE_POOL[(5 * k + j) % len(PALETTE_POOL)] for j in range(10))
        items.append((TOPICS[k % len(TOPICS)], 500 + k, {"lines": 1, "steps": 2, "palette": palette}))
    return items


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers = {"threads": 0, "streams": 0, "tasks": 0}
        self.diffs: list[dict] = []
        self.errors: list[str] = []
        self.abandoned = 0

    def check(self, kind: str, item, text: str, twin: str) -> None:
        with self.lock:
            self.answers[kind] += 1
            if text != twin:
                self.diffs.append({"kind": kind, "topic": item[0], "seed": item[1], "got": text, "twin": twin})

    def error(self, kind: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")


def child(args) -> None:
    from emogram import Explainer, Explanation

    ex = Explainer(args.model)
    items = work_items(args.palettes)
    t0 = time.perf_counter()
    twins = [str(ex.explain(topic, seed=seed, **opts)) for topic, seed, opts in items]
    twin_seconds = time.perf_counter() - t0
    tally = Tally()
    stop = threading.Event()
    samples: list[tuple[float, int]] = []
    start = time.perf_counter()
    deadline = start + args.seconds

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - start, rss_bytes()))
            stop.wait(0.5)

    def threads_worker(t: int) -> None:
        k = t
        while time.perf_counter() < deadline:
            topic, seed, opts = item = items[k % len(items)]
            try:
                tally.check("threads", item, str(ex.explain(topic, seed=seed, **opts)), twins[k % len(items)])
            except Exception as exc:
                tally.error("threads", exc)
            k += 4

    def streams_worker() -> None:
        k = 0
        while time.perf_counter() < deadline:
            chosen = [(k + j) % len(items) for j in range(8)]
            try:
                streams = [ex.stream(items[i][0], seed=items[i][1], **items[i][2]) for i in chosen]
                leaving = ex.stream("the history of the universe", seed=k, lines=4, steps=3)
                next(leaving)
                leaving.close()  # abandoned half way: its sequence is freed
                with tally.lock:
                    tally.abandoned += 1
                pieces: list[list] = [[] for _ in streams]
                open_ = list(range(len(streams)))
                while open_:
                    for j in list(open_):
                        try:
                            pieces[j].append(next(streams[j]))
                        except StopIteration:
                            open_.remove(j)
                for j, i in enumerate(chosen):
                    *text, last = pieces[j]
                    ok = isinstance(last, Explanation) and "".join(text) == str(last)
                    tally.check("streams", items[i], str(last) if ok else "(pieces and answer differ)", twins[i])
            except Exception as exc:
                tally.error("streams", exc)
            k += 8

    async def task_worker(t: int) -> None:
        k = t
        while time.perf_counter() < deadline:
            i = k % len(items)
            topic, seed, opts = items[i]
            try:
                if k % 2:
                    text = str(await ex.aexplain(topic, seed=seed, **opts))
                else:
                    got = [piece async for piece in ex.astream(topic, seed=seed, **opts)]
                    text = str(got[-1]) if "".join(got[:-1]) == str(got[-1]) else "(pieces and answer differ)"
                tally.check("tasks", items[i], text, twins[i])
            except Exception as exc:
                tally.error("tasks", exc)
            k += 8

    async def tasks() -> None:
        await asyncio.gather(*(task_worker(t) for t in range(8)))

    workers = [threading.Thread(target=threads_worker, args=(t,)) for t in range(4)]
    workers += [threading.Thread(target=streams_worker), threading.Thread(target=lambda: asyncio.run(tasks()))]
    watcher = threading.Thread(target=sampler)
    watcher.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    stop.set()
    watcher.join()

    scheduler = ex.engine.scheduler
    for _ in range(500):  # abandoned streams are dropped at the scheduler's next step
        with scheduler._cond:
            idle = not scheduler._waiting and not scheduler._active and len(scheduler._free) == scheduler.slots
        if idle:
            break
        time.sleep(0.01)
    with scheduler._cond:
        held = {"waiting": len(scheduler._waiting), "active": len(scheduler._active),
                "slots_free": len(scheduler._free), "slots": scheduler.slots}
    setups = list(ex.engine._setups.values())
    memo_bytes = 0  # a rough size of the verdict and move memos (containers and their entries)
    for setup in setups:
        memo_bytes += sys.getsizeof(setup.verdicts.states) + sys.getsizeof(setup.verdicts.moves)
        for key, v in setup.verdicts.states.items():
            memo_bytes += sys.getsizeof(key) + sys.getsizeof(v) + sys.getsizeof(v.bad) + sys.getsizeof(v.good)
        for key, m in setup.verdicts.moves.items():
            memo_bytes += sys.getsizeof(key) + (sys.getsizeof(m) if m is not None else 0)
    fifth = args.seconds / 5
    second = [r for t, r in samples if fifth <= t < 2 * fifth]
    last = [r for t, r in samples if t >= 4 * fifth]
    report = {
        "model": ex.model_name, "seconds": round(elapsed, 1), "twin_seconds": round(twin_seconds, 1),
        "work_items": len(items), "answers": tally.answers, "total": sum(tally.answers.values()),
        "diffs": len(tally.diffs), "diff_examples": tally.diffs[:3], "errors": len(tally.errors),
        "error_examples": tally.errors[:3], "abandoned": tally.abandoned, "scheduler_at_end": held,
        "setups": len(setups), "verdict_states": sum(len(s.verdicts.states) for s in setups),
        "moves": sum(len(s.verdicts.moves) for s in setups),
        "candidates_per_setup": [len(s.candidates.tokens) for s in setups],
        "memo_mb_estimate": round(memo_bytes / 2**20, 1),
        "rss_mb": {"start": round(samples[0][1] / 2**20, 1), "max_second_fifth": round(max(second) / 2**20, 1),
                   "max_last_fifth": round(max(last) / 2**20, 1), "max": round(max(r for _, r in samples) / 2**20, 1)},
    }
    growth = max(last) / max(second) - 1
    report["rss_growth_after_warmup"] = f"{100 * growth:+.1f}%"
    report["memory_flat"] = growth <= 0.03
    print(json.dumps(report, ensure_ascii=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--model", default=None, help="preset name or .gguf path (default: the default model)")
    parser.add_argument("--palettes", type=int, default=0, help="extra work items, each with a palette of its own")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds < 10:
        parser.error("--seconds must be at least 10")
    if args.child:
        child(args)
        return
    command = [sys.executable, __file__, "--child", "--seconds", str(args.seconds), "--palettes", str(args.palettes)]
    if args.model:
        command += ["--model", args.model]
    out = subprocess.run(command, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    aborted = out.returncode != 0 or not lines
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    report["aborts"] = int(aborted)
    report["child_exit_status"] = out.returncode
    if aborted:
        report["stderr_tail"] = out.stderr[-2000:]
    print(json.dumps(report, ensure_ascii=False, indent=1))
    answers = report.get("answers", {})
    print(f"\n{report.get('seconds', '?')} s on {report.get('model', '?')}: {report.get('total', 0)} answers "
          f"({answers.get('threads', 0)} from 4 threads, {answers.get('streams', 0)} from 8 interleaved streams, "
          f"{answers.get('tasks', 0)} from 8 asyncio tasks; {report.get('abandoned', 0)} streams abandoned), "
          f"{report.get('diffs', '?')} differing from their twins, {report.get('errors', '?')} errors, "
          f"{report['aborts']} aborts; RSS {report.get('rss_mb', {}).get('max_second_fifth', '?')} -> "
          f"{report.get('rss_mb', {}).get('max_last_fifth', '?')} MB after warm-up "
          f"({report.get('rss_growth_after_warmup', '?')}: {'flat' if report.get('memory_flat') else 'NOT flat'})")
    sys.exit(0 if not aborted and not report.get("diffs") and not report.get("errors") and report.get("memory_flat")
             else 1)


if __name__ == "__main__":
    main()
