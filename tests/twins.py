"""Sequential same-seed twins, and what a model's scheduler holds, for the concurrency tests.

A twin is ``explain(topic, seed=s)`` run alone, on an idle scheduler: the text every concurrent
caller with that topic and seed must get too (``scheduler.py``: exact jobs are decoded one
sequence per forward pass, each in its own KV stream).
"""

from __future__ import annotations

import time

import llama_cpp.llama_cpp as C

# (topic, seed) pairs the concurrency tests draw from; the first two are issue #15's case.
POOL = [("photosynthesis", 1), ("black holes", 2), ("the water cycle", 3), ("volcanoes", 4),
        ("how vaccines work", 5), ("recursion", 6), ("a cup of tea", 7), ("the french revolution", 8),
        ("plate tectonics", 9), ("machine learning", 10)]


class Twins:
    """Lone same-seed texts on one Explainer, worked out once each (on an idle scheduler)."""

    def __init__(self, explainer) -> None:
        self.explainer = explainer
        self._memo: dict[str, str] = {}

    def __call__(self, topic: str, seed: int, **options) -> str:
        key = repr((topic, seed, sorted(options.items())))
        if key not in self._memo:
            wait_idle(self.explainer)
            self._memo[key] = str(self.explainer.explain(topic, seed=seed, **options))
        return self._memo[key]


def scheduler_state(explainer) -> dict:
    s = explainer.engine.scheduler
    with s._cond:
        return {"waiting": len(s._waiting), "active": len(s._active),
                "free": s.slots if s.ctx is None else len(s._free), "slots": s.slots}


def wait_idle(explainer, timeout: float = 60.0) -> None:
    """Wait until nothing waits or runs and every sequence slot is free again."""
    deadline = time.monotonic() + timeout
    while True:
        state = scheduler_state(explainer)
        if not state["waiting"] and not state["active"] and state["free"] == state["slots"]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the scheduler did not go idle: {state}")
        time.sleep(0.01)


def cells_in_use(explainer) -> list[int]:
    """Sequence ids of the scheduler's context that still hold KV cells (call when idle)."""
    ctx = explainer.engine.scheduler.ctx
    if ctx is None:
        return []
    return [seq for seq in range(ctx.n_seq) if C.llama_memory_seq_pos_max(ctx._memory, seq) >= 0]


def assert_all_freed(explainer) -> None:
    """Idle, every slot free, and no sequence's cells left in the KV cache."""
    wait_idle(explainer)
    assert cells_in_use(explainer) == []


def read_in_turns(streams) -> list[list]:
    """One item from each open stream in turn until all are exhausted (``zip`` that runs on)."""
    out: list[list] = [[] for _ in streams]
    open_ = list(range(len(streams)))
    while open_:
        for k in list(open_):
            try:
                out[k].append(next(streams[k]))
            except StopIteration:
                open_.remove(k)
    return out
