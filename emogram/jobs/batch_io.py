"""Batch jobs, input and output: reading topics, keying them, and the one writer of the output.

* readers (``read_rows``): text lines, a CSV or JSONL column, stdin, or a Python iterable;
* keys (``record_key``): a hash of topic, options, seed and model, so a rerun skips what is done;
* records (``BatchRecord``) and what a worker sends back for one topic (``payload``);
* the writer (``JsonlWriter``): the only thing that writes the output; one ``write`` + ``fsync`` per
  record, at most one record per key, a torn last line cut on resume.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO, cast

fcntl: Any
try:
    import fcntl
except ImportError:  # Windows: no advisory lock; do not run two jobs on one output there
    fcntl = None

from ..errors import InputError, InputTypeError

KEY_VERSION = "emogram-batch/2"  # 2: the adapter is part of the key
INPUT_FORMATS = ("auto", "lines", "csv", "jsonl")
TIMING_FIELDS = ("load_seconds", "prompt_tokens", "prompt_seconds", "eval_tokens", "eval_seconds",
                 "total_seconds", "first_emoji_seconds")

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
        fmt = "lines" if input_format == "auto" else input_format
        return _rows(cast(TextIO, source), fmt, column, "input")
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
        except ValueError as exc:  # JSONDecodeError, or a number too long to convert
            yield Row(k, raw, f"line {k} is not JSON ({getattr(exc, 'msg', exc)})")
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
    emoji, the Emoji version written out: ``options.recorded_options``), sorted: what goes into
    the key and the record."""
    from ..options import recorded_options
    options = recorded_options(options)
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
        from ..backend.models import DEFAULT_PRESET, ENV_MODEL
        return os.environ.get(ENV_MODEL) or DEFAULT_PRESET
    if not isinstance(model, (str, os.PathLike)) or isinstance(os.fspath(model), bytes):
        raise InputTypeError(f"model must be a preset name or a path, not {type(model).__name__}")
    return os.fspath(model)


def adapter_id(adapter) -> str:
    """The adapter as the key names it: as given ("default" for None: the model's own, if any)."""
    if adapter is None:
        return "default"
    return "none" if adapter is False else "shipped" if adapter is True else os.fspath(adapter)


def record_key(topic: str, options: dict[str, Any], seed: int | None, model: str,
               adapter: str = "default") -> str:
    """128 bits of sha256 over the topic (as given), the canonical options, the seed option
    (``None``: random), the model and the adapter (``adapter_id``)."""
    blob = json.dumps([KEY_VERSION, topic, options, seed, model, adapter], ensure_ascii=False,
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
    plan: list[str] | None = None  # the words each group was planned from (absent in older files)
    adapter: str | None = None  # the LoRA adapter that ran (None: none, or an error record)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(", ", ": "))

    @classmethod
    def from_json(cls, line: str | bytes) -> "BatchRecord":
        data = json.loads(line)
        optional = {"plan", "adapter"}
        return cls(**{name: data.get(name) if name in optional else data[name]
                      for name in cls.__dataclass_fields__})


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
    return {"text": result.text, "gloss": result.gloss(), "plan": list(result.plan),
            "adapter": result.adapter or None,
            "timings": {name: getattr(stats, name) for name in TIMING_FIELDS}}


def make_record(task: Task, data: dict[str, Any], *, options: dict[str, Any], model: str,
                threads: int | None = None) -> BatchRecord:
    timings = data.get("timings")
    if timings is not None and threads is not None:
        timings = {**timings, "threads": threads}
    return BatchRecord(key=task.key, row=task.row, topic=task.topic, text=data.get("text"),
                       gloss=data.get("gloss"), model=model, seed=task.seed, options=options,
                       timings=timings, error=data.get("error"), plan=data.get("plan"),
                       adapter=data.get("adapter"))


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


