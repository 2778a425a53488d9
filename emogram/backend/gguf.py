"""GGUF files read without llama.cpp: a header check before llama.cpp opens a file, and the tensor
table, so the candidate-only output head (``head.py``) can find the output matrix.

llama.cpp aborts on some malformed files instead of returning an error, and ctypes cannot catch
that; so emogram refuses anything that is not plainly a GGUF file first (``check_header``). The
tensor table is read with bounds checks on every length, so a corrupt table is a ``ModelError``.
"""

from __future__ import annotations

import functools
import mmap
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..files import check_path, read_regular

GGUF_MAGIC = b"GGUF"

# GGUF metadata value types: size in bytes of the fixed-size ones.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_FORMAT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")
MAX_NESTING = 4  # arrays of arrays, this deep at most (llama.cpp itself reads none); deeper is refused


def check_header(path: str | os.PathLike[str], what: str = "model file") -> Path:
    """Refuse anything that is not a readable GGUF file, naming the path, before llama.cpp sees it:
    a regular file only (a pipe or a device is refused by name, and never read past its header)."""
    p = Path(check_path(path, what, ModelError))
    try:
        p = p.expanduser()
    except RuntimeError:  # "~name/..." for a user that does not exist: the path as written
        pass
    try:
        found, is_dir = p.exists(), p.is_dir()
        mode = p.stat().st_mode if found else 0
    except OSError as exc:  # a name too long, a loop of links: not a model file either way
        raise ModelError(f"cannot use {what} path {_short(p)}: {exc.strerror or exc}") from None
    if not found:
        raise ModelError(f"{what} not found: {_short(p)}")
    if is_dir:
        raise ModelError(f"{what} path is a directory, not a .gguf file: {p}")
    if not stat.S_ISREG(mode):
        raise ModelError(f"{what} {p} is not a regular file (a pipe or a device, such as <(cat x.gguf), "
                         "cannot be loaded): save it to a file and pass that path")
    head = read_regular(p, 24, what, ModelError, head=True)
    if head[:4] != GGUF_MAGIC:
        raise ModelError(f"not a GGUF {what} (it starts with {head[:4]!r}, not b'GGUF'): {p}")
    if len(head) < 24:
        raise ModelError(f"GGUF {what} is truncated ({len(head)} bytes): {p}")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise ModelError(f"unsupported GGUF version {version} (llama.cpp reads 2 and 3): {p}")
    if n_tensors == 0 or n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ModelError(f"GGUF header of {p} is implausible ({n_tensors} tensors, {n_kv} keys)")
    return p


def _short(p: Path, limit: int = 300) -> str:
    text = str(p)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Tensor:
    name: str
    dims: tuple[int, ...]  # ne[0] first: a matrix of n rows of k values is (k, n)
    ggml_type: int
    offset: int  # absolute, in the file


@dataclass(frozen=True)
class TensorTable:
    """Scalar metadata (arrays are skipped) and where each tensor's data lies in the file."""

    metadata: dict[str, object]
    tensors: dict[str, Tensor]
    size: int


class _Reader:
    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise ModelError(f"GGUF file {self.path} ends inside its header")
        value = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        n = self.take("<Q")
        if n > 1 << 24 or self.at + n > len(self.data):
            raise ModelError(f"GGUF file {self.path} has a string of implausible length {n}")
        text = bytes(self.data[self.at:self.at + n]).decode("utf-8", errors="replace")
        self.at += n
        return text

    def value(self, kind: int, depth: int = 0) -> object:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            if depth >= MAX_NESTING:  # an explicit bound: never Python's recursion limit
                raise ModelError(f"GGUF file {self.path} nests arrays more than {MAX_NESTING} deep")
            inner, n = self.take("<I"), self.take("<Q")
            if inner in _FIXED:
                self.at += _FIXED[inner] * n
                if self.at > len(self.data):
                    raise ModelError(f"GGUF file {self.path} ends inside an array")
            elif inner == _STRING:  # the vocabulary: skipped by length, never decoded
                data, at, end, unpack = self.data, self.at, len(self.data), _U64.unpack_from
                for _ in range(n):
                    if at + 8 > end:
                        raise ModelError(f"GGUF file {self.path} ends inside an array")
                    at += 8 + unpack(data, at)[0]
                if at > end:
                    raise ModelError(f"GGUF file {self.path} ends inside an array")
                self.at = at
            else:  # each value takes at least one byte: the file's end bounds the loop
                for _ in range(n):
                    self.value(inner, depth + 1)
            return None  # arrays (the vocabulary) are not needed here
        if kind not in _FORMAT:
            raise ModelError(f"GGUF file {self.path} has an unknown metadata type {kind}")
        return self.take(_FORMAT[kind])


def read_table(path: str | os.PathLike[str], what: str = "model file") -> TensorTable:
    """The metadata scalars and tensor table of a GGUF file (checked with ``check_header`` first).
    A ``ModelError`` for anything else: every length is checked against the file's end, and arrays
    nest at most ``MAX_NESTING`` deep."""
    p = check_header(path, what)
    try:
        with p.open("rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or os.fstat(f.fileno()).st_size < 24:
                raise ModelError(f"{what} {p} changed while it was read")  # replaced since the check
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _read_table(data, p)
    except (OSError, ValueError) as exc:  # ValueError: mmap of a file that shrank to nothing
        raise ModelError(f"cannot read {what} {p}: {getattr(exc, 'strerror', None) or exc}") from None


def _read_table(data: mmap.mmap, p: Path) -> TensorTable:
    r = _Reader(data, p)
    r.at = 8
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    metadata: dict[str, object] = {}
    for _ in range(n_kv):
        key = r.string()
        value = r.value(r.take("<I"))
        if value is not None:
            metadata[key] = value
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        if not 1 <= n_dims <= 4:
            raise ModelError(f"GGUF tensor {name!r} in {p} has {n_dims} dimensions")
        dims = tuple(r.take("<Q") for _ in range(n_dims))
        infos.append((name, dims, r.take("<I"), r.take("<Q")))
    align = metadata.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0:
        raise ModelError(f"GGUF file {p} has an invalid alignment {align!r}")
    start = (r.at + align - 1) // align * align
    size = len(data)
    tensors = {name: Tensor(name, dims, kind, start + off) for name, dims, kind, off in infos}
    return TensorTable(metadata, tensors, size)


def table_of(path: str | os.PathLike[str]) -> TensorTable:
    """``read_table``, remembered per file (path, size, modification time): the output head and an
    adapter's shape check read the same model's table."""
    p = check_header(path)
    try:
        st = p.stat()
        key = str(p.resolve())
    except (OSError, RuntimeError) as exc:  # gone since the check, or a loop of links
        raise ModelError(f"cannot read model file {p}: {getattr(exc, 'strerror', None) or exc}") from None
    return _table(key, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _table(path: str, size: int, mtime: int) -> TensorTable:
    return read_table(path)
