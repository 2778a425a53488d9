"""The one module that talks to llama.cpp (through llama-cpp-python's ctypes bindings).

Everything here is shaped by one rule: llama.cpp must never see input that makes it throw a C++
exception or abort, because ctypes cannot catch either and the Python process dies. So files are
checked before loading, grammars are compiled with their errors captured and turned into
``GrammarError``, saved prompt states are checked against their own sha256 before llama.cpp reads
them, and a token is only accepted by a grammar sampler after the sampler said yes.

llama.cpp's log is routed through a callback: silent by default, printed with ``verbose=True``, and
always kept in a short buffer so that errors can quote it.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import hashlib
import os
import platform
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import GrammarError, InputError, ModelError

with contextlib.redirect_stderr(None):  # importing the package prints nothing, but be sure
    import llama_cpp.llama_cpp as C

GGUF_MAGIC = b"GGUF"
_LOG: collections.deque[str] = collections.deque(maxlen=400)
_VERBOSE = False
_INIT_LOCK = threading.Lock()
_INITIALISED = False


@C.llama_log_callback
def _log_callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    message = text.decode("utf-8", errors="replace")
    _LOG.append(message)
    if _VERBOSE:
        sys.stderr.write(message)
        sys.stderr.flush()


def set_verbose(verbose: bool) -> None:
    """Print llama.cpp's log to stderr (True) or keep it silent (False, the default)."""
    global _VERBOSE
    _VERBOSE = bool(verbose)


def recent_log(lines: int = 8) -> str:
    """The last lines llama.cpp logged, for error messages."""
    text = "".join(list(_LOG)[-lines * 4:])
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def _init_backend() -> None:
    global _INITIALISED
    with _INIT_LOCK:
        if not _INITIALISED:
            C.llama_log_set(_log_callback, ctypes.c_void_p(0))
            C.llama_backend_init()
            _INITIALISED = True


_init_backend()


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what native code writes straight to file descriptor 2 (llama.cpp's grammar parser
    uses ``fprintf(stderr, ...)``, not the log callback)."""
    out: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", errors="replace"))


# --- file checks --------------------------------------------------------------------------------

def check_gguf(path: str | os.PathLike[str]) -> Path:
    """Refuse anything that is not a readable GGUF file, naming the path, before llama.cpp sees it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model file not found: {p}")
    if p.is_dir():
        raise ModelError(f"model path is a directory, not a .gguf file: {p}")
    try:
        with p.open("rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise ModelError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    if head[:4] != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file (it starts with {head[:4]!r}, not b'GGUF'): {p}")
    if len(head) < 24:
        raise ModelError(f"GGUF model file is truncated ({len(head)} bytes): {p}")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise ModelError(f"unsupported GGUF version {version} (llama.cpp reads 2 and 3): {p}")
    if n_tensors == 0 or n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ModelError(f"GGUF header of {p} is implausible ({n_tensors} tensors, {n_kv} keys)")
    return p


# --- CPU features -------------------------------------------------------------------------------

def cpu_advertises_amx() -> bool:
    """True when the CPU claims AMX (Linux /proc/cpuinfo). ggml's AMX path can die with SIGILL on
    machines that advertise it but cannot run it (seen on cloud VMs), so we avoid it there."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.machine().lower() in ("x86_64", "amd64") and sys.platform == "win32"
    return "amx_tile" in flags or "amx_int8" in flags or "amx_bf16" in flags


def use_extra_buffers() -> bool:
    """Whether to let llama.cpp use extra buffer types (weight repacking, AMX).

    ``EMOGRAM_EXTRA_BUFTS=1`` or ``0`` decides; otherwise they are on except where the CPU
    advertises AMX.
    """
    forced = os.environ.get("EMOGRAM_EXTRA_BUFTS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return not cpu_advertises_amx()


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask, capped by a cgroup CPU quota
    (containers), not ``os.cpu_count()`` (the whole machine)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def supports_gpu_offload() -> bool:
    return bool(C.llama_supports_gpu_offload())


def system_info() -> str:
    return C.llama_print_system_info().decode("utf-8", errors="replace").strip()


# --- the model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadInfo:
    """How a model was loaded: what a user asks when they wonder why it is slow."""

    path: str
    seconds: float
    n_gpu_layers: int
    gpu_offload: bool
    extra_buffers: bool
    n_threads: int
    n_ctx: int


class Model:
    """A GGUF model and one llama.cpp context, with a lock (a context is not thread-safe).

    Holders must take ``model.lock`` around anything that evaluates tokens or reads logits.
    """

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto", n_ctx: int = 2048,
                 n_threads: int | None = None, verbose: bool | None = None,
                 prompt_cache: str | os.PathLike[str] | None = None) -> None:
        import time
        if device not in ("auto", "cpu", "gpu"):
            raise InputError(f"device must be 'auto', 'cpu' or 'gpu', not {device!r}")
        if verbose is not None:
            set_verbose(verbose)
        self.path = check_gguf(path)
        gpu = supports_gpu_offload() and device != "cpu"
        if device == "gpu" and not supports_gpu_offload():
            raise ModelError("device='gpu' but this llama-cpp-python was built without GPU support; "
                             "reinstall it with CMAKE_ARGS (see the README, GPU set-up)")
        mp = C.llama_model_default_params()
        mp.n_gpu_layers = -1 if gpu else 0
        mp.use_extra_bufts = use_extra_buffers()
        start = time.perf_counter()
        _LOG.clear()
        self._model = C.llama_model_load_from_file(str(self.path).encode("utf-8"), mp)
        if not self._model:
            raise ModelError(f"llama.cpp could not load {self.path}:\n{recent_log()}")
        self._vocab = C.llama_model_get_vocab(self._model)
        self.n_vocab = int(C.llama_vocab_n_tokens(self._vocab))
        n_ctx_train = int(C.llama_model_n_ctx_train(self._model))
        threads = n_threads or usable_cores()
        cp = C.llama_context_default_params()
        cp.n_ctx = min(n_ctx, n_ctx_train) if n_ctx_train > 0 else n_ctx
        cp.n_batch = min(512, cp.n_ctx)
        cp.n_ubatch = cp.n_batch
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.no_perf = False
        self._ctx = C.llama_init_from_model(self._model, cp)
        if not self._ctx:
            C.llama_model_free(self._model)
            self._model = None
            raise ModelError(f"llama.cpp could not create a context for {self.path}:\n{recent_log()}")
        self.n_ctx = int(C.llama_n_ctx(self._ctx))
        self.lock = threading.RLock()
        self._memory = C.llama_get_memory(self._ctx)
        self._tokens: list[int] = []  # what the context currently holds (sequence 0)
        self._one = (C.llama_token * 1)()
        self._pieces: list[bytes] | None = None
        self._eog: list[int] | None = None
        self._logits_addr = 0
        self._logits_view = np.zeros(0, dtype=np.float32)
        self.load_info = LoadInfo(str(self.path), time.perf_counter() - start, mp.n_gpu_layers,
                                  gpu, bool(mp.use_extra_bufts), threads, self.n_ctx)
        self.prompt_cache = PromptCache(Path(prompt_cache), self) if prompt_cache is not None else None

    # -- lifetime --
    def close(self) -> None:
        if getattr(self, "_ctx", None):
            C.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            C.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass

    def _live(self) -> None:
        if not getattr(self, "_ctx", None):
            raise ModelError(f"model {self.path} is closed")

    # -- metadata and vocabulary --
    def metadata(self, key: str) -> str | None:
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
        ptr = C.llama_model_chat_template(self._model, None)
        return ptr.decode("utf-8", errors="replace") if ptr else None

    def tokenize(self, text: str | bytes, *, add_special: bool = False,
                 parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8") if isinstance(text, str) else text
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

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for, as llama.cpp's grammar engine sees them."""
        return self.pieces()[token]

    def pieces(self) -> list[bytes]:
        if self._pieces is None:
            buf = ctypes.create_string_buffer(256)
            out = []
            for t in range(self.n_vocab):
                n = C.llama_token_to_piece(self._vocab, t, buf, 256, 0, True)
                if n < 0:
                    big = ctypes.create_string_buffer(-n)
                    n = C.llama_token_to_piece(self._vocab, t, big, -n, 0, True)
                    out.append(big.raw[:n])
                else:
                    out.append(buf.raw[:n])
            self._pieces = out
        return self._pieces

    def token_attr(self, token: int) -> int:
        return int(C.llama_vocab_get_attr(self._vocab, token))

    def is_eog(self, token: int) -> bool:
        return bool(C.llama_vocab_is_eog(self._vocab, token))

    def is_control(self, token: int) -> bool:
        return bool(C.llama_vocab_is_control(self._vocab, token))

    def eog_tokens(self) -> list[int]:
        """Every end-of-generation token (computed once)."""
        if self._eog is None:
            self._eog = [t for t in range(self.n_vocab) if self.is_eog(t)]
        return list(self._eog)

    @property
    def bos(self) -> int:
        return int(C.llama_vocab_bos(self._vocab))

    @property
    def eos(self) -> int:
        return int(C.llama_vocab_eos(self._vocab))

    @property
    def add_bos(self) -> bool:
        return bool(C.llama_vocab_get_add_bos(self._vocab))

    def token_text(self, token: int) -> str:
        return C.llama_vocab_get_text(self._vocab, token).decode("utf-8", errors="replace")

    # -- evaluation --
    def prefill_split(self, shared: Sequence[int], own: Sequence[int]) -> int:
        """Make the context hold ``shared + own`` and compute the logits of the last token.

        ``shared`` (instructions and examples, the same for every call) is reused from the context
        when it is already there, else evaluated on its own; ``own`` is then always evaluated on top
        of it. Same batches every time, so the same seed gives the same text whether or not the
        shared part was cached. Returns the number of tokens evaluated.
        """
        self._live()
        shared, own = list(shared), list(own)
        if not own:
            raise InputError("cannot evaluate an empty prompt")
        if len(shared) + len(own) >= self.n_ctx:
            raise InputError(f"prompt is {len(shared) + len(own)} tokens; the context holds {self.n_ctx}")
        evaluated = 0
        if shared and self._tokens[:len(shared)] == shared:
            if len(self._tokens) > len(shared) and not C.llama_memory_seq_rm(self._memory, 0, len(shared), -1):
                self._clear()
            else:
                self._tokens = self._tokens[:len(shared)]
        else:
            self._clear()
        if not self._tokens and shared:
            if self.prompt_cache is not None and self.prompt_cache.restore(shared):
                self._tokens = shared
            else:
                evaluated += self._decode_all(shared)
                if self.prompt_cache is not None:
                    self.prompt_cache.store(shared)
        evaluated += self._decode_all(own)
        return evaluated

    def _clear(self) -> None:
        C.llama_memory_clear(self._memory, True)
        self._tokens = []

    def _decode_all(self, tokens: list[int]) -> int:
        step = max(1, int(C.llama_n_batch(self._ctx)))
        for i in range(0, len(tokens), step):
            self._decode(tokens[i:i + step])
        return len(tokens)

    def push(self, token: int) -> None:
        """Evaluate one more token (the one just sampled)."""
        self._one[0] = token
        if len(self._tokens) + 1 >= self.n_ctx:
            raise InputError(f"generation reached the context size ({self.n_ctx} tokens)")
        rc = C.llama_decode(self._ctx, C.llama_batch_get_one(self._one, 1))
        if rc != 0:
            raise ModelError(f"llama_decode failed ({rc}):\n{recent_log()}")
        self._tokens.append(token)

    def _decode(self, chunk: list[int]) -> None:
        arr = (C.llama_token * len(chunk))(*chunk)
        rc = C.llama_decode(self._ctx, C.llama_batch_get_one(arr, len(chunk)))
        if rc != 0:
            self._clear()
            raise ModelError(f"llama_decode failed ({rc}):\n{recent_log()}")
        self._tokens.extend(chunk)

    def logits(self) -> np.ndarray:
        """A read-only numpy view of the last token's logits (no copy).

        The view is reused while llama.cpp keeps the logits at the same address (it does between
        single-token decodes): building a view of 262k floats costs more than sampling from it.
        """
        ptr = C.llama_get_logits_ith(self._ctx, -1)
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        if not addr:
            raise ModelError("llama.cpp returned no logits (was anything evaluated?)")
        if addr != self._logits_addr:
            view = np.frombuffer((ctypes.c_float * self.n_vocab).from_address(addr), dtype=np.float32)
            view.flags.writeable = False
            self._logits_view, self._logits_addr = view, addr
        return self._logits_view

    @property
    def n_past(self) -> int:
        return len(self._tokens)


class PromptCache:
    """The shared part of prompts (instructions and few-shot examples), evaluated once per machine:
    llama.cpp's state of that sequence saved to a file, so a one-shot command does not spend half a
    second re-reading the same examples on every run.

    A file is named by a hash of the model file (path, size, mtime), llama-cpp-python's version, the
    offload and context settings and the tokens, and carries a sha256 of its contents: a stale,
    truncated or foreign file is ignored before llama.cpp sees it (and llama.cpp's loader catches
    its own errors and returns 0, which also falls back to evaluating the tokens). The restored
    state holds the very numbers the evaluation computed, so answers are the same either way.
    """

    MAGIC = b"EMOGRAM-KV1\n"
    KEEP = 16  # newest files kept in the directory

    def __init__(self, directory: Path, model: "Model") -> None:
        import llama_cpp
        self.directory = directory
        self.model = model
        st = model.path.stat()
        info = model.load_info
        self._identity = (f"{model.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|"
                          f"{getattr(llama_cpp, '__version__', '')}|{info.n_gpu_layers}|"
                          f"{info.extra_buffers}|{info.n_ctx}").encode()

    def file_for(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(self._identity)
        digest.update(np.asarray(tokens, dtype=np.int32).tobytes())
        return self.directory / f"{digest.hexdigest()[:40]}.kv"

    def restore(self, tokens: Sequence[int]) -> bool:
        """Load the state after ``tokens`` into sequence 0 (empty before); False if not cached."""
        path = self.file_for(tokens)
        try:
            blob = path.read_bytes()
        except OSError:
            return False
        head = len(self.MAGIC)
        payload = blob[head + 32:]
        if (not blob.startswith(self.MAGIC) or not payload
                or hashlib.sha256(payload).digest() != blob[head:head + 32]):
            return False
        buf = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
        if C.llama_state_seq_set_data(self.model._ctx, buf, len(payload), 0) != len(payload):
            self.model._clear()
            return False
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by the pruning
        return True

    def store(self, tokens: Sequence[int]) -> None:
        """Save the state of sequence 0 (which holds exactly ``tokens``); best effort."""
        size = int(C.llama_state_seq_get_size(self.model._ctx, 0))
        buf = (ctypes.c_uint8 * max(size, 1))()
        n = int(C.llama_state_seq_get_data(self.model._ctx, buf, size, 0)) if size > 0 else 0
        if n <= 0:
            return
        payload = bytes(buf)[:n]
        tmp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(self.MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, self.file_for(tokens))
            tmp = None
            self._prune()
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _prune(self) -> None:
        def age(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0
        for old in sorted(self.directory.glob("*.kv"), key=age, reverse=True)[self.KEEP:]:
            with contextlib.suppress(OSError):
                old.unlink()


# --- grammar samplers ---------------------------------------------------------------------------

class GrammarSampler:
    """llama.cpp's GBNF engine as a judge of single tokens and of candidate lists.

    Never accepts a token that ``allows`` did not approve first: llama.cpp throws on that, and a
    C++ exception through ctypes aborts the process.
    """

    def __init__(self, model: Model, gbnf: str, root: str = "root", *, _ptr: int | None = None) -> None:
        self.model = model
        self.gbnf = gbnf
        if _ptr is None:
            if "::=" not in gbnf:  # llama.cpp turns an empty grammar into a sampler that allows all
                raise GrammarError("llama.cpp rejected the grammar", "the grammar has no rules")
            _LOG.clear()
            with captured_stderr() as err:
                ptr = C.llama_sampler_init_grammar(model._vocab, gbnf.encode("utf-8"), root.encode("utf-8"))
            if not ptr:
                detail = (err[0] if err else "").strip() or recent_log()
                detail = detail.split("\n\n")[0]  # llama.cpp appends the whole grammar: drop it
                raise GrammarError("llama.cpp rejected the grammar", detail)
            self._ptr = ptr
        else:
            self._ptr = _ptr
        self._one_data = (C.llama_token_data * 1)()
        self._one = C.llama_token_data_array(self._one_data, 1, -1, False)
        self._one_ref = ctypes.byref(self._one)
        self._many_data: ctypes.Array | None = None
        self._many_view: np.ndarray | None = None

    def clone(self) -> "GrammarSampler":
        """An independent copy in the same state (cheap: no re-parse)."""
        ptr = C.llama_sampler_clone(self._ptr)
        if not ptr:
            raise GrammarError("llama.cpp could not clone the grammar sampler")
        return GrammarSampler(self.model, self.gbnf, _ptr=ptr)

    def allows(self, token: int) -> bool:
        """Would the grammar accept ``token`` next? (An end-of-generation token means: may it end?)"""
        d = self._one_data[0]
        d.id = token
        d.logit = 0.0
        self._one.size = 1
        self._one.selected = -1
        self._one.sorted = False
        C.llama_sampler_apply(self._ptr, self._one_ref)
        return self._one_data[0].logit != float("-inf")

    def allowed(self, tokens: np.ndarray) -> np.ndarray:
        """Boolean mask over ``tokens`` (int32): which ones the grammar would accept next."""
        n = len(tokens)
        if self._many_data is None or len(self._many_data) < n:
            self._many_data = (C.llama_token_data * max(n, 1))()
            dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
            self._many_view = np.frombuffer(self._many_data, dtype=dtype)
        view = self._many_view
        assert view is not None
        view["id"][:n] = tokens
        view["logit"][:n] = 0.0
        arr = C.llama_token_data_array(self._many_data, n, -1, False)
        C.llama_sampler_apply(self._ptr, ctypes.byref(arr))
        if ctypes.addressof(arr.data.contents) != ctypes.addressof(self._many_data):
            raise GrammarError("llama.cpp replaced the candidate array; cannot read its verdicts")
        return view["logit"][:n] != -np.inf

    def accept(self, token: int) -> None:
        """Advance past ``token``. Callers must have checked ``allows(token)``."""
        C.llama_sampler_accept(self._ptr, token)

    def close(self) -> None:
        if getattr(self, "_ptr", None):
            C.llama_sampler_free(self._ptr)
            self._ptr = None

    def __del__(self) -> None:  # pragma: no cover
        try:
            self.close()
        except Exception:
            pass
