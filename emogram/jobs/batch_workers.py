"""Batch jobs, the runners: this process, or worker processes that divide the cores. Each runner
yields ``(task, payload)`` pairs back to the job (``batching.py``); Ray's runner is ``ray_batch.py``.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

from .. import errors
from ..checks import whole
from ..errors import EmogramError
from .batch_io import Task, payload

DEFAULT_CHUNK = 32  # topics handed to a worker at once (Explainer.explain_iter's list)
MAX_ATTEMPTS = 2  # a topic whose worker process died under it this often gets an error record

# --- cores ---------------------------------------------------------------------------------------------

def divide_cores(workers: int, threads: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """``(workers, threads)`` with workers x threads <= the cores this process may use: threads
    default to cores // workers; more workers than cores are cut to the cores (with a warning)."""
    from ..backend.machine import usable_cores

    cores = usable_cores() if cores is None else cores
    whole(workers, "workers", 1)
    if threads is not None:
        whole(threads, "threads", 1)
    if workers > cores:
        warnings.warn(f"{workers} workers but this process may use {cores} cores: running {cores}",
                      stacklevel=3)
        workers = cores
    if threads is None:
        threads = max(1, cores // workers)
    elif workers * threads > cores:
        warnings.warn(f"{workers} workers x {threads} threads is more than the {cores} cores this "
                      "process may use: they will slow each other down", stacklevel=3)
    return workers, threads


# --- runners: yield (task, payload) ----------------------------------------------------------------------

def spread_chunk(n: int, workers: int) -> int:
    """Topics per chunk: up to ``DEFAULT_CHUNK``, but small enough that every worker gets at least
    two chunks of a short job."""
    return max(1, min(DEFAULT_CHUNK, math.ceil(n / (2 * workers))))


def _chunks(tasks: list[Task], size: int) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start:start + size]


def _explain_chunk(explainer, chunk: list[tuple[str, int]], options: dict, batch_size: int | None
                   ) -> Iterator[tuple[int, dict]]:
    topics = [topic for topic, _ in chunk]
    seeds = [seed for _, seed in chunk]
    for index, result in explainer.explain_iter(topics, seed=seeds, batch_size=batch_size, **options):
        yield index, payload(result)


def _run_here(tasks: list[Task], *, model, device, adapter, threads, options, chunk_size, batch_size
              ) -> Iterator[tuple[Task, dict]]:
    from ..api import Explainer

    explainer = Explainer(model, device=device, threads=threads, adapter=adapter)
    for chunk in _chunks(tasks, chunk_size):
        for index, data in _explain_chunk(explainer, [(t.topic, t.seed) for t in chunk], options, batch_size):
            yield chunk[index], data


def _worker_main(conn, model, device, adapter, threads, options, batch_size) -> None:
    """A worker process: load the model once, then explain the chunks the parent sends, sending
    each result back as it finishes. Ends on ``None`` or when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from ..api import Explainer
    try:
        explainer = Explainer(model, device=device, threads=threads, adapter=adapter)
    except EmogramError as exc:
        conn.send(("fatal", type(exc).__name__, str(exc)))
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            message = conn.recv()
            if message is None:
                return
            chunk_id, chunk = message
            for index, data in _explain_chunk(explainer, chunk, options, batch_size):
                conn.send(("result", chunk_id, index, data))
            conn.send(("done", chunk_id))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent is gone


@dataclass
class _Worker:
    process: Any
    conn: Any
    ready: bool = False
    chunks: dict[int, dict[int, Task]] = field(default_factory=dict)  # chunk id -> index -> task


def _run_processes(tasks: list[Task], *, model, device, adapter, workers, threads, options, chunk_size,
                   batch_size) -> Iterator[tuple[Task, dict]]:
    """``workers`` spawned processes, each with its own model; this process hands out chunks (two
    per worker at a time, so none waits) and receives every result. A worker that dies has its
    unfinished topics handed out again; a topic whose worker died under it ``MAX_ATTEMPTS`` times
    gets an error record instead."""
    ctx = mp.get_context("spawn")
    pending: deque[list[Task]] = deque(_chunks(tasks, chunk_size))
    attempts: dict[str, int] = {}
    next_id = 0
    fruitless_deaths = 0  # deaths since the last result: a cap, so a broken set-up cannot loop

    def start() -> _Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker_main, name="emogram-batch-worker", daemon=True,
                              args=(child, model, device, adapter, threads, options, batch_size))
        process.start()
        child.close()
        return _Worker(process, parent)

    pool = [start() for _ in range(workers)]
    try:
        while pending or any(w.chunks for w in pool):
            for w in pool:
                while w.ready and len(w.chunks) < 2 and pending:
                    chunk = pending.popleft()
                    w.chunks[next_id] = dict(enumerate(chunk))
                    w.conn.send((next_id, [(t.topic, t.seed) for t in chunk]))
                    next_id += 1
            waitables = [w.conn for w in pool] + [w.process.sentinel for w in pool]
            ready = set(mpc.wait(waitables, timeout=5))
            for i, w in enumerate(pool):
                if w.conn not in ready and w.process.sentinel not in ready:
                    continue
                alive = True
                try:
                    while w.conn.poll():
                        message = w.conn.recv()
                        kind = message[0]
                        if kind == "ready":
                            w.ready = True
                        elif kind == "fatal":
                            raise getattr(errors, message[1], EmogramError)(message[2])
                        elif kind == "result":
                            _, chunk_id, index, data = message
                            fruitless_deaths = 0
                            yield w.chunks[chunk_id].pop(index), data
                        elif kind == "done":
                            w.chunks.pop(message[1], None)
                except (EOFError, OSError):
                    alive = False
                if alive and w.process.is_alive():
                    continue
                # the worker died: its unfinished topics go out again; the chunk it was running
                # (its oldest) is blamed, and those topics go alone, so a topic that kills its
                # worker ends up blaming only itself
                w.process.join(5)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()
                fruitless_deaths += 1
                if fruitless_deaths > 3 * workers:
                    raise EmogramError(f"worker processes keep dying (last exit code "
                                       f"{w.process.exitcode}) without finishing a topic")
                for position, chunk_id in enumerate(sorted(w.chunks, reverse=True)):
                    rest = list(w.chunks[chunk_id].values())
                    if position < len(w.chunks) - 1:
                        pending.appendleft(rest)  # not started: goes out again as it was
                        continue
                    for task in rest:
                        attempts[task.key] = attempts.get(task.key, 0) + 1
                        if attempts[task.key] >= MAX_ATTEMPTS:
                            yield task, {"error": f"WorkerDied: the worker process died while "
                                                  f"explaining this topic, {MAX_ATTEMPTS} times "
                                                  f"(exit code {w.process.exitcode})"}
                        else:
                            pending.appendleft([task])
                w.conn.close()
                pool[i] = start()
    finally:
        _stop(pool)


def _stop(pool: list[_Worker]) -> None:
    for w in pool:
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 3
    for w in pool:
        w.process.join(max(0.0, deadline - time.monotonic()))
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()


