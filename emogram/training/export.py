"""A trained peft LoRA adapter, written as the GGUF LoRA file that llama.cpp applies.

llama.cpp's own ``convert_lora_to_gguf.py`` does this for any architecture but lives only in its
source tree; for Gemma 3 the mapping is a table of names and no reshaping, so it is written here
with the ``gguf`` package (llama.cpp's own GGUF writer, on the index).

A LoRA pair for a weight ``W`` (``out x in``) is stored as two tensors named after llama.cpp's
tensor: ``blk.N.attn_q.weight.lora_a`` (peft's ``lora_A``, ``r x in``) and ``...lora_b`` (peft's
``lora_B``, ``out x r``); llama.cpp adds ``scale * alpha / r * B @ A @ x`` to ``W @ x``, the same
``lora_alpha / r`` scaling peft uses. ``general.type`` is ``adapter`` and ``general.architecture``
the base model's, which llama.cpp checks before it applies the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import numpy as np

# peft's module names (HF Gemma 3) -> llama.cpp's tensor names
MODULES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_NAME = re.compile(r"(?:^|\.)layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])(?:\.default)?\.weight$")


def gguf_name(peft_name: str) -> str:
    """``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` -> ``blk.3.attn_q.weight.lora_a``."""
    m = _NAME.search(peft_name)
    if m is None or m[2] not in MODULES:
        raise ValueError(f"not a LoRA weight of a Gemma 3 linear layer: {peft_name}")
    return f"blk.{m[1]}.{MODULES[m[2]]}.weight.lora_{m[3].lower()}"


def write_gguf_lora(tensors: Mapping[str, np.ndarray], path: str | Path, *, alpha: float,
                    architecture: str = "gemma3", metadata: Mapping[str, str] | None = None,
                    dtype: str = "f16") -> Path:
    """Write peft's LoRA tensors (``{peft name: array}``) as a GGUF adapter; returns the path.
    ``metadata`` adds ``emogram.*`` strings (the corpus hash, the training settings)."""
    import gguf

    path = Path(path)
    named = {gguf_name(k): np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
    pairs = {n[: -len(".lora_a")] for n in named if n.endswith(".lora_a")}
    if not pairs or pairs != {n[: -len(".lora_b")] for n in named if n.endswith(".lora_b")}:
        raise ValueError("every LoRA weight needs both its lora_a and its lora_b")
    for base in sorted(pairs):
        a, b = named[base + ".lora_a"], named[base + ".lora_b"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ValueError(f"{base}: lora_a {a.shape} and lora_b {b.shape} do not share a rank")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for key, value in (metadata or {}).items():
        writer.add_string(f"emogram.{key}", str(value))
    np_type = np.float16 if dtype == "f16" else np.float32
    for name in sorted(named):
        writer.add_tensor(name, named[name].astype(np_type))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path
