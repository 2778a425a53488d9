"""LoRA adapters in GGUF form: checked before llama.cpp reads them, described for the user.

An adapter is a small file of low-rank weight deltas that llama.cpp adds to a model's own weights
at every forward pass (``llama_adapter_lora_init`` once per model, ``llama_set_adapters_lora`` per
context). emogram ships one for its default model (``emogram/adapters/``), trained by
``python -m emogram.training.train``; a user can pass their own.

llama.cpp catches its own errors while it loads an adapter, but a file that is not GGUF at all, or
whose tensors do not fit the model, is refused here first with a ``ModelError`` that says why:
the GGUF header, ``general.type = adapter``, ``adapter.type = lora``, the architecture, and for
every pair of tensors its base weight and shapes.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputTypeError, ModelError
from . import logs
from .gguf import Tensor, read_table, table_of

_F16, _F32 = 1, 0  # ggml types an adapter's tensors may have here
_BYTES = {_F32: 4, _F16: 2}


@dataclass(frozen=True)
class Adapter:
    """A checked GGUF LoRA adapter: where it is, what it is, and the prompt it was trained with."""

    path: Path
    sha256: str
    architecture: str
    alpha: float
    rank: int
    size: int
    metadata: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The file name without ``.gguf``: what JSON output and batch records say ran."""
        return self.path.name[:-5] if self.path.name.endswith(".gguf") else self.path.name

    @property
    def prompt(self) -> str | None:
        """The prompt format it was trained with (``Topic: {topic}\\n``), if it says."""
        text = self.metadata.get("emogram.prompt")
        return text if text and "{topic}" in text else None

    def describe(self) -> str:
        trained = self.metadata.get("emogram.corpus_lines")
        on = f", trained on {trained} corpus lines" if trained else ""
        return f"{self.name} (LoRA rank {self.rank}, {self.size / 1e6:.1f} MB{on})"


def read(path: str | os.PathLike[str], model_tensors: dict | None = None,
         architecture: str | None = None) -> Adapter:
    """Check ``path`` as a LoRA adapter (for a model with ``model_tensors`` and ``architecture``,
    when given) and describe it."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"adapter must be a path, True or False, not {type(path).__name__}")
    table = read_table(path, "adapter file")  # a regular GGUF file, or a ModelError that says why
    p = Path(path).expanduser()
    meta = table.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise ModelError(f"{p} is a GGUF file but not a LoRA adapter (general.type="
                         f"{meta.get('general.type')!r}, adapter.type={meta.get('adapter.type')!r})")
    arch = meta.get("general.architecture")
    if architecture is not None and arch != architecture:
        raise ModelError(f"adapter {p.name} is for {arch!r} models, not this {architecture!r} model")
    pairs: dict[str, dict[str, Tensor]] = {}
    for name, tensor in table.tensors.items():
        base, dot, kind = name.rpartition(".")
        if kind not in ("lora_a", "lora_b") or not dot:
            raise ModelError(f"adapter {p.name}: tensor {name!r} is not a lora_a or lora_b")
        if tensor.ggml_type not in _BYTES or len(tensor.dims) != 2:
            raise ModelError(f"adapter {p.name}: tensor {name!r} must be a 2-d f16 or f32 matrix")
        end = tensor.offset + _BYTES[tensor.ggml_type] * tensor.dims[0] * tensor.dims[1]
        if end > table.size:
            raise ModelError(f"adapter {p.name} is truncated: tensor {name!r} ends past the file")
        pairs.setdefault(base, {})[kind] = tensor
    ranks = set()
    for base, pair in pairs.items():
        if set(pair) != {"lora_a", "lora_b"}:
            raise ModelError(f"adapter {p.name}: {base} has only its {next(iter(pair))}")
        a, b = pair["lora_a"].dims, pair["lora_b"].dims
        if a[1] != b[0]:
            raise ModelError(f"adapter {p.name}: {base} has lora_a {a} and lora_b {b} of different ranks")
        ranks.add(a[1])
        if model_tensors is not None:
            weight = model_tensors.get(base)
            if weight is None:
                raise ModelError(f"adapter {p.name} changes {base}, which this model does not have")
            if weight.dims[0] != a[0] or weight.dims[1] != b[1]:
                raise ModelError(f"adapter {p.name}: {base} is {weight.dims} in the model, but the "
                                 f"adapter's pair makes {(a[0], b[1])}")
    if not pairs:
        raise ModelError(f"adapter {p.name} holds no LoRA tensors")
    alpha = meta.get("adapter.lora.alpha", 0.0)
    strings = {k: v for k, v in meta.items() if isinstance(v, str)}
    return Adapter(p, _sha256(p), str(arch), float(alpha) if isinstance(alpha, (int, float)) else 0.0,
                   max(ranks), table.size, strings)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since it was checked
                raise ModelError(f"adapter file {path} is not a regular file")
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelError(f"cannot read adapter file {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


# --- in llama.cpp -----------------------------------------------------------------------------------

def attach(model_ptr, adapter: Adapter):
    """llama.cpp's adapter object for ``adapter`` on the loaded model (freed with ``detach``)."""
    from .library import C
    logs.clear()
    ptr = C.llama_adapter_lora_init(model_ptr, str(adapter.path).encode("utf-8"))
    if not ptr:
        raise ModelError(f"llama.cpp refused the adapter {adapter.path}:\n{logs.recent()}")
    return ptr


def apply(ctx_ptr, lora_ptr, scale: float = 1.0) -> None:
    """Use the adapter in every forward pass of a context."""
    from .library import C
    adapters = (C.llama_adapter_lora_p_ctypes * 1)(lora_ptr)
    scales = (ctypes.c_float * 1)(scale)
    if C.llama_set_adapters_lora(ctx_ptr, adapters, 1, scales) != 0:
        raise ModelError("llama.cpp could not apply the adapter to a context")


def detach(lora_ptr) -> None:
    from .library import C
    C.llama_adapter_lora_free(lora_ptr)


def for_model(path: str | os.PathLike[str], model_path: Path, architecture: str | None) -> Adapter:
    """``read`` against the model's own tensor table (remembered per model file)."""
    return read(path, table_of(model_path).tensors, architecture)
