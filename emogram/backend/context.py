"""A llama.cpp context holding many sequences: one forward pass per step for all of them.

Each sequence has its own stream of the KV cache (``kv_unified = False``), of ``n_ctx / n_seq``
cells. In one shared pool, a sequence's new token would be written into whatever cell another
sequence freed, possibly before its own earlier cells; cell order is the order of llama.cpp's sums
in attention, so its logits would change in the last bits with its neighbours' history. In its own
stream its cells always lie in position order.

A decode takes rows of (token, position, sequence, wants output), at most ``n_batch`` of them, in
one micro-batch. Each output row gives the final hidden state, from which ``head.OutputHead``
computes the logits of the tokens that can be chosen; llama.cpp's full-vocabulary logits are
computed only for decodes that ask for them (free text: thinking and plans).

A decode that carries one sequence's rows gives that sequence exactly the numbers it would get
alone, whatever else the context holds. A decode that carries rows of several sequences is faster
per token, but ggml then picks other kernels, whose rounding depends on the batch's make-up: the
scheduler uses those only for work that asked for throughput (``Job.batched``).

A context is owned by one thread (the scheduler's); it is not thread-safe.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Sequence

import numpy as np

from ..errors import InputError, ModelError
from . import forward_thread, head as head_module, library, logs, setup_cache
from .adapter import apply as apply_adapter
from .library import C, Freed
from .machine import active_implementation, flash_attention


class Context(Freed):
    """Forward passes for up to ``n_seq`` sequences of one ``llama.Model`` (which makes its contexts:
    ``Model.new_context``)."""

    def __init__(self, model, *, n_seq: int, n_ctx: int) -> None:
        self.model = model
        self.n_seq = n_seq
        self.head = output_head(model)
        self._capture = head_module.new_capture() if self.head is not None else None
        cp = C.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = min(512, n_ctx)
        cp.n_seq_max = n_seq
        cp.kv_unified = False  # a stream per sequence: its cells stay in position order
        cp.n_threads = cp.n_threads_batch = model.load_info.n_threads
        cp.no_perf = True
        cp.flash_attn_type = flash_attention()
        cp.embeddings = True  # the final hidden state of every output row, in batch order
        cp.pooling_type = C.LLAMA_POOLING_TYPE_NONE
        if self._capture is not None:
            self._callback = head_module.callback(C.ggml_backend_sched_eval_callback)
            cp.cb_eval = self._callback
            cp.cb_eval_user_data = ctypes.cast(ctypes.pointer(self._capture), ctypes.c_void_p)
        with model.lock:
            model._live()
            logs.clear()
            self._ctx = C.llama_init_from_model(model._model, cp)
        if not self._ctx:
            raise ModelError(f"llama.cpp could not create a context of {n_ctx} cells for "
                             f"{model.path}:\n{logs.recent()}")
        if getattr(model, "_lora", None):  # the model's LoRA adapter, in every forward pass
            apply_adapter(self._ctx, model._lora)
        self.n_ctx = int(C.llama_n_ctx(self._ctx))
        self.n_batch = int(C.llama_n_batch(self._ctx))
        self._memory = C.llama_get_memory(self._ctx)
        self._batch = C.llama_batch_init(self.n_batch, 0, 1)
        self._n_outputs = 0
        self._full = False
        self._rows: list[int] = []
        self.head_ok = self.head is not None and _head_agrees(self)

    # -- lifetime --
    def close(self) -> None:
        if getattr(self, "_ctx", None):
            C.llama_batch_free(self._batch)
            C.llama_free(self._ctx)
            self._ctx = None

    def _live(self) -> None:
        if not getattr(self, "_ctx", None):
            raise ModelError("this context is closed")
        self.model._live()

    # -- forward passes --
    def decode(self, tokens: Sequence[int], positions: Sequence[int], seqs: Sequence[int],
               outputs: Sequence[bool], *, full_logits: bool = False) -> None:
        """Evaluate the rows; afterwards ``hidden(k)`` (and ``logits(k)`` if ``full_logits``)
        hold the k-th output row's results, until the next decode."""
        self._live()
        n = len(tokens)
        if not 0 < n <= self.n_batch:
            raise InputError(f"a decode takes 1 to {self.n_batch} rows, got {n}")
        if not len(positions) == len(seqs) == len(outputs) == n:
            raise InputError("a decode takes one position, sequence id and output flag per token")
        n_vocab = self.model.n_vocab
        if not all(_is_int(t) and 0 <= t < n_vocab for t in tokens):
            raise InputError("token ids outside the vocabulary cannot be evaluated")
        if not all(_is_int(s) and 0 <= s < self.n_seq for s in seqs):
            raise InputError(f"sequence ids must be ints 0..{self.n_seq - 1}")
        if not all(_is_int(p) and 0 <= p < 2**31 for p in positions):
            raise InputError("positions must be ints from 0")  # llama.cpp refuses gaps itself
        b = self._batch
        b.n_tokens = n
        for i in range(n):
            b.token[i] = int(tokens[i])
            b.pos[i] = positions[i]
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seqs[i]
            b.logits[i] = bool(outputs[i])
        capture = self._capture
        use_head = capture is not None and self.head_ok
        if capture is not None:
            capture.seen = 0
            capture.trim = int(use_head and not full_logits)
        with self.model.lock:  # the weights must stay alive during the pass
            self.model._live()
            rc = forward_thread.run(C.llama_decode, self._ctx, b)  # one OpenMP team per process
        if rc != 0:
            raise ModelError(f"llama_decode failed ({rc}): {logs.recent()}")
        self._n_outputs = sum(1 for o in outputs if o)
        self._full = full_logits or not use_head
        self._rows = [i for i in range(n) if outputs[i]]
        if capture is not None and use_head and self._n_outputs and not capture.seen:
            raise ModelError("llama.cpp's graph has no final hidden state where emogram expects it")

    def hidden(self, k: int) -> np.ndarray:
        """The final hidden state of output row ``k`` (a read-only view, valid until the next decode)."""
        return self._row_view(C.llama_get_embeddings_ith, k, self.model.n_embd, "hidden state")

    def logits(self, k: int) -> np.ndarray:
        """llama.cpp's logits over the whole vocabulary for output row ``k`` (a read-only view)."""
        if not self._full:
            self._live()
            raise ModelError("this decode computed no full-vocabulary logits")
        return self._row_view(C.llama_get_logits_ith, k, self.model.n_vocab, "logits")

    def _row_view(self, getter, k: int, size: int, what: str) -> np.ndarray:
        self._live()
        ptr = getter(self._ctx, self._rows[self._row(k)])
        if not ptr:
            raise ModelError(f"llama.cpp returned no {what}")
        view = np.ctypeslib.as_array(ptr, (size,))
        view.flags.writeable = False
        return view

    def candidate_logits(self, k: int) -> np.ndarray:
        """Logits of the head's registered tokens for output row ``k`` (see ``head.py``)."""
        if self.head is None:
            raise ModelError("this model has no output head of its own: read logits(k)")
        return self.head.logits(self.hidden(k))

    def _row(self, k: int) -> int:
        if not _is_int(k) or not 0 <= k < len(self._rows):
            raise InputError(f"output row {k!r} is not 0..{len(self._rows) - 1} of the last decode")
        return int(k)

    # -- sequences --
    def _check_seq(self, seq: int) -> int:
        """llama.cpp asserts (aborts the process) on a sequence id beyond ``n_seq``."""
        if not _is_int(seq) or not 0 <= seq < self.n_seq:
            raise InputError(f"sequence id {seq!r} is not 0..{self.n_seq - 1}")
        return int(seq)

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> bool:
        self._live()
        seq = self._check_seq(seq)
        if not (_is_int(p0) and _is_int(p1) and p0 >= -1 and p1 >= -1):
            raise InputError(f"positions to remove must be ints from 0 (or -1: open end), got {p0!r}, {p1!r}")
        return bool(C.llama_memory_seq_rm(self._memory, seq, int(p0), int(p1)))

    def clear(self) -> None:
        self._live()
        C.llama_memory_clear(self._memory, True)

    def state_get(self, seq: int) -> bytes:
        """llama.cpp's saved state of one sequence (its KV cells), for the prompt cache."""
        self._live()
        seq = self._check_seq(seq)
        size = int(C.llama_state_seq_get_size(self._ctx, seq))
        if size <= 0:
            return b""
        buf = (ctypes.c_uint8 * size)()
        n = int(C.llama_state_seq_get_data(self._ctx, buf, size, seq))
        return bytes(buf)[:n] if n > 0 else b""

    def state_set(self, seq: int, payload: bytes) -> bool:
        """Load a saved state into an empty sequence; False if llama.cpp refused it (it catches its
        own errors and returns 0)."""
        self._live()
        seq = self._check_seq(seq)
        buf = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
        if C.llama_state_seq_set_data(self._ctx, buf, len(payload), seq) != len(payload):
            self.seq_rm(seq)
            return False
        return True


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def output_head(model) -> head_module.OutputHead | None:
    """A ``llama.Model``'s candidate-only output head (one per model), or None where it cannot work:
    layers on a GPU (the hidden state is in device memory), no output matrix, ggml not found."""
    if not hasattr(model, "_output_head"):
        head = None
        if not model.load_info.gpu_offload:
            try:
                head = head_module.OutputHead(model.path)
            except (LookupError, OSError, ValueError):
                head = None
        if head is not None and (head.n_embd, head.n_vocab) != (model.n_embd, model.n_vocab):
            head = None
        if head is not None:
            model.on_close(head.close)
        model._output_head = head
    return model._output_head


def _head_agrees(ctx: Context) -> bool:
    """Does the head reproduce llama.cpp's logits for this model? Checked once per model on a
    probe text (tokens spread over the vocabulary): within 1.0 everywhere and llama.cpp's top
    token among the head's top five. Architectures with an output transform the head does not
    know fail here. The verdict is kept in the set-up cache (the probe's forward pass cost a
    one-shot command 0.17 s), named by all it depends on: the model file, its adapter, this
    CPU's llama.cpp build and the code of the check and of the head."""
    model = ctx.model
    verdict = getattr(model, "_head_agrees", None)
    if verdict is not None:
        return verdict
    cache = getattr(model, "setup_cache", None)
    try:
        if cache is None:
            verdict = _probe_head(ctx)
        else:
            adapter = getattr(model, "adapter", None)
            name = "|".join(["head-agrees", setup_cache.source_digest(head_module, sys.modules[__name__]),
                             adapter.sha256 if adapter is not None else "no adapter",
                             library.system_info(), active_implementation()])
            verdict = bool(cache.arrays(name, lambda: {"agrees": np.bool_(_probe_head(ctx))})["agrees"])
    except ModelError:
        return False  # not known (the model failed the probe): asked again next time
    model._head_agrees = verdict
    return verdict


def _probe_head(ctx: Context) -> bool:
    model = ctx.model
    probe = model.tokenize("Emoji explanations. Topic: the sun and the rain", add_special=True)
    sample = np.unique(np.linspace(0, model.n_vocab - 1, 2048).astype(np.int32))
    ctx.head_ok = True  # so that decode captures the hidden state
    try:
        ctx.decode(probe, range(len(probe)), [0] * len(probe),
                   [i == len(probe) - 1 for i in range(len(probe))], full_logits=True)
        full = ctx.logits(0)[sample]
        assert ctx.head is not None  # probed only where there is one
        mine = ctx.head.logits_of(sample, ctx.hidden(0))
    finally:
        ctx.seq_rm(0)
    return bool(np.max(np.abs(full - mine)) <= 1.0
                and int(np.argmax(full)) in np.argsort(-mine)[:5].tolist())
