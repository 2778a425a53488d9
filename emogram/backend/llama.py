"""A GGUF model in llama.cpp (through llama-cpp-python's ctypes bindings): weights, vocabulary.
Grammar samplers are in ``grammar_sampler.py``, contexts (the KV cache and forward passes) in
``context.py``, the library itself in ``library.py``.

Everything here is shaped by one rule: llama.cpp must never see input that makes it throw a C++
exception or abort, because ctypes cannot catch either and the Python process dies. So files are
checked before loading (``gguf.check_header``), token ids are checked before any vocabulary or
sampler call, grammars are compiled with their errors captured and turned into ``GrammarError``,
a closed model refuses every call with ``ModelError``, and a token is only accepted by a grammar
sampler after the sampler said yes.

llama-cpp-python's library is loaded on first use, not on ``import emogram`` (``library.py``).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..checks import choice
from ..defaults import DEVICES
from ..errors import InputError, InputTypeError, ModelError
from . import adapter as adapters
from . import logs, setup_cache
from .adapter import Adapter
from .context import Context
from .gguf import check_header as check_gguf
from .grammar_sampler import GrammarSampler
from .library import C, Freed, init_backend, supports_gpu_offload
from .machine import active_implementation, usable_cores, use_extra_buffers


@dataclass(frozen=True)
class LoadInfo:
    """How a model was loaded: what a user asks when they wonder why it is slow."""

    path: str
    seconds: float
    n_gpu_layers: int
    gpu_offload: bool
    extra_buffers: bool
    n_threads: int
    n_ctx_train: int


class Model(Freed):
    """A GGUF model's weights and vocabulary. Thread-safe: the vocabulary is read-only, and
    ``close`` waits for calls in flight (they hold ``lock``). Forward passes go through a
    ``Context`` (``new_context``), owned by one thread at a time.
    """

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto",
                 n_threads: int | None = None, verbose: bool | None = None,
                 prompt_cache: str | os.PathLike[str] | None = None,
                 adapter: str | os.PathLike[str] | None = None) -> None:
        choice(device, "device", DEVICES)
        if verbose is not None:
            logs.set_verbose(verbose)
        self.path = check_gguf(path)
        init_backend()
        gpu = supports_gpu_offload() and device != "cpu"
        if device == "gpu" and not supports_gpu_offload():
            raise ModelError("device='gpu' but this llama-cpp-python was built without GPU support; "
                             "reinstall it with CMAKE_ARGS (see docs/gpu.md)")
        mp = C.llama_model_default_params()
        mp.n_gpu_layers = -1 if gpu else 0
        mp.use_extra_bufts = use_extra_buffers()
        start = time.perf_counter()
        logs.clear()
        self._model = C.llama_model_load_from_file(str(self.path).encode("utf-8"), mp)
        if not self._model:
            raise ModelError(f"llama.cpp could not load {self.path}:\n{logs.recent()}")
        self._vocab = C.llama_model_get_vocab(self._model)
        self.n_vocab = int(C.llama_vocab_n_tokens(self._vocab))
        self.n_embd = int(C.llama_model_n_embd(self._model))
        self.lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []
        self._pieces: list[bytes] | None = None
        self._eog: list[int] | None = None
        self._control: np.ndarray | None = None
        self.load_info = LoadInfo(str(self.path), time.perf_counter() - start, mp.n_gpu_layers, gpu,
                                  bool(mp.use_extra_bufts), n_threads or usable_cores(),
                                  int(C.llama_model_n_ctx_train(self._model)))
        self.prompt_cache_dir = Path(prompt_cache) if prompt_cache is not None else None
        self.setup_cache = setup_cache.for_model(self)  # None when the prompt cache is off
        # A LoRA adapter applied in every context of this model (``adapter.py``): checked, then
        # handed to llama.cpp; None without one.
        self.adapter: Adapter | None = None
        self._lora = None
        if adapter is not None:
            try:
                self.adapter = adapters.for_model(adapter, self.path, self.metadata("general.architecture"))
                self._lora = adapters.attach(self._model, self.adapter)
            except BaseException:
                self.close()
                raise

    # -- lifetime --
    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` (an engine's shutdown) before the weights are freed."""
        self._closers.append(closer)

    def close(self) -> None:
        """Stop what runs on this model, then free it. Later calls raise ``ModelError``."""
        closers, self._closers = self._closers, []
        for closer in closers:
            closer()
        with self.lock:
            if getattr(self, "_lora", None):
                adapters.detach(self._lora)
                self._lora = None
            if getattr(self, "_model", None):
                C.llama_model_free(self._model)
                self._model = None
                self._vocab = None

    @property
    def closed(self) -> bool:
        return not getattr(self, "_model", None)

    def _live(self) -> None:
        if self.closed:
            raise ModelError(f"model {self.path} is closed")

    def check_token(self, token: int) -> int:
        """``token`` if it is a real token id of this vocabulary (llama.cpp indexes with ``.at()``
        and aborts the process on anything else)."""
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)) \
                or not 0 <= int(token) < self.n_vocab:
            raise InputError(f"token id {token!r} is not in the vocabulary of {self.path.name} "
                             f"(0..{self.n_vocab - 1})")
        return int(token)

    # -- metadata and vocabulary --
    def metadata(self, key: str) -> str | None:
        with self.lock:
            self._live()
            buf = ctypes.create_string_buffer(1 << 16)
            n = C.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
            if n < 0:
                return None
            if n >= len(buf):
                buf = ctypes.create_string_buffer(n + 1)
                C.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
            return buf.value.decode("utf-8", errors="replace")

    @property
    def name(self) -> str:
        return self.metadata("general.name") or self.path.stem

    @property
    def chat_template(self) -> str | None:
        with self.lock:
            self._live()
            ptr = C.llama_model_chat_template(self._model, None)
            return ptr.decode("utf-8", errors="replace") if ptr else None

    def tokenize(self, text: str | bytes, *, add_special: bool = False,
                 parse_special: bool = False) -> list[int]:
        """Token ids of ``text``. Special-token text (``<end_of_turn>``) becomes control tokens only
        with ``parse_special``: prompts' own markup, never a user's topic."""
        if not isinstance(text, (str, bytes)):
            raise InputTypeError(f"text to tokenize must be str or bytes, not {type(text).__name__}")
        data = text.encode("utf-8") if isinstance(text, str) else text
        with self.lock:
            self._live()
            cap = len(data) + 16
            buf = (C.llama_token * cap)()
            n = C.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
            if n < 0:
                cap = -n
                buf = (C.llama_token * cap)()
                n = C.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            raise InputError("text could not be tokenized")
        return list(buf[:n])

    def pieces(self) -> list[bytes]:
        """The bytes each token stands for, as llama.cpp's grammar engine sees them (read once)."""
        self._live()
        if self._pieces is None:
            self._read_vocabulary()
        return self._pieces  # type: ignore[return-value]

    def is_eog(self, token: int) -> bool:
        token = self.check_token(token)
        with self.lock:
            self._live()
            return bool(C.llama_vocab_is_eog(self._vocab, token))

    def is_control(self, token: int) -> bool:
        return bool(self.control_mask()[self.check_token(token)])

    def control_mask(self) -> np.ndarray:
        """Which tokens are control tokens (``<start_of_turn>``...), for every token (read once)."""
        self._live()
        if self._control is None:
            self._read_vocabulary()
        return self._control  # type: ignore[return-value]

    def eog_tokens(self) -> list[int]:
        """Every end-of-generation token (read once)."""
        self._live()
        if self._eog is None:
            self._read_vocabulary()
        return list(self._eog)  # type: ignore[arg-type]

    def _read_vocabulary(self) -> None:
        """Pieces, control and end tokens: one llama.cpp call per token and kind. From C that takes
        0.01 s for Gemma's 262,144 tokens; through ctypes 0.6 s, so the pure-Python path keeps them
        in the set-up cache after its first run."""
        with self.lock:
            self._live()
            if self._pieces is not None and self._control is not None and self._eog is not None:
                return
            found = None
            if active_implementation() == "native":  # from C: faster than reading the cache's file
                found = self._vocabulary_arrays()
            elif self.setup_cache is not None:
                name = f"vocabulary|{setup_cache.source_digest(sys.modules[__name__])}"
                found = self.setup_cache.arrays(name, self._vocabulary_arrays)
                if len(found["ends"]) != self.n_vocab or len(found["control"]) != self.n_vocab:
                    found = None  # not this vocabulary after all: read it from llama.cpp
            if found is None:
                found = self._vocabulary_arrays()
            self._pieces = setup_cache.unpack_bytes(found)
            self._control = found["control"].astype(bool)
            self._eog = found["eog"].astype(int).tolist()

    def _vocabulary_arrays(self) -> dict[str, np.ndarray]:
        if active_implementation() == "native":  # the same calls from C (src/native/vocab.c)
            from .._native import vocabulary

            def address(fn) -> int:
                return int(ctypes.cast(fn, ctypes.c_void_p).value or 0)
            vocab = self._vocab if isinstance(self._vocab, int) else address(self._vocab)
            blob, ends, control, eog = vocabulary(address(C.llama_token_to_piece), address(C.llama_vocab_is_control),
                                                  address(C.llama_vocab_is_eog), vocab, self.n_vocab)
            return {"blob": np.frombuffer(blob, dtype=np.uint8), "ends": np.frombuffer(ends, dtype=np.int64),
                    "control": np.frombuffer(control, dtype=np.uint8).astype(bool),
                    "eog": np.frombuffer(eog, dtype=np.int64)}
        return self._vocabulary_arrays_python()

    def _vocabulary_arrays_python(self) -> dict[str, np.ndarray]:
        vocab, n = self._vocab, self.n_vocab
        buf = ctypes.create_string_buffer(256)
        out = []
        for t in range(n):
            k = C.llama_token_to_piece(vocab, t, buf, 256, 0, True)
            if k < 0:
                big = ctypes.create_string_buffer(-k)
                k = C.llama_token_to_piece(vocab, t, big, -k, 0, True)
                out.append(big.raw[:k])
            else:
                out.append(buf.raw[:k])
        is_control, is_eog = C.llama_vocab_is_control, C.llama_vocab_is_eog
        control = np.array([bool(is_control(vocab, t)) for t in range(n)], dtype=bool)
        eog = np.array([t for t in range(n) if is_eog(vocab, t)], dtype=np.int64)
        return {**setup_cache.pack_bytes(out), "control": control, "eog": eog}

    def _special(self, getter) -> int | None:
        with self.lock:
            self._live()
            token = int(getter(self._vocab))
        return token if 0 <= token < self.n_vocab else None

    @property
    def bos(self) -> int | None:
        """The beginning-of-sequence token, or None when the vocabulary has none."""
        return self._special(C.llama_vocab_bos)

    @property
    def eos(self) -> int | None:
        return self._special(C.llama_vocab_eos)

    @property
    def add_bos(self) -> bool:
        with self.lock:
            self._live()
            return bool(C.llama_vocab_get_add_bos(self._vocab))

    def token_text(self, token: int | None) -> str:
        """The text of a token as the vocabulary stores it ("" for None)."""
        if token is None:
            return ""
        token = self.check_token(token)
        with self.lock:
            self._live()
            return C.llama_vocab_get_text(self._vocab, token).decode("utf-8", errors="replace")

    def grammar(self, gbnf: str, root: str = "root") -> GrammarSampler:
        """llama.cpp's grammar sampler for ``gbnf`` (``GrammarError`` with its message if refused)."""
        return GrammarSampler(self, gbnf, root)

    def render_chat(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = True,
                    **kwargs) -> str:
        """``messages`` in the model's chat template, rendered with jinja2 by llama-cpp-python's
        formatter (the one its server uses); ``kwargs`` reach the template (``enable_thinking``)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        template = self.chat_template
        if template is None:
            raise ModelError(f"{self.path.name} has no chat template")
        return Jinja2ChatFormatter(template, eos_token=self.token_text(self.eos),
                                   bos_token=self.token_text(self.bos),
                                   add_generation_prompt=add_generation_prompt)(
            messages=messages, **kwargs).prompt  # type: ignore[arg-type]  # (its TypedDicts are dicts)

    def new_context(self, *, n_seq: int, n_ctx: int) -> Context:
        """A llama.cpp context for up to ``n_seq`` sequences sharing ``n_ctx`` cells."""
        return Context(self, n_seq=n_seq, n_ctx=n_ctx)
