"""Hostile files and requests for emogram's readers, as hypothesis strategies, and the check each
input must pass: a correct result or an ``EmogramError``, and never another exception, a hang past
``DEADLINE``, or (in the long run, under a memory limit) an unbounded read.

The parsers: the GGUF header and metadata reader (``backend/gguf.py``, through ``adapter.read`` as
well), ollama manifests and config blobs (``backend/ollama_store.py``), LM Studio's and the hub
cache's layouts (``backend/stores.py``, ``store_places.py``), the server's request protocol
(``server.parse_request``, and a live ``server.Server`` over a Unix socket), the cache files (the
prompt and set-up caches, the checksum file beside an assembled model) and the explanation bank's
files (``knowledge/bank.py``).

Each ``check_*`` takes one generated input and a fresh empty folder, builds the files there, runs
the reader and returns what happened ("ok", or "refused: ErrorName"); anything else raises, and is
the fuzz's finding. ``tests/test_fuzz_readers.py`` runs a short, seeded budget of each;
``bench/fuzz_long.py --examples N`` the long run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import struct
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from emogram import server
from emogram.serve import place
from emogram.backend import adapter, gguf, models, stores
from emogram.backend.gguf import Tensor
from emogram.backend.prompt_cache import PromptCache
from emogram.backend.setup_cache import SetupCache
from emogram.errors import EmogramError

DEADLINE = 10.0  # seconds one input may take, files built and read


class Hang(BaseException):
    """An input took longer than ``DEADLINE`` (a ``BaseException``: no reader's own ``except
    Exception`` may swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float = DEADLINE):
    """Raise ``Hang`` in this (the main) thread when the block takes longer than ``seconds``: a
    blocking ``open`` of a FIFO is interrupted too (the handler runs, and its exception wins)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum, frame):
        raise Hang(f"no result within {seconds:g} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(fn, *args, **kwargs) -> tuple[str, object]:
    """("ok", result) or ("refused: Name", None) for an ``EmogramError``; anything else propagates."""
    try:
        return "ok", fn(*args, **kwargs)
    except EmogramError as exc:
        return f"refused: {type(exc).__name__}", None


@contextlib.contextmanager
def environment(**values: str | None):
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    """Set each variable; None unsets it."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# --- files of every kind ------------------------------------------------------------------------

KINDS = ("file", "file", "file", "file", "fifo", "dir", "zero", "dangling", "loop", "outside")
KIND = st.sampled_from(KINDS)


def plant(path: Path, data: bytes, kind: str = "file") -> None:
    """Put ``data`` at ``path`` as a ``kind``: a regular file, a FIFO, a folder, a link to
    /dev/zero, a dangling link, a link to itself, or a link to a file outside the folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path):
            return
        if kind == "file":
            path.write_bytes(data)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "zero":
            path.symlink_to("/dev/zero")
        elif kind == "dangling":
            path.symlink_to(path.parent / f"{path.name}.nowhere")
        elif kind == "loop":
            path.symlink_to(path)
        elif kind == "outside":
            fd, target = tempfile.mkstemp(prefix="emogram-fuzz-outside-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            path.symlink_to(target)
            _OUTSIDE.append(target)
    except (OSError, ValueError):
        pass  # a name the file system refuses, or a parent that is a file: the layout without it


_OUTSIDE: list[str] = []


def tidy() -> None:
    while _OUTSIDE:
        with contextlib.suppress(OSError):
            os.unlink(_OUTSIDE.pop())


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each drawn ``weight`` times as often (``st.one_of`` draws them evenly,
    and counts a strategy named twice once)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda k: table[k])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16)


def deep(depth: int, opener: bytes = b"[") -> bytes:
    return opener * depth


RAW = st.one_of(st.binary(max_size=200), st.integers(1, 200_000).map(deep),
                st.integers(1, 50_000).map(lambda n: deep(n, b'{"a":')),
                st.sampled_from([b"", b"\xff\xfe", b"null", b"[]", b"5", b'"x"', b"{}", b"\x00" * 10]))


def json_or_raw(structured: st.SearchStrategy) -> st.SearchStrategy:
    """Bytes: ``structured`` (JSON-able) encoded, sometimes cut or followed by junk; or raw bytes."""
    encoded = structured.map(lambda v: json.dumps(v).encode())
    cut = st.tuples(encoded, st.integers(0, 400)).map(lambda x: x[0][:x[1]])
    return weighted((4, encoded), (1, cut), (1, RAW), (1, JSON.map(lambda v: json.dumps(v).encode())))


# --- GGUF ---------------------------------------------------------------------------------------

_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
LIE = weighted((3, st.none()), (1, st.sampled_from([0, 1, 3, 2**16, 2**24, 2**24 + 1, 2**32, 2**63, 2**64 - 1])))
TYPES = st.one_of(st.sampled_from(sorted(_SIZES) + [8, 9]), st.sampled_from([13, 99, 2**31, 2**32 - 1]))


def _string(data: bytes, lie: int | None = None) -> bytes:
    return struct.pack("<Q", len(data) if lie is None else lie) + data


STRING = st.tuples(st.one_of(st.binary(max_size=24), st.text(max_size=12).map(str.encode)), LIE).map(
    lambda x: (8, _string(*x)))
SCALAR = st.sampled_from(sorted(_SIZES)).flatmap(
    lambda t: st.binary(min_size=_SIZES[t], max_size=_SIZES[t]).map(lambda b: (t, b)))


def _array(inner_type: int, items: list, lie: int | None) -> tuple[int, bytes]:
    return 9, struct.pack("<IQ", inner_type, len(items) if lie is None else lie) + b"".join(p for _, p in items)


VALUE = st.recursive(
    SCALAR | STRING | st.tuples(TYPES, st.binary(max_size=16)),  # the last: a type with any bytes
    lambda inner: st.tuples(TYPES, st.lists(inner, max_size=4), LIE).map(lambda x: _array(*x)),
    max_leaves=12)


HONEST_STRING = st.one_of(st.binary(max_size=24), st.text(max_size=12).map(str.encode)).map(lambda b: (8, _string(b)))


@st.composite
def honest_values(draw, kind: int | None = None, depth: int = 0) -> tuple[int, bytes]:
    """A value whose every count and length is true (arrays of one type each, nested a few deep)."""
    if kind is None:
        kind = draw(st.sampled_from(sorted(_SIZES) + [8, 8, 9, 9] if depth < 5 else sorted(_SIZES) + [8]))
    if kind in _SIZES:
        return kind, draw(st.binary(min_size=_SIZES[kind], max_size=_SIZES[kind]))
    if kind == 8:
        return draw(HONEST_STRING)
    inner = draw(st.sampled_from(sorted(_SIZES) + [8, 9] if depth < 5 else sorted(_SIZES) + [8]))
    items = [draw(honest_values(inner, depth + 1)) for _ in range(draw(st.integers(0, 3)))]
    return _array(inner, items, None)


def _nested(depth: int) -> tuple[int, bytes]:
    """An array of arrays ``depth`` + 1 levels deep, the innermost of one u32."""
    return 9, struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 1) + b"\0\0\0\0"


KEYS = st.one_of(st.sampled_from(["general.architecture", "general.type", "adapter.type",
                                  "adapter.lora.alpha", "general.alignment", "tokenizer.chat_template",
                                  "emogram.prompt"]).map(str.encode),
                 st.binary(max_size=12))
ADAPTER_META = [(b"general.type", (8, _string(b"adapter"))), (b"adapter.type", (8, _string(b"lora"))),
                (b"general.architecture", (8, _string(b"gemma3")))]
TENSOR_NAMES = st.one_of(st.sampled_from([b"blk.0.attn_q.weight.lora_a", b"blk.0.attn_q.weight.lora_b",
                                          b"x.lora_a", b"token_embd.weight", b"", b"lora_a"]),
                         st.binary(max_size=12))
TENSOR = st.tuples(TENSOR_NAMES, st.sampled_from([2, 2, 2, 1, 3, 4, 0, 5, 6]),
                   st.lists(st.sampled_from([0, 1, 2, 8, 640, 1024, 2**32, 2**63]), min_size=6, max_size=6),
                   st.sampled_from([0, 1, 2, 12, 99]), st.sampled_from([0, 32, 64, 2**40, 2**64 - 1]))
# what an adapter is checked against: a model's tensor table (one weight, the pair above fits it)
MODEL_TENSORS = {"blk.0.attn_q.weight": Tensor("blk.0.attn_q.weight", (8, 8), 0, 0)}


def _adapter_pair(rank: int, ggml_type: int) -> list:
    """A LoRA pair that fits ``MODEL_TENSORS``: (name, n_dims, dims, type, offset) each."""
    size = 4 if ggml_type == 0 else 2
    return [(b"blk.0.attn_q.weight.lora_a", 2, [8, rank, 0, 0, 0, 0], ggml_type, 0),
            (b"blk.0.attn_q.weight.lora_b", 2, [rank, 8, 0, 0, 0, 0], ggml_type, -(-8 * rank * size // 32) * 32)]


@st.composite
def gguf_files(draw) -> tuple[bytes, str]:
    """A GGUF file: most often well framed (every count and length true) with one thing wrong or
    none, else with lying counts, a cut or flipped bytes; and the kind of file it is put in."""
    damage = draw(st.sampled_from(["none"] * 6 + ["lie", "cut", "flip", "cut+flip"]))
    lie = LIE if damage == "lie" else st.none()
    kvs = draw(st.lists(st.tuples(KEYS, VALUE if damage == "lie" else honest_values()), max_size=5))
    adapter_like = draw(st.booleans())  # an adapter's keys and a LoRA pair that fits, or not
    if adapter_like:
        kvs = ADAPTER_META + kvs
    if draw(st.integers(0, 3)) == 0:
        kvs.append((b"nested", _nested(draw(st.sampled_from([1, 2, 3, 4, 5, 40, 3000])))))
    if draw(st.integers(0, 3)) == 0:
        kvs.append((b"general.alignment", draw(st.one_of(SCALAR, STRING, st.just((4, struct.pack("<I", 64)))))))
    if adapter_like:  # a LoRA pair that fits, and perhaps more tensors
        tensors = _adapter_pair(draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([0, 1, 1, 12])))
        tensors += draw(st.lists(TENSOR, max_size=1))
    else:
        tensors = draw(st.lists(TENSOR, min_size=1, max_size=4))
    n_tensors, n_kv = draw(lie), draw(lie)
    magic = draw(st.sampled_from([b"GGUF"] * 12 + [b"GGUG", b"\0\0\0\0"]))
    version = draw(st.sampled_from([3] * 8 + [2, 2, 1, 4, 2**32 - 1]))
    out = bytearray(magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                        len(kvs) if n_kv is None else n_kv))
    for key, (kind, payload) in kvs:
        out += _string(key) + struct.pack("<I", kind) + payload
    for name, n_dims, dims, ggml_type, offset in tensors:
        out += _string(name) + struct.pack("<I", n_dims)
        out += b"".join(struct.pack("<Q", d) for d in dims[:min(n_dims, 6)])
        out += struct.pack("<IQ", ggml_type, offset % 2**64)
    out += bytes(-len(out) % 32)  # to the default alignment
    out += draw(st.one_of(st.just(bytes(200)), st.binary(max_size=200)))  # the tensors' data
    if "cut" in damage:
        del out[draw(st.integers(0, len(out))):]
    if "flip" in damage:
        for where, byte in draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                         min_size=1, max_size=3)):
            if out:
                out[int(where * len(out))] = byte
    return bytes(out), draw(st.sampled_from(("file",) * 20 + KINDS))


def check_gguf(example: tuple[bytes, str], folder: Path) -> str:
    data, kind = example
    path = folder / "model.gguf"
    plant(path, data, kind)
    with deadline():
        table, _ = outcome(gguf.read_table, path)
        if table != "ok":
            assert outcome(gguf.check_header, path)[0] in (table, "ok")
        said, found = outcome(adapter.read, path, MODEL_TENSORS, "gemma3")
    if said == "ok":
        assert isinstance(found, adapter.Adapter) and found.rank >= 0
    return f"{table} / adapter {said}"


# --- ollama -------------------------------------------------------------------------------------

MODEL_LAYER = "application/vnd.ollama.image.model"
TINY_GGUF = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + _string(b"w") + struct.pack("<I", 1) + \
    struct.pack("<QIQ", 4, 0, 0) + bytes(64)
NAME_PARTS = st.sampled_from(["registry.ollama.ai", "library", "gemma3", "latest", "270m", "hf.co", "Owner",
                              "x.y", "a-b_c", "UPPER", "é", "a b", "..", ".", "-lead", "_u", "a:b"])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


MOSTLY_FILES = st.sampled_from(("file",) * 8 + KINDS)
JUNK = st.one_of(JSON, st.sampled_from([None, 5, -1, True, "", "x", [], {}, 2**70, "sha256:" + "0" * 64]))


@st.composite
def one_changed(draw, value: object, paths: list[tuple]) -> object:
    """``value`` (JSON-able), most often as it is, else with one place (a path of keys and indexes)
    holding junk or gone."""
    choice = draw(st.sampled_from(["same", "same", "one", "one", "one", "random"]))
    if choice == "same":
        return value
    if choice == "random":
        return draw(JSON)
    value = json.loads(json.dumps(value))
    path = draw(st.sampled_from(paths))
    holder = value
    for step in path[:-1]:
        holder = holder[step]
    if draw(st.integers(0, 4)) == 0 and isinstance(holder, dict):
        holder.pop(path[-1], None)
    else:
        holder[path[-1]] = draw(JUNK)
    return value


@st.composite
def ollama_stores(draw) -> dict:
    model = draw(st.sampled_from([TINY_GGUF] * 4 + [b"junk", b"", b"GGUF"]))
    config = draw(json_or_raw(one_changed({"model_format": "gguf", "model_family": "gemma3"},
                                          [("model_format",), ("model_family",)])))
    good = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": _digest(config),
                       "size": len(config)},
            "layers": [{"mediaType": MODEL_LAYER, "digest": _digest(model), "size": len(model)},
                       {"mediaType": "application/vnd.ollama.image.template", "digest": _digest(b"t"), "size": 1}]}
    paths = [("schemaVersion",), ("config",), ("config", "digest"), ("layers",), ("layers", 0), ("layers", 1),
             ("layers", 0, "mediaType"), ("layers", 0, "digest"), ("layers", 0, "size")]
    names = st.one_of(st.just(["registry.ollama.ai", "library", "gemma3", "270m"]),
                      st.lists(NAME_PARTS, min_size=4, max_size=4))
    manifests = draw(st.lists(st.tuples(names, json_or_raw(one_changed(good, paths)), MOSTLY_FILES),
                              min_size=1, max_size=3))
    lookups = draw(st.lists(st.one_of(
        st.sampled_from(["gemma3", "gemma3:270m", "hf.co/Owner/x.y:latest", "../../../../../etc:passwd",
                         "library/../../x:y", "a\x00b", ":", "/", "x:", "https://registry.ollama.ai/library/gemma3",
                         "a/b/c/d/e:f", "." * 400]),
        st.text(max_size=30)), max_size=3))
    return {"model": model, "model_kind": draw(MOSTLY_FILES), "config": config, "config_kind": draw(MOSTLY_FILES),
            "manifests": manifests, "lookups": lookups}


def check_ollama(example: dict, folder: Path) -> str:
    root = folder / "ollama"
    plant(root / "blobs" / _digest(example["model"]).replace(":", "-"), example["model"], example["model_kind"])
    plant(root / "blobs" / _digest(example["config"]).replace(":", "-"), example["config"], example["config_kind"])
    for parts, content, kind in example["manifests"]:
        if any(p in (".", "..") for p in parts):
            continue  # no file can be named so; the lookups try such names
        plant(root.joinpath("manifests", *parts), content, kind)
    said = []
    with environment(OLLAMA_MODELS=str(root)), deadline():
        entries = stores.discover(["ollama"])
        for found in entries:
            stores.facts(found, probe=False)
            if found.error is None:  # a blob of the store's own folder, whatever a manifest says
                assert found.path.parent == root / "blobs", found
        said.append(f"{sum(f.error is None for f in entries)}/{len(entries)} usable")
        for name in example["lookups"] + [f"{p[2]}:{p[3]}" for p, _, _ in example["manifests"]]:
            what, found = outcome(stores.resolve, f"ollama:{name}", verified=None)
            if what == "ok":
                assert found.path.parent == root / "blobs", found
            said.append(what)
    return ", ".join(said)


# --- LM Studio and the hub cache -----------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FOLDER_PARTS = st.sampled_from([
    "models", "pub", "repo-GGUF", "sub", "x.gguf", "X.GGUF", "mmproj-x.gguf", "m-00001-of-00002.gguf",
    "m-00002-of-00002.gguf", "models--o--r", "models--a", "models----", "snapshots", "refs", "main", "blobs",
    COMMIT, "settings.json", "a.gguf", "é.gguf", ".gguf", "-00001-of-00001.gguf"])


@st.composite
def folder_stores(draw) -> dict:
    """An LM Studio home and a hub cache, laid out by draws: folders, files of every kind, the files
    that say where things are (LM Studio's pointer and settings, a repository's refs/main)."""
    items = draw(st.lists(st.tuples(st.sampled_from(["lms", "hub", "hub/models--o--r", "hub/models--o--r/snapshots/"
                                                     + COMMIT, "lms/models/pub/repo-GGUF"]),
                                    st.lists(FOLDER_PARTS, min_size=1, max_size=5), KIND,
                                    st.sampled_from([TINY_GGUF, b"", b"junk"])), max_size=10))
    ref = draw(st.one_of(st.sampled_from([COMMIT, COMMIT + "\n", "../../..", "..", "", "a/b", "\x00", ".", "x" * 300]),
                         st.text(max_size=20)).map(lambda t: t.encode("utf-8", "replace")) | st.binary(max_size=50))
    settings = draw(json_or_raw(st.fixed_dictionaries({"downloadsFolder": st.one_of(
        st.sampled_from(["@/lms/models", "@/elsewhere", "@/lms/models/pub", "", "   ", "\x00", "~nobody/x", "@/lms"]),
        JSON)})))
    pointer = draw(st.one_of(st.sampled_from([b"@/lms", b"@/lms\n@/other", b"", b"\xff", b"\x00", b"~nobody"]),
                             st.binary(max_size=30)))
    depth = draw(st.sampled_from([0, 0, 0, 3, 9, 30]))
    lookups = draw(st.lists(st.one_of(st.sampled_from([
        "lmstudio:pub/repo-GGUF", "lmstudio:pub/repo-GGUF/*.gguf", "lmstudio:pub/repo-GGUF/sub/x.gguf",
        "lmstudio:pub", "lmstudio:../..", "lmstudio:pub/repo-GGUF/[", "hf-cache:o/r", "hf-cache:o/r:*",
        "hf-cache:o/r:m-00001*", "hf-cache:o", "hf-cache:../x", "hf-cache:o/r:\x00"]),
        st.text(max_size=20).map(lambda t: "lmstudio:" + t), st.text(max_size=20).map(lambda t: "hf-cache:" + t)),
        max_size=3))
    return {"items": items, "ref": ref, "ref_kind": draw(KIND), "settings": settings,
            "settings_kind": draw(KIND), "pointer": pointer, "pointer_kind": draw(KIND), "depth": depth,
            "home_from": draw(st.sampled_from(["variable", "pointer", "default"])), "lookups": lookups}


def _here(data: bytes, folder: Path) -> bytes:
    return data.replace(b"@", str(folder).encode())


def check_folders(example: dict, folder: Path) -> str:
    for base, parts, kind, data in example["items"]:
        plant(folder.joinpath(base, *parts), data, kind)
    plant(folder / "hub/models--o--r/refs/main", example["ref"], example["ref_kind"])
    plant(folder / "lms/settings.json", _here(example["settings"], folder), example["settings_kind"])
    plant(folder / "home/.lmstudio-home-pointer", _here(example["pointer"], folder), example["pointer_kind"])
    chain = folder / "lms/models/pub/repo-GGUF"
    for _ in range(example["depth"]):
        chain = chain / "d"
    if example["depth"]:
        plant(chain / "deep.gguf", TINY_GGUF)
    env = {"HF_HUB_CACHE": str(folder / "hub"), "HOME": str(folder / "home"), "HF_HOME": None,
           "HUGGINGFACE_HUB_CACHE": None, "LMSTUDIO_HOME": None}
    if example["home_from"] == "variable":
        env["LMSTUDIO_HOME"] = str(folder / "lms")
    said = []
    with environment(**env), deadline():
        entries = stores.discover(["lmstudio", "hf-cache"])
        for found in entries:
            stores.facts(found, probe=False)
        said.append(f"{sum(f.error is None for f in entries)}/{len(entries)} usable")
        for spec in example["lookups"]:
            said.append(outcome(stores.find, spec)[0])
    return ", ".join(said)


# --- the server's request protocol ---------------------------------------------------------------

def _good_request() -> dict:
    return {"identity": server.identity(), "settings": server.settings(), "argv": ["tides", "--seed", "1"],
            "cwd": tempfile.gettempdir(), "tty": [False, False]}


REQUEST_PATHS = [("identity",), ("settings",), ("argv",), ("argv", 0), ("argv", 1), ("cwd",), ("tty",), ("tty", 0),
                 ("stop",)]
ODD = st.sampled_from(["a\x00b", "/tmp/\x00", "relative", "/no/such/folder", "x" * 5000, "boom", "batch", "serve",
                       "--help", "explain", "--bogus", "", "\ud800", "🍵", "/", True, None, 5, ["x"], {"a": "b"}])


@st.composite
def requests(draw) -> bytes:
    """A request line: most often a good one with one field changed (or none), else junk."""
    value = draw(one_changed(_good_request(), REQUEST_PATHS))
    if isinstance(value, dict) and draw(st.booleans()):  # a field of its own kind, but odd
        value[draw(st.sampled_from(["cwd", "argv", "tty", "stop"]))] = draw(st.one_of(ODD, st.lists(ODD, max_size=3)))
    line = json.dumps(value).encode("utf-8", "surrogatepass")
    tail = draw(st.sampled_from([b"\n", b"\n", b"\n", b"", b"\nextra", b"\n\n"]))
    return line + tail


REQUESTS = weighted((6, requests()), (2, RAW),
                    (1, st.integers(server.MAX_REQUEST - 2, server.MAX_REQUEST + 10).map(lambda n: b"x" * n)))


def check_request(line: bytes, folder: Path | None = None) -> str:
    with deadline():
        said, request = outcome(server.parse_request, line)
    if said == "ok":
        assert isinstance(request, dict)
        if not request.get("stop"):
            assert isinstance(request["argv"], list) and all(isinstance(a, str) and "\0" not in a
                                                              for a in request["argv"])
            assert isinstance(request["cwd"], str) and "\0" not in request["cwd"]
            assert isinstance(request["tty"], list) and len(request["tty"]) == 2
    return said


class LiveServer:
    """A ``server.Server`` in a thread of this process, whose command writes its arguments back (and
    raises for "boom"): the protocol's whole path, sockets and threads, with no model."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="emogram-fuzz-serve-"))
        self.folder.chmod(0o700)
        from emogram.cli import _explains

        def run(argv: list[str]) -> int:
            if "boom" in argv:
                raise RecursionError("a request's own failure")
            import sys
            sys.stdout.write(" ".join(argv) + "\n")
            return 0
        self.run, self.serves = run, _explains
        # a silent client: 0.5 s here (the door reads its deadline from serve.place)
        self.read_seconds, place.READ_SECONDS = place.READ_SECONDS, 0.5
        self.start()

    def start(self) -> None:
        self.server = server.Server(self.run, self.serves, self.folder / server.SOCKET_NAME, idle_minutes=0)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(io.StringIO(),), daemon=True)
        self.thread.start()

    def good(self) -> list[dict]:
        request = {"identity": server.identity(), "settings": server.settings(), "argv": ["tides", "--seed", "1"],
                   "cwd": str(self.folder), "tty": [False, False]}
        return self.exchange(json.dumps(request).encode() + b"\n", "whole")

    def exchange(self, payload: bytes, how: str) -> list[dict]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(DEADLINE)
            conn.connect(str(self.server.path))
            try:
                if how == "close":
                    return []
                if how == "chunks":  # the first bytes a few at a time, as a slow writer sends them
                    for k in range(0, min(len(payload), 700), 7):
                        conn.sendall(payload[k:k + 7])
                    conn.sendall(payload[700:])
                else:
                    conn.sendall(payload if how != "half" else payload[:len(payload) // 2])
                if how in ("whole", "chunks", "half"):
                    conn.shutdown(socket.SHUT_WR)
            except OSError:  # the server refused it before the end (too large): what did it say?
                pass
            data = b""
            with contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    data += chunk
        frames = [json.loads(line) for line in data.splitlines()]
        assert all(isinstance(f, dict) for f in frames), frames
        return frames

    def close(self) -> None:
        self.server._stopping.set()
        self.server._queue.put(server._STOP)
        self.thread.join(timeout=10)
        place.READ_SECONDS = self.read_seconds


HOW = st.sampled_from(["whole", "whole", "chunks", "half", "close", "open"])


def check_live(example: tuple[bytes, str], live: LiveServer) -> str:
    payload, how = example
    with deadline():
        frames = live.exchange(payload, how)
        assert live.thread.is_alive() or frames[:1] == [{"stopped": True}], "the server died"
    if not frames:
        return "closed"
    first = frames[0]
    if first == {"stopped": True}:  # a stop request, obeyed: the next examples get a new server
        live.thread.join(timeout=DEADLINE)
        assert not live.thread.is_alive(), "a stopped server goes"
        live.start()
        return "stopped"
    assert {"declined"} == set(first) or {"queued"} == set(first) or first == {"stopped": True}, frames
    if "queued" in first:
        assert "exit" in frames[-1] or "declined" in frames[-1], frames
        return f"answered, exit {frames[-1].get('exit')}"
    return next(iter(first))


# --- cache files --------------------------------------------------------------------------------

def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _huge_npz() -> bytes:
    """An npz whose one member says it holds a terabyte."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        header = b"\x93NUMPY\x01\x00" + b"{'descr': '|u1', 'fortran_order': False, 'shape': (1099511627776,), }"
        header += b" " * (63 - len(header) % 64) + b"\n"
        z.writestr("blob.npy", header + b"\0" * 100)
    return buf.getvalue()


PAYLOADS = st.one_of(st.binary(max_size=300), st.just(_npz({"blob": np.arange(5, dtype=np.uint8)})),
                     st.just(_npz({"other": np.zeros(3)})), st.just(_huge_npz()),
                     st.just(np.lib.format.magic(1, 0) + b"junk"))
TOKENS = [1, 2, 3]


@st.composite
def cache_files(draw) -> dict:
    payload = bytearray(draw(PAYLOADS))
    for where, byte in draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=2)):
        if payload:
            payload[int(where * len(payload))] = byte
    return {"which": draw(st.sampled_from(["prompt", "setup"])),
            "magic": draw(st.sampled_from(["right", "right", "other", "none"])),
            "checksum": draw(st.sampled_from(["right", "right", "wrong", "short"])),
            "payload": bytes(payload), "cut": draw(st.one_of(st.none(), st.integers(0, 400))),
            "kind": draw(KIND), "mode": draw(st.sampled_from([0o700, 0o700, 0o755, 0o777])),
            "marker": draw(st.one_of(st.binary(max_size=120), st.sampled_from(["right", "right+", "stale", "other"]))),
            "marker_kind": draw(KIND), "model": draw(st.binary(min_size=1, max_size=64))}


def check_cache(example: dict, folder: Path) -> str:
    directory = folder / "cache"
    directory.mkdir(mode=0o700)
    cache = (PromptCache if example["which"] == "prompt" else SetupCache)(directory, b"fuzz")
    name_tokens = TOKENS if example["which"] == "prompt" else list(hashlib.sha256(b"vocabulary").digest())
    magic = {"right": cache.magic, "other": b"EMOGRAM-OTHER\n", "none": b""}[example["magic"]]
    payload = example["payload"]
    digest = {"right": hashlib.sha256(payload).digest(), "wrong": bytes(32), "short": b"\1\2"}[example["checksum"]]
    data = (magic + digest + payload)[:example["cut"]] if example["cut"] is not None else magic + digest + payload
    plant(cache.file_for(name_tokens), data, example["kind"])
    plant(directory / ("0" * 40 + cache.suffix), data, example["kind"])  # another of "ours", for pruning
    directory.chmod(example["mode"])
    try:
        with deadline():
            if example["which"] == "prompt":
                loaded = cache.load(name_tokens)
                assert loaded is None or (example["mode"] != 0o777 and loaded == payload and loaded)
                cache.store(TOKENS[:1], b"state")
                said = "loaded" if loaded is not None else "rebuilt"
            else:
                built = {"blob": np.arange(3, dtype=np.uint8)}
                arrays = cache.arrays("vocabulary", lambda: built)
                assert isinstance(arrays, dict) and all(isinstance(v, np.ndarray) for v in arrays.values())
                said = "rebuilt" if set(arrays) == {"blob"} and len(arrays["blob"]) == 3 else "loaded"
            cache.prune()
            return f"{said} / checksum file {check_marker(example, folder)}"
    finally:
        directory.chmod(0o700)


def check_marker(example: dict, folder: Path) -> str:
    """The checksum file beside an assembled model: trusted only when it records the very file (in
    a private folder), else the file is hashed again; never an error."""
    home = folder / "model"
    home.mkdir(mode=0o700)
    target, marker = home / "m.gguf", home / "m.gguf.sha256"
    target.write_bytes(example["model"])
    expected = hashlib.sha256(b"the model" if example["model"][0] % 3 == 0 else example["model"]).hexdigest()
    st_ = target.stat()
    text = example["marker"]
    if isinstance(text, str):
        text = {"right": f"{expected} {st_.st_size} {st_.st_mtime_ns}\n",
                "right+": f"{expected} {st_.st_size} {st_.st_mtime_ns}\n\xff",
                "stale": f"{expected} {st_.st_size} {st_.st_mtime_ns - 1}\n",
                "other": f"{expected}\n"}[text].encode("utf-8", "surrogateescape")
    plant(marker, text, example["marker_kind"])
    recorded = [expected.encode(), str(st_.st_size).encode(), str(st_.st_mtime_ns).encode()]
    exact = example["marker_kind"] in ("file", "outside") and text.split() == recorded  # trusted unhashed
    with deadline():
        trusted = models._assembled(target, marker, expected)
    honest = hashlib.sha256(example["model"]).hexdigest() == expected
    assert trusted == (honest or exact), (trusted, honest, exact)
    return "trusted" if trusted else "hashed, refused"


# --- the explanation bank's files (``knowledge/bank.py``) -----------------------------------------

GOOD_ANSWER = "water: 💧 -> sun: ☀️ + heat: 🔥"
BANK_LINE = one_changed({"topic": "how rain forms", "answer": GOOD_ANSWER, "kind": "explain"},
                        [("topic",), ("answer",), ("kind",)])
ANSWERS = st.sampled_from([GOOD_ANSWER, "a: 🅰️", "x", "", "a: 🐝 -> ", "A: 🐝", "a b c d e: 🐝", "a: 🐝🐝🐝🐝",
                           "a: :)", "a: 🐝 vs b: 🐌 = c: ☕ + d: 🍵 -> e: 🌍 + f: 🌞 + g: 🌙", "a: \u200d", "a:  🐝"])


@st.composite
def bank_files(draw) -> tuple[bytes, str]:
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        value = draw(BANK_LINE)
        if isinstance(value, dict) and draw(st.booleans()):
            value["answer"] = draw(ANSWERS)
        lines.append(draw(json_or_raw(st.just(value))))
    sep = draw(st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\x85", "\u2028".encode()]))
    return sep.join(lines), draw(MOSTLY_FILES)


def check_bank(example: tuple[bytes, str], folder: Path) -> str:
    from emogram.knowledge import bank
    data, kind = example
    path = folder / "bank.jsonl"
    plant(path, data, kind)
    with deadline():
        said, entries = outcome(bank.read_file, path)
    if said == "ok":
        assert all(isinstance(e, bank.Entry) and e.parts for e in entries)
        return f"ok, {len(entries)} entries"
    return said


# --- one place for the runners -----------------------------------------------------------------

TARGETS = {  # name -> (strategy, check); the check takes the example and a fresh folder
    "gguf": (gguf_files(), check_gguf),
    "ollama": (ollama_stores(), check_ollama),
    "folders": (folder_stores(), check_folders),
    "protocol": (REQUESTS, check_request),
    "caches": (cache_files(), check_cache),
    "bank": (bank_files(), check_bank),
}


def fresh_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="emogram-fuzz-"))


def remove(folder: Path) -> None:
    """Remove a fuzz folder: deep trees, FIFOs and links included, without recursion."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files + dirs:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if os.path.isdir(path) and not os.path.islink(path):
                    os.chmod(path, 0o700)
                    os.rmdir(path)
                else:
                    os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(folder)
    tidy()


def run_one(name: str, example, live: LiveServer | None = None) -> str:
    """Check one example of target ``name`` in a fresh folder, removed afterwards."""
    if name == "live":
        return check_live(example, live)  # type: ignore[arg-type]
    folder = fresh_folder()
    try:
        return TARGETS[name][1](example, folder)
    finally:
        remove(folder)


LIVE = st.tuples(REQUESTS, HOW)
