"""The cheap distribution: pick one candidate token from the logits, fast and reproducibly.

The engine's hot path is: gather the logits of the pre-filtered candidate tokens, add a bias
(repetition control), drop banned candidates (rejected this step), apply temperature, top-k, min-p
and top-p, and draw. It is implemented twice with bit-identical results: in C (``emogram._native``,
built by CMakeLists.txt) and here in Python (numpy for the gathering, ``math.exp`` for the rest).
``EMOGRAM_PURE_PYTHON=1`` forces this module's version (``backend/machine.py``:
``active_implementation``).

The algorithm, fixed so both implementations agree bit for bit:

1. ``v[i] = double(logits[cand[i]]) + bias[i]`` for every candidate not banned and not -inf/NaN;
2. temperature <= 0: the largest ``v`` wins, ties to the lowest candidate index;
3. sort by (``v`` descending, index ascending); keep the first ``top_k`` (0 keeps all);
4. ``w[j] = exp((v[j] - v[0]) / temperature)``; min-p keeps ``w[j] >= min_p`` (``w[0] == 1``);
5. top-p keeps the shortest prefix whose running sum (left to right) reaches ``top_p * sum(w)``;
6. draw ``u = next_double() * sum(kept w)`` and take the first ``j`` whose running sum exceeds ``u``.

The random numbers come from SplitMix64 (a 64-bit counter hashed by a fixed mixer), written in both
languages; ``next_double`` uses the top 53 bits.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..backend.machine import active_implementation
from ..checks import number, whole
from ..errors import InputError

MASK64 = (1 << 64) - 1
MAX_TOP_K = 2**31 - 1  # the C sampler's int; any top_k at or above the candidates keeps them all


@dataclass(frozen=True)
class SamplingParams:
    """Sampling knobs. The defaults were chosen with bench/quality.py on the public topic set (the
    docs/tuning.md has the table): with them the default model writes about half its emoji on-topic and
    repeats under 5% of its groups (from 40% and 16% before any steering)."""

    temperature: float = 0.3
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 2.0  # pull away from emoji already used (per use), see engine
    filler_penalty: float = 1.0  # pull away from plain coloured shapes (🟨 🔵), see engine
    partial_penalty: float = 2.0  # logits off tokens that hold only part of a character, see engine

    def __post_init__(self) -> None:
        for name in ("temperature", "top_p", "min_p", "repeat_penalty", "filler_penalty", "partial_penalty"):
            object.__setattr__(self, name, number(getattr(self, name), name))
        whole(self.top_k, "top_k", 0, MAX_TOP_K)
        for name in ("temperature", "repeat_penalty", "filler_penalty", "partial_penalty"):
            number(getattr(self, name), name, 0)
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            raise InputError(f"min_p must be in [0, 1), got {self.min_p}")


def seed_state(seed: int | None) -> int:
    """The 64-bit RNG state for a seed; ``None`` draws one from the OS."""
    if seed is None:
        return int.from_bytes(os.urandom(8), "little")
    return whole(seed, "seed") & MASK64


class PySampler:
    """Pure-Python implementation (the reference; the C one must match it bit for bit)."""

    implementation = "python"

    def __init__(self, candidates: np.ndarray, params: SamplingParams, seed: int | None) -> None:
        self.candidates = np.ascontiguousarray(candidates, dtype=np.int32)
        self.params = params
        self.state = seed_state(seed)

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)

    def sample(self, logits: np.ndarray, bias: np.ndarray, banned: np.ndarray) -> int:
        """Index into ``candidates`` of the drawn token, or -1 when every candidate is out."""
        v = logits[self.candidates].astype(np.float64) + bias
        ok = (banned == 0) & np.isfinite(v)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return -1
        vals = v[idx]
        p = self.params
        if p.temperature <= 0:
            return int(idx[int(np.argmax(vals))])  # argmax returns the first (lowest index) maximum
        k = p.top_k if 0 < p.top_k < idx.size else idx.size
        if k < idx.size:
            kth = np.partition(vals, idx.size - k)[idx.size - k]  # k-th largest value
            above = vals > kth
            tie = np.flatnonzero(vals == kth)[: k - int(above.sum())]
            sel = np.concatenate([np.flatnonzero(above), tie])
            idx, vals = idx[sel], vals[sel]
        order = np.lexsort((idx, -vals))
        top = [float(x) for x in vals[order]]
        ids = [int(x) for x in idx[order]]
        t = p.temperature
        v0 = top[0]
        w = [math.exp((x - v0) / t) for x in top]
        if p.min_p > 0:
            n = 0
            while n < len(w) and w[n] >= p.min_p:
                n += 1
            w, ids = w[:max(n, 1)], ids[:max(n, 1)]
        if p.top_p < 1:
            total = 0.0
            for x in w:
                total += x
            target = p.top_p * total
            run = 0.0
            n = 0
            while n < len(w):
                run += w[n]
                n += 1
                if run >= target:
                    break
            w, ids = w[:n], ids[:n]
        total = 0.0
        for x in w:
            total += x
        u = self.uniform() * total
        run = 0.0
        for j, x in enumerate(w):
            run += x
            if run > u:
                return ids[j]
        return ids[-1]


class NativeSampler(PySampler):
    """Same algorithm in C: ``emogram._native.sample``; the RNG state lives in this object."""

    implementation = "native"

    def __init__(self, candidates: np.ndarray, params: SamplingParams, seed: int | None) -> None:
        super().__init__(candidates, params, seed)
        from .._native import sample, uniform
        self._sample = sample
        self._uniform = uniform

    def uniform(self) -> float:
        value, self.state = self._uniform(self.state)
        return value

    def sample(self, logits: np.ndarray, bias: np.ndarray, banned: np.ndarray) -> int:
        p = self.params
        index, self.state = self._sample(logits, self.candidates, bias, banned, p.temperature,
                                         p.top_k, p.top_p, p.min_p, self.state)
        return index


def make_sampler(candidates: np.ndarray, params: SamplingParams, seed: int | None,
                 implementation: str | None = None) -> PySampler:
    impl = implementation or active_implementation()
    if impl == "native":
        return NativeSampler(candidates, params, seed)
    if impl == "python":
        return PySampler(candidates, params, seed)
    raise InputError(f"unknown sampler implementation {impl!r}")


def log_probability(logits: np.ndarray, i: int) -> float:
    """log p of the i-th of ``logits`` under their softmax (the finite ones)."""
    finite = logits[np.isfinite(logits)].astype(np.float64)
    top = finite.max()
    return float(logits[i] - top - np.log(np.exp(finite - top).sum()))
