"""Batch jobs: a list of topics in, one JSONL record per topic out, resumable after a crash.

    emogram batch topics.txt -o out.jsonl --seed 1 --workers 2

The pieces, in the order data flows through them:

* readers (``batch_io.read_rows``): text lines, a CSV or JSONL column, stdin, or a Python iterable;
* the plan: one ``Task`` per distinct key (a hash of topic, options, seed and model), less the keys
  the output already holds;
* a runner (``batch_workers.py``): this process, worker processes that divide the cores (``--workers``), or a Ray cluster
  (``emogram.jobs.ray_batch``, imported only then). Every runner streams ``(task, payload)`` pairs back
  to this process;
* the writer (``batch_io.JsonlWriter``): the only thing that writes the output; one ``write`` + ``fsync`` per
  record, at most one record per key, a torn last line cut on resume.

Seed rule: with ``seed=S`` every topic uses S, so an answer does not depend on the topic's position
in the input; without, a random seed is drawn for each topic and recorded, so every answer can be
reproduced with ``explain(topic, seed=record.seed, **record.options)``. The key holds the seed
*option* (``None`` for random), so a rerun skips what is done either way.
"""

from __future__ import annotations

import io
import math
import os
import secrets
import sys
import time
from typing import Any, Callable, Generator, Iterable, Iterator, TextIO

from ..checks import seed as check_seed, whole
from ..defaults import MAX_BATCH_SIZE
from ..errors import InputTypeError
from .batch_io import (BatchRecord, JsonlWriter, StreamWriter, Task, adapter_id, canonical_options, make_record,
                       model_id, read_rows, record_key)
from .batch_workers import DEFAULT_CHUNK, _run_here, _run_processes, divide_cores, spread_chunk

__all__ = ["batch", "BatchRun", "BatchRecord", "JsonlWriter", "canonical_options", "divide_cores", "read_rows",
           "record_key"]


# --- progress ---------------------------------------------------------------------------------------

class Progress:
    """``[#####.......] 120/200  3.1 topics/s  ETA 0:26`` on stderr, at most ~5 times a second."""

    def __init__(self, total: int, done: int, stream: TextIO | None = None) -> None:
        self.total, self.done, self.new = total, done, 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = -1
        self.draw(force=True)

    def step(self) -> None:
        self.done += 1
        self.new += 1
        self.draw()

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.2 or self.shown == self.done and self.new:
            return
        self.last, self.shown = now, self.done
        elapsed = now - self.start
        rate = self.new / elapsed if elapsed > 0 and self.new else 0.0
        left = self.total - self.done
        eta = _clock(left / rate) if rate else "--:--"
        width = 24
        filled = width * self.done // max(self.total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  "
                          f"{rate:.1f} topics/s  ETA {eta} ")
        self.stream.flush()

    def finish(self) -> None:
        self.draw(force=True)
        self.stream.write("\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(math.ceil(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# --- the job ------------------------------------------------------------------------------------------

class BatchRun:
    """The running job: iterate it for the records written by this run, in finish order (work
    happens as you iterate). ``total`` distinct topics, of which ``already_done`` were in the
    output; ``duplicates`` input rows repeated a key; ``written`` and ``errors`` count as it goes.
    Closing it (or leaving a ``with`` block) stops the workers and releases the output."""

    def __init__(self, tasks: list[Task], writer, runner: Callable[[list[Task]], Iterator[tuple[Task, dict]]],
                 *, options: dict, model: str, threads: int | None, total: int, already_done: int,
                 duplicates: int, progress: bool) -> None:
        self.tasks = tasks
        self.writer = writer
        self.total, self.already_done, self.duplicates = total, already_done, duplicates
        self.written = self.errors = 0
        self.repaired_bytes = writer.repaired_bytes
        self.seconds = 0.0
        self._runner, self._options, self._model, self._threads = runner, options, model, threads
        self._progress = progress
        self._gen: Generator[BatchRecord, None, None] | None = None

    def __iter__(self) -> "BatchRun":
        return self

    def __next__(self) -> BatchRecord:
        if self._gen is None:
            self._gen = self._drive()
        return next(self._gen)

    def _drive(self) -> Generator[BatchRecord, None, None]:
        start = time.monotonic()
        bar = Progress(self.total, self.already_done) if self._progress else None
        try:
            bad = [t for t in self.tasks if t.problem is not None]
            good = [t for t in self.tasks if t.problem is None]
            results = ((t, {"error": f"InputError: {t.problem}"}) for t in bad)
            for source in (results, self._runner(good) if good else iter(())):
                for task, data in source:
                    record = make_record(task, data, options=self._options, model=self._model,
                                         threads=self._threads)
                    if not self.writer.write(record):
                        continue  # a retried topic that came back twice: once in the output
                    self.written += 1
                    self.errors += record.error is not None
                    self.seconds = time.monotonic() - start
                    if bar:
                        bar.step()
                    yield record
        finally:
            self.seconds = time.monotonic() - start
            if bar:
                bar.finish()
            self.writer.close()

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        self.writer.close()

    def __enter__(self) -> "BatchRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def summary(self) -> str:
        rate = f", {self.written / self.seconds:.2f} topics/s" if self.seconds and self.written else ""
        parts = [f"{self.total} topic{'s' * (self.total != 1)}: {self.written} written now",
                 f"{self.already_done} already there"]
        if self.duplicates:
            parts.append(f"{self.duplicates} repeated input rows skipped")
        if self.errors:
            parts.append(f"{self.errors} errors (see their error field)")
        if self.repaired_bytes:
            parts.append(f"a torn last line ({self.repaired_bytes} bytes) from an interrupted run was cut and redone")
        return ", ".join(parts) + rate


def batch(topics: str | os.PathLike[str] | TextIO | Iterable[str], output: str | os.PathLike[str] | TextIO | None = None,
          *, column: str | None = None, input_format: str = "auto",
          model: str | os.PathLike[str] | None = None, device: str = "auto",
          adapter: str | os.PathLike[str] | bool | None = None, workers: int | None = None,
          threads: int | None = None, ray: str | None = None, seed: int | None = None,
          progress: bool | None = None, chunk_size: int | None = None, batch_size: int | None = None,
          **options) -> BatchRun:
    """Explain every topic of a file (a path, ``"-"`` for stdin) or an iterable of str, writing one
    JSONL record per topic to ``output`` (a path: resumable; a text stream; or ``None``: records
    are only returned). Returns a ``BatchRun``: iterate it for the records written by this run,
    in finish order.

    Everything is checked before any model work: the options (those of ``explain``), the input
    (read whole, to know the total), and the output (keys already there are skipped; a torn last
    line is cut). ``workers`` processes divide the cores: each gets ``threads`` llama.cpp threads,
    by default cores // workers. ``ray`` (``"local"``, ``"auto"`` or a cluster address) runs the
    job on Ray instead (``pip install "emogram[ray]"``); there ``workers`` is the number of actors
    (default: the cluster's CPUs // threads) and ``threads`` the CPUs of each (default 1).
    ``seed``: one int for every topic, or ``None`` for a random seed per topic, recorded."""
    from ..options import build_request
    from ..backend.models import check_adapter, check_device

    check_device(device)
    check_adapter(adapter)
    check_seed(seed, what=" (the same for every topic) or None (a random seed per topic, recorded)")
    build_request(**options)  # every option checked once, before any work
    opts = canonical_options(options)
    model_name = model_id(model)
    if chunk_size is not None:
        whole(chunk_size, "chunk_size", 1)
    if batch_size is not None:
        whole(batch_size, "batch_size", 1, MAX_BATCH_SIZE)
    if ray is None:
        workers, threads = divide_cores(1 if workers is None else workers, threads)
    else:
        for value, name in ((workers, "workers"), (threads, "threads")):
            if value is not None:
                whole(value, name, 1)
    rows = read_rows(topics, column=column, input_format=input_format)
    writer = _writer_for(output)
    try:
        tasks: list[Task] = []
        seen: set[str] = set()
        duplicates = already = 0
        for row in rows:
            key = record_key(row.topic, opts, seed, model_name, adapter_id(adapter))
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if key in writer:
                already += 1
                continue
            tasks.append(Task(row.number, row.topic, secrets.randbelow(2**32) if seed is None else seed,
                              key, row.problem))
    except BaseException:
        writer.close()
        raise
    show = sys.stderr.isatty() if progress is None else bool(progress)
    call: dict[str, Any] = dict(model=model, device=device, adapter=adapter, options=options,
                                batch_size=batch_size)
    if ray is not None:
        from . import ray_batch
        runner, threads = ray_batch.runner(ray, workers=workers, threads=threads, chunk_size=chunk_size,
                                           **call)
    elif workers == 1:
        size = chunk_size or DEFAULT_CHUNK
        runner = lambda todo: _run_here(todo, threads=threads, chunk_size=size, **call)  # noqa: E731
    else:
        size = chunk_size or spread_chunk(len(tasks), workers or 1)  # an int here: divide_cores set it
        runner = lambda todo: _run_processes(todo, workers=workers, threads=threads,  # noqa: E731
                                             chunk_size=size, **call)
    return BatchRun(tasks, writer, runner, options=opts, model=model_name, threads=threads,
                    total=len(seen), already_done=already, duplicates=duplicates, progress=show)


class _NoWriter(StreamWriter):
    def __init__(self) -> None:
        super().__init__(io.StringIO())

    def write(self, record: BatchRecord) -> bool:
        if record.key in self.keys:
            return False
        self.keys.add(record.key)
        return True


def _writer_for(output):
    if output is None:
        return _NoWriter()
    if isinstance(output, (str, os.PathLike)):
        if os.fspath(output) == "-":
            return StreamWriter(sys.stdout)
        return JsonlWriter(output)
    if hasattr(output, "write"):
        return StreamWriter(output)
    raise InputTypeError(f"output must be a path, a text stream or None, not {type(output).__name__}")
