"""The machine emogram runs on: the cores it may use, the CPU features that change how llama.cpp
must be set up, and whether the hot paths run in emogram's C extension. Plain Python (no llama.cpp),
so batch jobs can divide the cores before any model loads.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_advertises_amx() -> bool:
    """True when the CPU claims AMX (Linux /proc/cpuinfo). ggml's AMX path can die with SIGILL on
    machines that advertise it but cannot run it (seen on cloud VMs), so we avoid it there."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.machine().lower() in ("x86_64", "amd64") and sys.platform == "win32"
    return "amx_tile" in flags or "amx_int8" in flags or "amx_bf16" in flags


def use_extra_buffers() -> bool:
    """Whether to let llama.cpp use extra buffer types (weight repacking, AMX). Off by default.

    Repacked weights are multiplied by one kernel for a single token and by another for several,
    and the two round differently (logits moved by up to 0.9 on Gemma): with them, a sequence
    decoded in a batch would not give the same text as alone. Without them every batch size gives
    bit-identical logits, at no measured cost on this CPU (``bench/extra_bufts.py``). Where the
    CPU advertises AMX they stay off even when asked for (the AMX guard: SIGILL seen there).
    ``EMOGRAM_EXTRA_BUFTS=1`` turns them on elsewhere.
    """
    return os.environ.get("EMOGRAM_EXTRA_BUFTS", "").strip() == "1" and not cpu_advertises_amx()


FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}  # llama.cpp's flash_attn_type values


def flash_attention() -> int:
    """llama.cpp's flash-attention setting for a context: llama.cpp's own choice ("auto", which
    turns it on here) unless ``EMOGRAM_FLASH_ATTN=auto|on|off`` says otherwise. On this CPU "off"
    took 0.71, 0.95 and 0.84 of the time per SmolLM2 pass in three runs, and no less on Gemma 3
    (``bench/flash_attn.py``). It is not the default: it changes the texts seeds give (36 of 47
    Gemma answers), for no measured gain on the default model."""
    asked = os.environ.get("EMOGRAM_FLASH_ATTN", "").strip().lower()
    return FLASH_ATTN.get(asked, FLASH_ATTN["auto"])


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


def native_available() -> bool:
    """Whether emogram's C extension (``emogram._native``: the sampler and the output head) is built."""
    try:
        from .._native import sample  # noqa: F401
    except ImportError:
        return False
    return True


def active_implementation() -> str:
    """'native' (the C extension) unless it is missing or EMOGRAM_PURE_PYTHON=1."""
    if os.environ.get("EMOGRAM_PURE_PYTHON", "").strip() not in ("", "0"):
        return "python"
    return "native" if native_available() else "python"
