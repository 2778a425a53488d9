"""Logits for the tokens that can be chosen, not for the whole vocabulary.

In the emoji phase only the pre-filtered candidates can be drawn (1,429 of Gemma's 262,144 tokens),
yet llama.cpp multiplies the final hidden state by the whole output matrix at every step. For
Gemma 3 270M that matrix holds 168M of the model's 268M parameters: over half of every decode,
and most of a batched one. So emogram stops llama.cpp's graph once the final hidden state (the
tensor llama.cpp names ``result_norm``, or ``result_embd_pooled`` when it hands it out as the
embeddings) is computed, through
llama.cpp's graph-evaluation callback, and computes the candidates' logits itself: their rows of the output matrix, dequantised once by
ggml's own routine, times the hidden state.

The products are summed in one fixed order (``src/native/head.c``; the same operations in numpy
when the C extension is not built), so a candidate's logit does not depend on which other rows
are computed beside it, nor on how many sequences share the batch; and on one thread, since a
BLAS thread pool left spinning beside llama.cpp's threads halves llama.cpp's speed on two cores.
llama.cpp multiplies with 8-bit activations, so its logits differ from these by about 0.1; a
model whose head this module does not reproduce (soft-capping it does not know, a GPU-resident
graph) is checked at start-up against llama.cpp's own logits and falls back to them
(``Context.head_ok``).
"""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import numpy as np

from . import gguf

HIDDEN_NAMES = (b"result_norm", b"result_embd_pooled")  # the latter when embeddings are output


class Capture(ctypes.Structure):
    """Shared with the C callback in ``emogram._native`` (src/native/capture.c): same layout."""

    _fields_ = [("get_name", ctypes.c_void_p), ("trim", ctypes.c_int), ("seen", ctypes.c_int)]


class _Traits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64)
_GGML: ctypes.CDLL | None = None


def ggml() -> ctypes.CDLL | None:
    """ggml's base library as shipped inside llama-cpp-python, or None when it cannot be found."""
    global _GGML
    if _GGML is None:
        import llama_cpp
        libdir = Path(llama_cpp.__file__).parent / "lib"
        for name in ("libggml-base.so", "libggml-base.dylib", "ggml-base.dll"):
            if (libdir / name).exists():
                lib = ctypes.CDLL(str(libdir / name))
                break
        else:
            return None
        lib.ggml_get_name.restype = ctypes.c_char_p
        lib.ggml_get_name.argtypes = [ctypes.c_void_p]
        lib.ggml_get_type_traits.restype = ctypes.POINTER(_Traits)
        lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        lib.ggml_row_size.restype = ctypes.c_size_t
        lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
        _GGML = lib
    return _GGML


def new_capture() -> Capture | None:
    lib = ggml()
    if lib is None:
        return None
    return Capture(ctypes.cast(lib.ggml_get_name, ctypes.c_void_p).value, 0, 0)


def callback(callback_type):
    """The graph-evaluation callback: C when ``emogram._native`` is built (it runs for each of
    the ~700 graph nodes of every decode), else the same logic in Python."""
    from .machine import active_implementation
    if active_implementation() == "native":
        from .._native import capture_callback
        return ctypes.cast(capture_callback(), callback_type)

    lib = ggml()

    def on_node(tensor, ask, user_data):
        capture = ctypes.cast(user_data, ctypes.POINTER(Capture)).contents
        hit = lib.ggml_get_name(tensor) in HIDDEN_NAMES
        if ask:
            return hit
        if hit:
            capture.seen += 1
            return not capture.trim
        return True

    return callback_type(on_node)


LANES = 16


def lane_dot(weights: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """``weights @ hidden`` in float32, in exactly the order of ``head_logits`` in head.c: element
    i of a row goes to lane i % 16, then the 16 lanes are summed as a fixed tree."""
    rows, n = weights.shape
    acc = np.zeros((rows, LANES), dtype=np.float32)
    full = n - n % LANES
    for i in range(0, full, LANES):
        acc += weights[:, i:i + LANES] * hidden[i:i + LANES]
    if full < n:
        acc[:, :n - full] += weights[:, full:] * hidden[full:]
    width = LANES // 2
    while width:
        acc[:, :width] = acc[:, :width] + acc[:, width:2 * width]
        width //= 2
    return acc[:, 0].copy()


def _native_head_logits():
    from .machine import active_implementation
    if active_implementation() != "native":
        return None
    from .._native import head_logits
    return head_logits


class OutputHead:
    """Rows of a GGUF model's output matrix, dequantised on demand, and logits for them.

    Tokens are registered once (``positions``) and keep their position for the life of the head,
    so arrays of positions handed out earlier stay valid as more tokens are added.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        table = gguf.table_of(path)  # the adapter check read it already
        tensor = table.tensors.get("output.weight") or table.tensors.get("token_embd.weight")
        lib = ggml()
        if tensor is None or lib is None or len(tensor.dims) != 2:
            raise LookupError("no output matrix found")
        self.n_embd, self.n_vocab = tensor.dims
        self._row_bytes = int(lib.ggml_row_size(tensor.ggml_type, self.n_embd))
        traits = lib.ggml_get_type_traits(tensor.ggml_type).contents
        if not traits.to_float:
            raise LookupError(f"ggml cannot dequantise type {tensor.ggml_type}")
        self._to_float = _TO_FLOAT(traits.to_float)
        end = tensor.offset + self._row_bytes * self.n_vocab
        if end > table.size:
            raise LookupError("the output matrix lies beyond the end of the file")
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._rows = np.frombuffer(self._map, dtype=np.uint8, count=end - tensor.offset,
                                   offset=tensor.offset)
        arch = table.metadata.get("general.architecture", "")
        # (metadata values are typed ``object``; these two are numbers in every GGUF file)
        self.softcap = float(table.metadata.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0)  # type: ignore[arg-type]
        self.scale = float(table.metadata.get(f"{arch}.logit_scale", 1.0) or 1.0)  # type: ignore[arg-type]
        self.tokens = np.zeros(0, dtype=np.int32)
        self._index: dict[int, int] = {}
        self._native = _native_head_logits()
        self._weights = np.zeros((0, self.n_embd), dtype=np.float32)

    def _dequantise(self, tokens: list[int]) -> np.ndarray:
        rows = np.empty((len(tokens), self.n_embd), dtype=np.float32)
        for k, token in enumerate(tokens):
            if not 0 <= token < self.n_vocab:
                raise ValueError(f"token {token} is outside the vocabulary")
            row = self._rows[token * self._row_bytes:(token + 1) * self._row_bytes]
            self._to_float(row.ctypes.data, rows[k].ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                           self.n_embd)
        return rows

    def logits_of(self, tokens: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        """Logits of ``tokens`` without registering them (the start-up check uses this)."""
        weights = self._dequantise([int(t) for t in tokens])
        return self._finish(lane_dot(weights, np.ascontiguousarray(hidden, dtype=np.float32)))

    def positions(self, tokens: np.ndarray) -> np.ndarray:
        """Where each token's logit will be in ``logits()``'s output (adding tokens not seen yet)."""
        new = [int(t) for t in dict.fromkeys(np.asarray(tokens).tolist()) if int(t) not in self._index]
        if new:
            rows = self._dequantise(new)
            for k, token in enumerate(new):
                self._index[token] = len(self.tokens) + k
            self._weights = np.ascontiguousarray(np.concatenate([self._weights, rows]))
            self.tokens = np.concatenate([self.tokens, np.array(new, dtype=np.int32)])
        return np.array([self._index[int(t)] for t in np.asarray(tokens).tolist()], dtype=np.int32)

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        """Logits of every registered token for one final hidden state (float32, like llama.cpp's)."""
        out = np.empty(len(self.tokens), dtype=np.float32)
        hidden = np.ascontiguousarray(hidden, dtype=np.float32)
        if self._native is not None:
            self._native(self._weights, hidden, out)
        else:
            out[:] = lane_dot(self._weights, hidden)
        return self._finish(out)

    def _finish(self, out: np.ndarray) -> np.ndarray:
        """The architecture's last touches (Gemma 2's soft-capping, Cohere's logit scale)."""
        if self.scale != 1.0:
            out *= np.float32(self.scale)
        if self.softcap:
            out[:] = np.tanh(out / np.float32(self.softcap)) * np.float32(self.softcap)
        return out

    def close(self) -> None:
        self._rows = np.zeros(0, dtype=np.uint8)
        self._map.close()
