"""A unit of work for the scheduler: how its sequences start, how their results are finished, and
the future and event stream the caller holds (``scheduler.py`` runs it; ``engine.py`` makes it)."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Callable

from ..stats import Event
from .model_protocol import BackendContext
from .sequence import Sequence


class Job:
    """Work for the scheduler: ``start`` makes its sequences (on the scheduler's thread, once
    admitted), ``finish`` turns them, all done, into the result set on ``future``."""

    def __init__(self, start: Callable[[BackendContext], list[Sequence]],
                 finish: Callable[[list[Sequence]], object], *,
                 on_event: Callable[[Event], None] | None = None, batched: bool = False) -> None:
        self.start = start
        self.batched = batched  # its sequences may share decodes with other batched sequences
        self.finish = finish
        self.on_event = on_event
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.sequences: list[Sequence] = []
        self.cancelled = False
        self.submitted = time.perf_counter()
        self._wake: Callable[[], None] | None = None  # wakes the scheduler running it, once submitted

    def emit(self, event: Event) -> None:
        if self.on_event is not None and not self.cancelled:
            self.on_event(event)

    def cancel(self) -> None:
        """Stop this job: its sequences are dropped at the next step and their cells freed."""
        self.cancelled = True
        if self.future.cancel():
            # Settle it for ``concurrent.futures.wait``/``as_completed`` too: they count a
            # cancelled future as done only once it is "notified" (as an executor would do).
            self.future.set_running_or_notify_cancel()
        if self._wake is not None:
            self._wake()
