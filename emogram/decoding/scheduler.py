"""Continuous batching on one model: every open generation is a sequence of one llama.cpp
context, and one thread decodes them all, one forward pass per step.

Callers on any thread (or an asyncio loop, through the job's future) submit ``Job``s and wait on
their future or read their events. Only the scheduler's thread touches the context, so nothing is
held across a caller's ``yield``: two streams read in turns, from threads or from asyncio tasks,
are two sequences of one batch and cannot write into each other's cache. (The forward pass itself
runs on the process's forward thread, ``backend/forward_thread.py``, shared by all models.)

Each step:

1. admit waiting jobs while sequence slots are free. Each sequence has its own stream of the KV
   cache (llama.cpp's non-unified cache), so its cells always lie in position order, whatever its
   neighbours do: cell order decides the order of llama.cpp's sums, and so the last bits of every
   logit. The prompt prefix it shares with other calls (instructions, examples) is evaluated once,
   kept as llama.cpp's saved state (in memory and in the prompt cache), and loaded into the
   sequence's stream;
2. pick this step's rows: one piece of prompt work alone, or the sampled token of one sequence,
   or the sampled tokens of up to ``MAX_WIDTH`` sequences of batched jobs;
3. decode, hand each sequence its output, and retire finished, failed or cancelled ones, freeing
   their stream for the next job.

A sequence decoded alone gets exactly the numbers it would get in an otherwise empty context, so a
seed gives the same text whether or not other calls, threads or streams share the model
(``tests/test_concurrency.py`` checks it). Rows of several sequences in one decode are faster per
token, but ggml's kernels for wider batches round differently and depend on the batch's make-up;
so only jobs that asked for throughput (``explain_many``, ``explain_iter``, ``candidates=N``: a
``batched`` job) share decodes, and their texts can differ from the one-at-a-time reference
(docs/guide.md gives the measured share).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

from ..backend.prompt_cache import PromptCache
from ..errors import EmogramError, ModelError
from .job import Job
from .model_protocol import BackendContext, BackendModel
from .sequence import Sequence


@dataclass
class _Prefix:
    """A prompt prefix shared by many calls: evaluated once, then kept as llama.cpp's saved state."""

    tokens: tuple[int, ...]
    fed: int = 0  # tokens evaluated so far (in the scheduler's scratch sequence)
    state: bytes | None = None  # llama.cpp's state of a sequence holding exactly ``tokens``
    seconds: float = 0.0  # spent evaluating it (reported by the first sequence that uses it)
    last_used: float = 0.0
    persist: bool = True  # saved to the prompt cache on disk (False: the bank entries one topic read)


class _Output:
    """One output row of the last decode, as a sequence sees it."""

    __slots__ = ("ctx", "k")

    def __init__(self, ctx: BackendContext, k: int) -> None:
        self.ctx, self.k = ctx, k

    def candidates(self):
        return self.ctx.candidate_logits(self.k) if self.ctx.head_ok else self.ctx.logits(self.k)

    def full(self):
        return self.ctx.logits(self.k)


class Scheduler:
    MAX_WIDTH = 16  # sampled tokens per decode for batched jobs (bench/batching.py)
    CELLS_PER_SEQ = 1024  # one sequence's stream: shared prefix, own prompt, thinking, answer
    KEEP_PREFIXES = 16  # evaluated prefixes kept in memory (a few MB each): the examples, and the
    #                     bank entries recent topics read (a topic asked again reuses them)

    def __init__(self, model: BackendModel, *, slots: int = 8, prompt_cache: PromptCache | None = None) -> None:
        self.model = model
        self.slots = slots
        self.prompt_cache = prompt_cache
        self._cond = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._active: list[Job] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self._want_slots = slots
        self.ctx: BackendContext | None = None  # made on the decode thread (``_resize_if_idle``)
        self._prefixes: collections.OrderedDict[tuple[int, ...], _Prefix] = collections.OrderedDict()
        self._free: list[int] = []
        self._tokens_last = False
        self.steps = 0

    # -- capacity --
    def cells_for_one(self) -> int:
        """KV cells one sequence may hold at most (a bigger request can never run)."""
        return self.CELLS_PER_SEQ

    @property
    def _scratch(self) -> int:
        return self.slots  # the sequence id that evaluates shared prefixes

    def ensure_slots(self, n: int) -> None:
        """Make room for ``n`` sequences at once (the context is rebuilt when next idle)."""
        with self._cond:
            self._want_slots = max(self._want_slots, n)
            self._cond.notify_all()

    # -- callers' side --
    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._closing:
                raise ModelError(f"model {self.model.path} is closed")
            job._wake = self.wake
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emogram-decode", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return job

    def start(self) -> None:
        """Start the decode thread now: it creates its context at once, while the caller prepares
        its first job (a one-shot command overlaps the two; see ``api.Explainer.warm_up``)."""
        with self._cond:
            if self._closing or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, args=(True,), name="emogram-decode",
                                            daemon=True)
            self._thread.start()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Fail what is waiting or running with ``ModelError``, stop the thread, free the context."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        elif thread is None:
            self._shutdown()

    # -- the decode thread --
    @property
    def _context(self) -> BackendContext:  # on the decode thread, once ``_resize_if_idle`` made it
        assert self.ctx is not None
        return self.ctx

    def _run(self, early: bool = False) -> None:
        try:
            if early:
                self._resize_if_idle()
            while self._step():
                pass
        except BaseException as exc:  # never die silently: every caller gets the error
            self._fail_all(exc if isinstance(exc, EmogramError) else
                           ModelError(f"the decode thread stopped: {type(exc).__name__}: {exc}"))
            if self.ctx is not None:  # a later job starts afresh, on a new context
                self.ctx.close()
                self.ctx = None
            with self._cond:
                self._thread = None
                if not self._closing:
                    return
        self._shutdown()

    def _shutdown(self) -> None:
        self._fail_all(ModelError(f"model {self.model.path} is closed"))
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None

    def _fail_all(self, exc: BaseException) -> None:
        with self._cond:
            jobs = list(self._waiting) + self._active
            self._waiting.clear()
            self._active = []
        for job in jobs:
            self._retire_job(job, exc)

    def _step(self) -> bool:
        with self._cond:
            while not self._closing and not self._waiting and not self._active:
                self._cond.wait()
            if self._closing:
                return False
        self._resize_if_idle()
        self._drop_cancelled()
        self._admit()
        rows = self._rows()
        if not rows:
            with self._cond:  # everything waits on something (a prefix slot): let callers act
                self._cond.wait(0.01)
            return True
        self._decode(rows)
        return True

    def _resize_if_idle(self) -> None:
        if self.ctx is not None and (self._want_slots <= self.slots or self._active):
            return
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None
        self.slots = max(self.slots, self._want_slots)
        n_seq = self.slots + 1
        self.ctx = self.model.new_context(n_seq=n_seq, n_ctx=n_seq * self.CELLS_PER_SEQ)
        self._free = list(range(self.slots))
        self._tokens_last = False
        for prefix in self._prefixes.values():
            if prefix.state is None:
                prefix.fed = 0  # it was being evaluated in the old context

    def _admit(self) -> None:
        while True:
            with self._cond:
                if not self._waiting:
                    return
                job = self._waiting[0]
                if job.cancelled:
                    self._waiting.popleft()
                    continue
            try:
                sequences = job.sequences or job.start(self._context)
            except BaseException as exc:
                with self._cond:
                    self._waiting.popleft()
                self._retire_job(job, exc)
                continue
            job.sequences = sequences
            if len(sequences) > len(self._free):
                return  # wait for room (first come, first served)
            with self._cond:
                self._waiting.popleft()
                self._active.append(job)
            now = time.perf_counter()
            for seq in sequences:
                seq.slot = self._free.pop()
                seq.stats.queue_seconds = now - job.submitted
                seq.attached = not seq.shared
                seq.batched = job.batched

    def _prefix(self, tokens: tuple[int, ...], persist: bool = True) -> _Prefix:
        """The shared prefix ``tokens``: with its saved state (from memory or the prompt cache), or
        queued to be evaluated."""
        prefix = self._prefixes.get(tokens)
        if prefix is None:
            prefix = self._prefixes[tokens] = _Prefix(tokens, persist=persist)
            if self.prompt_cache is not None and persist:
                prefix.state = self.prompt_cache.load(tokens)
                prefix.fed = len(tokens) if prefix.state else 0
        self._prefixes.move_to_end(tokens)
        prefix.last_used = time.perf_counter()
        while len(self._prefixes) > self.KEEP_PREFIXES:
            oldest = next(iter(self._prefixes.values()))
            if oldest.state is None and oldest.fed:
                break  # being evaluated: keep it
            self._prefixes.popitem(last=False)
        return prefix

    def _attach(self, seq: Sequence) -> None:
        """Load the sequence's shared prefix into its stream once the prefix's state exists."""
        prefix = self._prefix(seq.shared, seq.persist)
        if prefix.state is None or seq.slot is None:  # (an admitted sequence has its slot)
            return
        if not self._context.state_set(seq.slot, prefix.state):  # a state llama.cpp refuses: evaluate
            prefix.state, prefix.fed = None, 0
            return
        seq.attached = True
        if prefix.seconds:  # evaluated rather than restored: this caller paid for it
            seq.stats.prompt_tokens += len(prefix.tokens)
            seq.stats.prompt_seconds += prefix.seconds
            prefix.seconds = 0.0

    def _rows(self) -> list[tuple[int, int, int | None, bool, Sequence | _Prefix]]:
        """This step's rows: (token, position, sequence id, wants output, owner).

        A decode is either one piece of prompt work alone (a shared prefix, a sequence's own
        prompt, the text after its thinking), or sampled tokens: one sequence's, or those of up to
        ``MAX_WIDTH`` sequences of batched jobs. Prompt work and sampled tokens alternate, so new
        arrivals neither starve nor stall the sequences already answering.
        """
        live = [s for job in self._active for s in job.sequences if not s.done]
        for seq in live:
            if not seq.attached:
                self._attach(seq)
        ready = [s for s in live if s.attached and s.feed]
        tokens = [s for s in ready if len(s.feed) == 1 and s.steps > 0]
        prompts = [s for s in ready if s not in tokens]
        waiting = {s.shared for s in live if not s.attached}
        loading = [p for p in self._prefixes.values() if p.state is None and p.tokens in waiting]
        if (prompts or loading) and (not tokens or self._tokens_last):
            self._tokens_last = False
            if loading:
                prefix = loading[0]
                shared = prefix.tokens[prefix.fed:prefix.fed + self._context.n_batch]
                return [(t, prefix.fed + i, self._scratch, False, prefix) for i, t in enumerate(shared)]
            seq = prompts[0]
            self._rewind(seq)
            chunk = seq.feed[:self._context.n_batch]
            last = len(chunk) == len(seq.feed)
            return [(t, seq.pos + i, seq.slot, last and i == len(chunk) - 1, seq)
                    for i, t in enumerate(chunk)]
        if not tokens:
            return []
        self._tokens_last = True
        tokens.sort(key=lambda s: s.last_step)  # those waiting longest first
        if not tokens[0].batched:
            chosen = tokens[:1]
        else:
            chosen = [s for s in tokens if s.batched][:self.MAX_WIDTH]
        for seq in chosen:
            self._rewind(seq)
            seq.last_step = self.steps
        return [(seq.feed[0], seq.pos, seq.slot, True, seq) for seq in chosen]

    def _rewind(self, seq: Sequence) -> None:
        if seq.rewind is not None and seq.slot is not None:
            self._context.seq_rm(seq.slot, seq.rewind, -1)
            seq.rewind = None

    def _decode(self, rows) -> None:
        ctx = self._context
        outputs = [r for r in rows if r[3]]
        full = any(r[4].full_logits for r in outputs)
        t0 = time.perf_counter()
        ctx.decode([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                   [r[3] for r in rows], full_logits=full)
        seconds = time.perf_counter() - t0
        self.steps += 1
        counts = collections.Counter(id(r[4]) for r in rows)
        for owner in {id(r[4]): r[4] for r in rows}.values():
            n = counts[id(owner)]
            if isinstance(owner, _Prefix):
                owner.fed += n
                owner.seconds += seconds
                if owner.fed == len(owner.tokens):
                    owner.state = ctx.state_get(self._scratch)
                    ctx.seq_rm(self._scratch)
                    if self.prompt_cache is not None and owner.persist:
                        self.prompt_cache.store(owner.tokens, owner.state)
                continue
            if len(owner.feed) > 1 or owner.steps == 0:  # a prompt, not a sampled token
                owner.stats.prompt_tokens += n
                owner.stats.prompt_seconds += seconds
            owner.pos += n
            del owner.feed[:n]
        for k, row in enumerate(outputs):
            seq = row[4]
            job = self._job_of(seq)
            if job is None or job.cancelled:
                continue
            try:
                seq.advance(_Output(ctx, k), len(outputs))
            except BaseException as exc:
                self._retire_job(job, exc)
        self._retire_finished()

    def _job_of(self, seq: Sequence) -> Job | None:
        for job in self._active:
            if seq in job.sequences:
                return job
        return None

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._active if j.cancelled]:
            self._retire_job(job, None)

    def _retire_finished(self) -> None:
        for job in [j for j in self._active if all(s.done for s in j.sequences)]:
            try:
                result = job.finish(job.sequences)
            except BaseException as exc:
                self._retire_job(job, exc)
                continue
            self._retire_job(job, None, result)

    def _retire_job(self, job: Job, exc: BaseException | None, result: object = None) -> None:
        """Free a job's cells and slots and settle its future (with ``exc`` or ``result``). A job
        leaves ``_active`` only once its slots are free: a job that is not active holds nothing
        (a cancelled job's future is settled earlier, by ``Job.cancel``)."""
        for seq in job.sequences:
            if seq.slot is not None:
                if self.ctx is not None:
                    self.ctx.seq_rm(seq.slot)
                with self._cond:
                    self._free.append(seq.slot)
                seq.slot = None
            seq.close()
        with self._cond:
            if job in self._active:
                self._active.remove(job)
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        elif job.cancelled:
            job.future.cancel()
        else:
            job.future.set_result(result)
