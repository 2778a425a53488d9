"""One generation in flight: its prompt, its phases and all its decoding state, advanced one
forward pass at a time.

The scheduler evaluates every live sequence's pending tokens in one batch, then hands each
sequence its output; the sequence's current phase decides what to evaluate next:

* ``ThinkPhase``: free text (the model's plan in words) until a closing marker, an end token or
  its budget; then the sampled tokens are replaced by the cleaned text and the answer's opening.
* ``EmojiPhase``: constrained decoding, valid by construction. Each step draws one candidate from
  a cheap distribution over the pre-filtered tokens, asks the matcher and the grammar judge about
  that single token, and takes it only if both agree and the answer can still be finished within
  the tokens left (so a small budget closes the answer instead of cutting it). A refused token is
  banned for the step and another is drawn; after a few refusals every candidate the grammar
  refuses is banned at once (llama.cpp's ``common/sampling.cpp`` does the same).

Everything a sequence owns (matcher state, judge state, sampler RNG, budget, stats) lives in its
phase objects, so any number of sequences can share one batch. A sequence knows nothing of
llama.cpp: it sees logits as arrays (``Output``) and gives back token ids.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..constraint.judge import Judge, ban_unfinishable, move as judge_move
from ..constraint.matcher import Matcher
from ..constraint.prefilter import Candidates
from ..errors import DecodingError
from ..stats import Event, Stats
from .sampling import SamplingParams, log_probability, make_sampler

REJECTIONS_BEFORE_MASK = 4


class Output(Protocol):
    """One sequence's share of a forward pass."""

    def candidates(self) -> np.ndarray: ...  # logits at the engine's candidate positions

    def full(self) -> np.ndarray: ...  # logits over the whole vocabulary (free-text phases)


@dataclass
class Step:
    """What a phase decided after one forward pass."""

    feed: list[int] = field(default_factory=list)  # tokens to evaluate next
    rewind: int | None = None  # first drop this sequence's tokens from this position on
    finished: bool = False  # this phase is over (the next one, if any, starts after ``feed``)


class Phase(Protocol):
    full_logits: bool  # does a step need logits over the whole vocabulary?

    def step(self, out: Output) -> Step: ...


class Script(Protocol):
    """What a sequence does, phase after phase (``Phases`` for a fixed list; ``gloss.Gloss``)."""

    def first(self) -> Phase: ...

    def after(self, phase: Phase, step: Step) -> tuple[Phase | None, list[int]]: ...  # next, feed

    @property
    def judges(self) -> list[Judge]: ...  # its grammar judges, whose questions the stats count

    def close(self) -> None: ...


class Phases:
    """A fixed list of phases: optional thinking, then the constrained answer."""

    def __init__(self, phases: list[Phase]) -> None:
        self.phases = phases

    def first(self) -> Phase:
        return self.phases[0]

    def after(self, phase: Phase, step: Step) -> tuple[Phase | None, list[int]]:
        k = self.phases.index(phase) + 1
        return (self.phases[k] if k < len(self.phases) else None), []

    @property
    def think(self) -> "ThinkPhase | None":
        return next((p for p in self.phases if isinstance(p, ThinkPhase)), None)

    @property
    def answer(self) -> "EmojiPhase":
        return self.phases[-1]  # type: ignore[return-value]

    @property
    def judges(self) -> list[Judge]:
        return [phase.judge for phase in self.phases if isinstance(phase, EmojiPhase)]

    def close(self) -> None:
        for phase in self.phases:
            if isinstance(phase, EmojiPhase):
                phase.judge.close()


class ThinkPhase:
    """Free text until ``close``, an end-of-generation token, or ``budget`` tokens."""

    full_logits = True

    def __init__(self, *, tokens: np.ndarray, pieces: list[bytes], eog: frozenset[int],
                 params: SamplingParams, seed: int | None, close: str, budget: int, start: int,
                 tail: Callable[[str], list[int]], stats: Stats, emit: Callable[[Event], None]) -> None:
        self.tokens, self.pieces, self.eog = tokens, pieces, eog
        self.sampler = make_sampler(tokens, params, seed)
        self.zeros_f = np.zeros(len(tokens), dtype=np.float64)
        self.zeros_b = np.zeros(len(tokens), dtype=np.uint8)
        self.close, self.budget, self.start, self.tail = close, budget, start, tail
        self.stats, self.emit = stats, emit
        self.raw = b""
        self.shown = 0
        self.text = ""
        self.started = time.perf_counter()

    def step(self, out: Output) -> Step:
        i = self.sampler.sample(out.full(), self.zeros_f, self.zeros_b)
        tok = int(self.tokens[i]) if i >= 0 else -1
        if tok < 0 or tok in self.eog:
            return self._finish()
        self.raw += self.pieces[tok]
        self.stats.think_tokens += 1
        text = self.raw.decode("utf-8", errors="ignore")
        cut = text.find(self.close) if self.close else -1
        if cut >= 0:
            text = text[:cut]
        if len(text) > self.shown:
            self.emit(Event("think", text[self.shown:]))
            self.shown = len(text)
        self.text = text
        if cut >= 0 or self.stats.think_tokens >= self.budget:
            return self._finish()
        return Step([tok])

    def _finish(self) -> Step:
        self.stats.think_seconds = time.perf_counter() - self.started
        return Step(self.tail(self.text), rewind=self.start, finished=True)


class EmojiPhase:
    """The constrained answer: sample, judge, accept, advance, until the text is complete."""

    full_logits = False

    def __init__(self, *, cands: Candidates, positions: np.ndarray, matcher: Matcher, judge: Judge,
                 params: SamplingParams, seed: int | None, max_tokens: int, bias: np.ndarray,
                 filler: frozenset[str], stats: Stats, emit: Callable[[Event], None],
                 started: float, used: Counter | None = None, likelihood: bool = False,
                 avoid: np.ndarray | None = None) -> None:
        self.cands, self.matcher, self.judge = cands, matcher, judge
        self.params, self.max_tokens, self.bias, self.filler = params, max_tokens, bias, filler
        # Candidates not to start with unless nothing else can be drawn (gloss: the emoji of the
        # group before, alone); their bias comes back after the first token or when stuck.
        self.avoid = None
        if avoid is not None and len(avoid):
            self.avoid, self.avoid_bias = np.asarray(avoid), bias[avoid].copy()
            self.bias = bias.copy()
            self.bias[self.avoid] = -np.inf
        self.stats, self.emit, self.started = stats, emit, started
        self.sampler = make_sampler(positions, params, seed)
        stats.sampler = self.sampler.implementation
        self.state = matcher.initial
        self.committed = matcher.committed_emoji(self.state)  # the emoji the text is bound to write
        self.used: Counter[str] = Counter() if used is None else used  # shared by a gloss's groups
        self.end: int | None = None  # the end token chosen (a candidate index), if the model ended
        self.positions = positions
        self.likelihood = likelihood  # keep the model's log-probability of its choices (best of N)
        self.taken = 0  # tokens of the answer taken
        self.last_token = -1  # the last one (not yet evaluated when the phase ends)
        self.out = bytearray()
        self.steps = 0
        self.free = np.zeros(len(cands.tokens), dtype=np.uint8)  # all-zero between steps
        self.phase_start = time.perf_counter()
        self.text: str | None = None

    def step(self, out: Output) -> Step:
        perf = time.perf_counter
        left_after = self.max_tokens - self.steps - 1
        self.steps += 1
        logits = out.candidates()
        t_start = perf()
        i, mv = self._choose(logits, left_after)
        stats = self.stats
        if self.likelihood:
            stats.log_likelihood += log_probability(logits[self.positions], i)
        if i >= self.cands.n_content:
            stats.stopped_by = "model"
            self.end = i
            stats.constraint_us.append((perf() - t_start) * 1e6)
            return self._finish()
        tok = int(self.cands.tokens[i])
        self.judge.accept(tok)
        self.taken += 1
        self.last_token = tok
        self.state, self.committed = mv.state, mv.committed
        stats.constraint_us.append((perf() - t_start) * 1e6)
        self.out += self.cands.pieces[i]
        if self.avoid is not None and self.out.strip():  # the group has begun: no more avoiding
            self._allow_avoided()
        for lexeme in mv.done:
            self._lexeme(lexeme)
        stats.eval_tokens += 1
        if left_after == 0 or mv.complete:
            stats.stopped_by = "budget" if left_after == 0 else "grammar"
            return self._finish()
        return Step([tok])

    def _lexeme(self, lexeme: str) -> None:
        if lexeme not in self.matcher.literals:
            self.used[lexeme] += 1
        if not self.stats.first_emoji_seconds:
            self.stats.first_emoji_seconds = time.perf_counter() - self.started
        self.emit(Event("lexeme", lexeme))

    def _choose(self, logits: np.ndarray, left_after: int):
        """Draw until a candidate passes every judge. Draws never depend on what the verdict cache
        already knows (known-bad tokens are drawn and refused like any other), so a seed gives the
        same text cold or warm."""
        cands, matcher, judge, stats = self.cands, self.matcher, self.judge, self.stats
        moves = judge.cache.moves
        verdicts = judge.verdicts(self.state, matcher)
        banned, touched = self.free, []
        refused = 0  # grammar refusals this step
        masked = False  # has every known-bad candidate been banned in one go this step?
        local = 0  # budget and repetition refusals this step
        fallback = None  # a valid token refused only as a repeat: better than no token
        n_content = cands.n_content
        try:
            while True:
                i = self.sampler.sample(logits, self.bias, banned)
                if i < 0:
                    if not masked:
                        banned, masked = self._with_mask(verdicts, banned), True
                        continue
                    if fallback is not None:
                        return fallback
                    if self.avoid is not None:  # nothing else: the avoided candidates after all
                        self._allow_avoided()
                        continue
                    raise DecodingError(self._stuck())
                banned[i] = 1
                if banned is self.free:
                    touched.append(i)
                stats.rejections += 1  # undone below when the token is taken
                if i >= n_content:  # an end token: the text may end here (the matcher said so)
                    if not verdicts.bad[i] and judge.may_end(verdicts):
                        return i, None
                    continue
                mv = None if verdicts.bad[i] else judge_move(moves, matcher, cands.distance,
                                                              self.state, i, cands.pieces[i])
                if mv is None or (not verdicts.good[i] and not judge.allows(verdicts, i)):
                    if mv is not None:
                        stats.disagreements += 1  # matcher said yes, the judge no: must stay 0
                    verdicts.bad[i] = 1  # never ask about this token in this state again
                    refused += 1
                    if refused == REJECTIONS_BEFORE_MASK and not masked:
                        banned, masked = self._with_mask(verdicts, banned), True
                    continue
                if mv.cost > left_after:
                    local += 1
                    if local == 16:  # tight budget: ban in one pass all that cannot finish
                        if banned is self.free:
                            banned = banned.copy()
                        ban_unfinishable(matcher, cands, moves, self.state, left_after, banned)
                    continue
                if mv.committed is not None and mv.committed != self.committed:
                    weight = self.params.repeat_penalty * self.used[mv.committed] + (
                        self.params.filler_penalty if mv.committed in self.filler else 0.0)
                    if weight > 0 and self.sampler.uniform() >= math.exp(-weight):
                        stats.penalty_rejections += 1
                        if fallback is None:
                            fallback = (i, mv)
                        continue
                return i, mv
        finally:
            stats.rejections -= 1
            for j in touched:
                self.free[j] = 0

    def _allow_avoided(self) -> None:
        if self.avoid is not None:
            self.bias[self.avoid] = self.avoid_bias
            self.avoid = None

    def _with_mask(self, verdicts, banned: np.ndarray) -> np.ndarray:
        """Ban every candidate the grammar refuses (asking the judge about all of them if the cache
        does not know them all yet): the step after too many single refusals."""
        if not verdicts.complete:
            self.judge.complete(verdicts)
        return banned | verdicts.bad

    def _finish(self) -> Step:
        self.stats.eval_seconds += time.perf_counter() - self.phase_start
        for lexeme in self.matcher.finish(self.state):
            self._lexeme(lexeme)
        if not self.matcher.accepting(self.state):
            raise DecodingError(self._stuck())
        self.text = self.out.decode("utf-8")
        return Step(finished=True)

    def _stuck(self) -> str:
        text = bytes(self.out).decode("utf-8", errors="replace")
        return (f"no token can continue the explanation after {text!r} "
                f"(at least {self.matcher.remaining(self.state)} more bytes needed)")


class Sequence:
    """A prompt and its script; the scheduler feeds ``feed`` at ``pos`` and calls ``advance``."""

    def __init__(self, *, shared: tuple[int, ...], own: list[int], script: Script,
                 stats: Stats, persist: bool = True) -> None:
        self.shared = shared  # the prefix every call shares (its saved state is loaded first)
        self.persist = persist  # its state may be saved to the prompt cache on disk
        self.feed = list(own)  # tokens to evaluate next
        self.pos = len(shared)  # position of feed[0]
        self.script = script
        self.phase: Phase = script.first()
        self.stats = stats
        self.rewind: int | None = None
        self.done = False
        self.slot: int | None = None  # the sequence id in the context (set by the scheduler)
        self.attached = False  # holds its shared prefix (set by the scheduler)
        self.batched = False  # may share decodes with other sequences (set by the scheduler)
        self.steps = 0
        self.batch_total = 0
        self.last_step = -1  # the scheduler's step that last decoded this sequence

    @property
    def full_logits(self) -> bool:
        return self.phase.full_logits

    def advance(self, out: Output, batch: int) -> None:
        """Take this sequence's share of a forward pass (after all of ``feed`` was evaluated and
        the scheduler moved ``pos`` past it); set the next ``feed`` (and ``rewind``) or ``done``."""
        self.steps += 1
        self.batch_total += batch
        step = self.phase.step(out)
        feed = list(step.feed)
        if step.rewind is not None:
            self.rewind, self.pos = step.rewind, step.rewind
        if step.finished:
            following, more = self.script.after(self.phase, step)
            feed += more
            if following is None:
                self.done = True
                self.stats.batch_mean = self.batch_total / self.steps
            else:
                self.phase = following
        self.feed = feed
        if not self.done and not self.feed:
            raise DecodingError("a phase ended without giving the next one anything to read")

    def close(self) -> None:
        """Free the judges' llama.cpp samplers, then let go of the script and its phases. Their
        arrays are large (a glossed answer's word biases and samplers: ~2 MB on Gemma's vocabulary),
        and a retired job stays in a reference cycle (the job, its callbacks, its sequences) until
        Python's cyclic collector runs: under a steady load that took long enough for the process
        to grow by 100+ MB (``bench/soak.py``)."""
        if self.script is not None:
            self.script.close()
        self.script = self.phase = None  # type: ignore[assignment]
