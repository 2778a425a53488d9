"""Batch jobs: a list of topics in, one JSONL record per topic out, resumable after a crash.

    emogram batch topics.txt -o out.jsonl --seed 1 --workers 2

The pieces, in the order data flows through them:

* readers (``read_rows``): text lines, a CSV or JSONL column, stdin, or a Python iterable;
* the plan: one ``Task`` per distinct key (a hash of topic, options, seed and model), less the keys
  the output already holds;
* a runner: this process, worker processes that divide the cores (``--workers``), or a Ray cluster
  (``emogram.ray_batch``, imported only then). Every runner streams ``(task, payload)`` pairs back
  to this process;
* the writer (``JsonlWriter``): the only thing that writes the output; one ``write`` + ``fsync`` per
  record, at most one record per key, a torn last line cut on resume.

Seed rule: with ``seed=S`` every topic uses S, so an answer does not depend on the topic's position
in the input; without, a random seed is drawn for each topic and recorded, so every answer can be
reproduced with ``explain(topic, seed=record.seed, **record.options)``. The key holds the seed
*option* (``None`` for random), so a rerun skips what is done either way.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import secrets
import signal
import sys
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; do not run two jobs on one output there
    fcntl = None

from . import errors
from .errors import EmogramError, InputError, InputTypeError

KEY_VERSION = "emogram-batch/1"
INPUT_FORMATS = ("auto", "lines", "csv", "jsonl")
DEFAULT_CHUNK = 32  # topics handed to a worker at once (Explainer.explain_iter's list)
TIMING_FIELDS = ("load_seconds", "prompt_tokens", "prompt_seconds", "eval_tokens", "eval_seconds",
                 "total_seconds", "first_emoji_seconds")
MAX_ATTEMPTS = 2  # a topic whose worker process died under it this often gets an error record


# --- input ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One input row: its 1-based number, the topic, or what is wrong with the row."""

    number: int
    topic: str
    problem: str | None = None


def read_rows(source: str | os.PathLike[str] | TextIO | Iterable[str], *, column: str | None = None,
              input_format: str = "auto") -> Iterator[Row]:
    """Rows of a text file (one topic per line; blank lines skipped), a CSV column (default
    ``topic``, or the only column), a JSONL field (default ``topic``; a line may also be a bare JSON
    string), stdin (``"-"``), an open text file, or an iterable of topics.

    A row that cannot give a topic (a JSONL line that is not JSON, a missing field) comes out with
    ``problem`` set and becomes an error record; a missing CSV column is refused before any work."""
    if input_format not in INPUT_FORMATS:
        raise InputError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    if column is not None and not isinstance(column, str):
        raise InputTypeError(f"column must be a str, not {type(column).__name__}")
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        fmt = input_format if input_format != "auto" else _format_of(name)
        if name == "-":
            return _rows(sys.stdin, fmt, column, "stdin")
        path = Path(name)
        if not path.is_file():
            raise InputError(f"input file not found: {name}")
        handle = open(path, encoding="utf-8-sig", errors="replace", newline="")
        try:
            return _closing(handle, _rows(handle, fmt, column, name))
        except BaseException:
            handle.close()
            raise
    if isinstance(source, io.TextIOBase):
        return _rows(source, "lines" if input_format == "auto" else input_format, column, "input")
    if isinstance(source, (bytes, bytearray)) or not hasattr(source, "__iter__"):
        raise InputTypeError(f"topics must be a file path or an iterable of str, not {type(source).__name__}")
    if column is not None or input_format not in ("auto", "lines"):
        raise InputError("column and input_format apply to files; pass the topics themselves as a list")
    return (Row(k, t) for k, t in enumerate(source, 1))


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "lines")


def _closing(handle: TextIO, rows: Iterator[Row]) -> Iterator[Row]:
    with handle:
        yield from rows


def _rows(handle: TextIO, fmt: str, column: str | None, name: str) -> Iterator[Row]:
    if fmt == "lines":
        if column is not None:
            raise InputError(f"--column needs a CSV or JSONL input; {name} is read as one topic per line "
                             "(use --input-format csv or jsonl)")
        return (Row(k, line.rstrip("\r\n")) for k, line in enumerate(handle, 1) if line.strip())
    if fmt == "csv":
        return _csv_rows(handle, column, name)
    return _jsonl_rows(handle, column or "topic")


def _csv_rows(handle: TextIO, column: str | None, name: str) -> Iterator[Row]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return iter(())
    if column is None:
        column = "topic" if "topic" in header or len(header) != 1 else header[0]
    if column not in header:
        raise InputError(f"{name} has no column {column!r} (its columns: {', '.join(header)}); "
                         "choose one with --column")
    at = header.index(column)
    return (Row(k, cells[at] if at < len(cells) else "",
                None if at < len(cells) else f"row {k} has no {column!r} cell")
            for k, cells in enumerate(reader, 1) if cells)


def _jsonl_rows(handle: TextIO, column: str) -> Iterator[Row]:
    for k, line in enumerate(handle, 1):
        if not line.strip():
            continue
        raw = line.strip()
        try:
            value = json.loads(raw)
        except ValueError as exc:
            yield Row(k, raw, f"line {k} is not JSON ({exc.msg})")
            continue
        if isinstance(value, dict):
            if column not in value:
                yield Row(k, raw, f"line {k} has no {column!r} field")
                continue
            value = value[column]
        if not isinstance(value, str):
            yield Row(k, raw, f"line {k}: the topic is a {type(value).__name__}, not a string")
            continue
        yield Row(k, value)


# --- options, keys and records -----------------------------------------------------------------------

def canonical_options(options: dict[str, Any]) -> dict[str, Any]:
    """The explain options as JSON (``None`` values dropped, tuples as lists, operators as their
    emoji), sorted: what goes into the key and the record."""
    out = {}
    for name in sorted(options):
        value = options[name]
        if value is None:
            continue
        if name == "emoji_filter":
            raise InputError("batch jobs take palette/emoji_version/exclude, not emoji_filter "
                             "(an object that a JSON record cannot hold)")
        out[name] = _jsonable(name, value)
    return out


def _jsonable(name: str, value: Any) -> Any:
    if isinstance(value, Enum):
        return _jsonable(name, getattr(value, "symbol", value.value))
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(name, v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    raise InputTypeError(f"{name}: a batch option must be a str, number, bool or list, "
                         f"not {type(value).__name__}")


def model_id(model: str | os.PathLike[str] | None) -> str:
    """The model as the key and record name it: the spec as given, or what ``None`` stands for."""
    if model is None:
        from .models import DEFAULT_PRESET, ENV_MODEL
        return os.environ.get(ENV_MODEL) or DEFAULT_PRESET
    if not isinstance(model, (str, os.PathLike)) or isinstance(os.fspath(model), bytes):
        raise InputTypeError(f"model must be a preset name or a path, not {type(model).__name__}")
    return os.fspath(model)


def record_key(topic: str, options: dict[str, Any], seed: int | None, model: str) -> str:
    """128 bits of sha256 over the topic (as given), the canonical options, the seed option
    (``None``: random) and the model."""
    blob = json.dumps([KEY_VERSION, topic, options, seed, model], ensure_ascii=False,
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class BatchRecord:
    """One line of the output. ``text``/``gloss``/``timings`` are ``None`` when ``error`` is set."""

    key: str
    row: int
    topic: str
    text: str | None
    gloss: str | None
    model: str
    seed: int
    options: dict[str, Any]
    timings: dict[str, Any] | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(", ", ": "))

    @classmethod
    def from_json(cls, line: str | bytes) -> "BatchRecord":
        data = json.loads(line)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Task:
    """One topic to explain: the input row, the seed it runs with, and its key."""

    row: int
    topic: str
    seed: int
    key: str
    problem: str | None = None


def payload(result) -> dict[str, Any]:
    """What a worker sends back for one topic (an ``Explanation`` or an ``EmogramError``): plain
    data, so it crosses process and Ray boundaries unchanged."""
    if isinstance(result, BaseException):
        return {"error": f"{type(result).__name__}: {result}"}
    stats = result.stats
    return {"text": result.text, "gloss": result.gloss(),
            "timings": {name: getattr(stats, name) for name in TIMING_FIELDS}}


def make_record(task: Task, data: dict[str, Any], *, options: dict[str, Any], model: str,
                threads: int | None = None) -> BatchRecord:
    timings = data.get("timings")
    if timings is not None and threads is not None:
        timings = {**timings, "threads": threads}
    return BatchRecord(key=task.key, row=task.row, topic=task.topic, text=data.get("text"),
                       gloss=data.get("gloss"), model=model, seed=task.seed, options=options,
                       timings=timings, error=data.get("error"))


# --- the writer ------------------------------------------------------------------------------------

class JsonlWriter:
    """Appends records to a JSONL file, one ``write`` + ``fsync`` each, at most once per key.

    Opening it reads the keys already there. A last line without its newline (or not JSON) can
    only come from a writer killed mid-line: it is cut off and reported in ``repaired_bytes``, and
    its topic is done again. A bad line before the last is refused (not our file). An exclusive
    lock on the file keeps two batch jobs from appending to one output."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        existed = self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise InputError(f"cannot open the output {self.path}: {exc.strerror}") from None
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise InputError(f"{self.path} is being written by another emogram batch; wait for it "
                             "to finish or choose another output") from None
        try:
            self.keys, self.repaired_bytes = self._scan()
        except BaseException:
            self.close()
            raise
        if not existed:
            _fsync_dir(self.path.parent)

    def _scan(self) -> tuple[set[str], int]:
        data = b""
        with open(self.path, "rb") as handle:
            data = handle.read()
        keys: set[str] = set()
        good = 0  # bytes of complete, valid lines
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
        for number, line in enumerate(lines, 1):
            key = _key_of(line)
            if key is None:
                if number == len(lines) and not tail:
                    tail = line + b"\n"  # a bad last line: treat as torn
                    break
                raise InputError(f"{self.path} line {number} is not an emogram batch record; "
                                 "was it written by something else? Fix or remove it, or choose "
                                 "another output")
            keys.add(key)
            good += len(line) + 1
        if tail:
            os.ftruncate(self._fd, good)
            os.fsync(self._fd)
        return keys, len(tail)

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def write(self, record: BatchRecord) -> bool:
        """Append ``record`` unless its key is there already; ``True`` if it was written."""
        if record.key in self.keys:
            return False
        data = (record.to_json() + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        self.keys.add(record.key)
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # also drops the lock
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class StreamWriter:
    """The same interface over an open text stream (stdout): no resume, one record per key."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.keys: set[str] = set()
        self.repaired_bytes = 0

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def write(self, record: BatchRecord) -> bool:
        if record.key in self.keys:
            return False
        self.stream.write(record.to_json() + "\n")
        self.stream.flush()
        self.keys.add(record.key)
        return True

    def close(self) -> None:
        pass


def _key_of(line: bytes) -> str | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    key = data.get("key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- cores ---------------------------------------------------------------------------------------------

def divide_cores(workers: int, threads: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """``(workers, threads)`` with workers x threads <= the cores this process may use: threads
    default to cores // workers; more workers than cores are cut to the cores (with a warning)."""
    from .llama import usable_cores

    cores = usable_cores() if cores is None else cores
    _check_count(workers, "workers")
    if threads is not None:
        _check_count(threads, "threads")
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


def _check_count(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise InputError(f"{name} must be at least 1, got {value}")


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


def _run_here(tasks: list[Task], *, model, device, threads, options, chunk_size, batch_size
              ) -> Iterator[tuple[Task, dict]]:
    from .api import Explainer

    explainer = Explainer(model, device=device, threads=threads)
    for chunk in _chunks(tasks, chunk_size):
        for index, data in _explain_chunk(explainer, [(t.topic, t.seed) for t in chunk], options, batch_size):
            yield chunk[index], data


def _worker_main(conn, model, device, threads, options, batch_size) -> None:
    """A worker process: load the model once, then explain the chunks the parent sends, sending
    each result back as it finishes. Ends on ``None`` or when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from .api import Explainer
    try:
        explainer = Explainer(model, device=device, threads=threads)
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


def _run_processes(tasks: list[Task], *, model, device, workers, threads, options, chunk_size,
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
                              args=(child, model, device, threads, options, batch_size))
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
        self._gen: Iterator[BatchRecord] | None = None

    def __iter__(self) -> "BatchRun":
        return self

    def __next__(self) -> BatchRecord:
        if self._gen is None:
            self._gen = self._drive()
        return next(self._gen)

    def _drive(self) -> Iterator[BatchRecord]:
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
          model: str | os.PathLike[str] | None = None, device: str = "auto", workers: int | None = None,
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
    from .api import build_request
    from .models import check_device

    check_device(device)
    if seed is not None:
        _check_seed(seed)
    build_request(**options)  # every option checked once, before any work
    opts = canonical_options(options)
    model_name = model_id(model)
    if chunk_size is not None:
        _check_count(chunk_size, "chunk_size")
    if batch_size is not None:
        _check_count(batch_size, "batch_size")
    if ray is None:
        workers, threads = divide_cores(1 if workers is None else workers, threads)
    else:
        for value, name in ((workers, "workers"), (threads, "threads")):
            if value is not None:
                _check_count(value, name)
    rows = read_rows(topics, column=column, input_format=input_format)
    writer = _writer_for(output)
    try:
        tasks: list[Task] = []
        seen: set[str] = set()
        duplicates = already = 0
        for row in rows:
            key = record_key(row.topic, opts, seed, model_name)
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
    call = dict(model=model, device=device, options=options, batch_size=batch_size)
    if ray is not None:
        from . import ray_batch
        runner, threads = ray_batch.runner(ray, workers=workers, threads=threads, chunk_size=chunk_size,
                                           **call)
    elif workers == 1:
        size = chunk_size or DEFAULT_CHUNK
        runner = lambda todo: _run_here(todo, threads=threads, chunk_size=size, **call)  # noqa: E731
    else:
        size = chunk_size or spread_chunk(len(tasks), workers)
        runner = lambda todo: _run_processes(todo, workers=workers, threads=threads,  # noqa: E731
                                             chunk_size=size, **call)
    return BatchRun(tasks, writer, runner, options=opts, model=model_name, threads=threads,
                    total=len(seen), already_done=already, duplicates=duplicates, progress=show)


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputTypeError(f"seed must be an int (the same for every topic) or None (a random "
                             f"seed per topic, recorded), not {type(seed).__name__}")


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
