"""Constrained decoding on one model: a topic and a request in, emoji-only text out.

The engine turns a request into sequences (prompt, phases and per-sequence state:
``sequence.py``) and hands them to the model's scheduler (``scheduler.py``), which decodes every
open sequence of the model in one batch per step. What is worked out once per (model, grammar):
the pre-filtered candidates, the grammar compiled by llama.cpp, its remembered verdicts, is kept
in a bounded LRU of setups (``MAX_SETUPS``), so a server taking arbitrary palettes stays flat.

``candidates=N`` decodes N answers to one topic as N sequences of one batch and keeps the best
(``choose``); the sequences differ only in their random draws.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..backend import prompt_cache, setup_cache
from ..constraint.judge import Judge
from ..constraint.matcher import matcher_for
from ..constraint import prefilter
from ..constraint.prefilter import Candidates
from ..defaults import DEFAULT_LEXICON, DEFAULT_MAX_TOKENS
from ..errors import InputError
from ..knowledge import prompts
from ..language.grammar import Grammar, compile_group_grammar
from ..stats import Event, Result, Stats
from . import choose, gloss, gloss_words, recall, topic_parts
from .job import Job
from .sampling import SamplingParams
from .scheduler import Scheduler
from .grammar_setup import Setup
from .model_protocol import BackendContext, BackendModel
from .sequence import EmojiPhase, Phase, Phases, Script, Sequence, ThinkPhase


@dataclass(frozen=True)
class Request:
    """Everything one generation needs besides the topic."""

    grammar: Grammar
    params: SamplingParams = SamplingParams()
    seed: int | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    think: bool = False
    max_think_tokens: int = DEFAULT_MAX_TOKENS
    prompt_style: str | None = None
    examples: int = len(prompts.EXAMPLES)
    hint: float = 0.0  # logit bonus for emoji whose names share a word with the topic (retrieval.py)
    candidates: int = 1  # answers decoded side by side; the best is kept
    plan: bool = True  # name each part in words first, then its emoji (gloss.py)
    lexicon: float = DEFAULT_LEXICON  # logit bonus for the emoji the lexicon relates to a part's words
    bank: tuple[str, ...] | None = None  # the user's bank files, then the shipped one (() : the shipped
    #                                      bank alone; None: none; build_request defaults to ())


# The phase factory: (candidate k, its logits' positions, stats, emit, start time) -> its script
ScriptFactory = Callable[[int, np.ndarray, Stats, Callable[[Event], None], float], Script]


@dataclass(frozen=True)
class _Plan:
    """One kind of answer, ready to become a job (``Engine.job``): its set-up and prompt tokens,
    the phase factory that makes each candidate's script, and ``answer``, which reads a finished
    script's result."""

    setup: Setup
    shared: tuple[int, ...]
    own: list[int]
    script: ScriptFactory
    answer: Callable[[Script, Stats], Result]
    persist: bool = True  # the shared prefix may go to the prompt cache on disk (Prompt.persist_shared)


class Engine:
    """Constrained decoding on one model, shared by every caller of that model in the process."""

    MAX_SETUPS = 32

    def __init__(self, model: BackendModel, *, slots: int = 8) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._setups: collections.OrderedDict[tuple, Setup] = collections.OrderedDict()
        self._everything: np.ndarray | None = None
        self._words: tuple[np.ndarray, int, np.ndarray] | None = None
        self.scheduler = Scheduler(model, slots=slots, prompt_cache=prompt_cache.for_model(model))
        self.choose: Callable[[str, list[Result]], Result] = choose.best  # best of N (choose.py)
        model.on_close(self.close)

    # -- per grammar, once --
    def setup(self, grammar: Grammar, end_texts: tuple[str, ...] = ()) -> Setup:
        key = (grammar, end_texts)
        with self._lock:
            found = self._setups.get(key)
            if found is not None:
                self._setups.move_to_end(key)
                return found
        cands = self._prefilter(grammar, end_texts)
        made = Setup(cands, self.model.grammar(grammar.gbnf))
        with self._lock:
            found = self._setups.setdefault(key, made)
            self._setups.move_to_end(key)
            while len(self._setups) > self.MAX_SETUPS:
                self._setups.popitem(last=False)
        return found

    def _prefilter(self, grammar: Grammar, end_texts: tuple[str, ...]) -> Candidates:
        """The pre-filter's choice of tokens, from the set-up cache when an earlier run made it."""
        matcher = matcher_for(grammar)
        cache = self.model.setup_cache
        if cache is None:
            return prefilter.prefilter(self.model, matcher, end_texts, self.model.path.name)

        def build() -> dict[str, np.ndarray]:
            tokens, n_content, eog = prefilter.select(self.model, matcher, end_texts, self.model.path.name)
            return {"tokens": tokens, "n_content": np.array(n_content, dtype=np.int64),
                    "eog": np.array(-1 if eog is None else eog, dtype=np.int64)}
        name = "|".join(["prefilter", setup_cache.source_digest(prefilter),
                         hashlib.sha256(grammar.gbnf.encode()).hexdigest(), repr(end_texts)])
        got = cache.arrays(name, build)
        eog = int(got["eog"])
        return prefilter.assemble(self.model, matcher, got["tokens"].astype(np.int32), int(got["n_content"]),
                                  None if eog < 0 else eog)

    def candidates(self, grammar: Grammar, end_texts: tuple[str, ...] = ()) -> Candidates:
        return self.setup(grammar, end_texts).candidates

    def _free_text_tokens(self) -> np.ndarray:
        """Every token a plan in words may use: all but control tokens (end tokens included)."""
        if self._everything is None:
            mask = ~self.model.control_mask()
            mask[self.model.eog_tokens()] = True
            self._everything = np.flatnonzero(mask).astype(np.int32)
        return self._everything

    # -- prompts --
    def _tokens(self, prompt: prompts.Prompt) -> tuple[tuple[int, ...], list[int]]:
        return prompts.tokens(self.model, prompt)

    def check_room(self, n_tokens: int, request: Request) -> None:
        need = n_tokens + request.max_tokens + (request.max_think_tokens + 32 if request.think else 0) + 8
        room = min(self.scheduler.cells_for_one(), self.model.load_info.n_ctx_train or 1 << 30)
        if need > room:
            raise InputError(f"prompt ({n_tokens} tokens) plus the token budget needs {need} cells of "
                             f"the KV cache, more than one sequence may hold ({room}); shorten the "
                             f"topic or lower max_tokens")

    # -- generations --
    def job(self, topic: str, request: Request, *, on_event: Callable[[Event], None] | None = None,
            batched: bool = False) -> Job:
        """A job decoding ``request.candidates`` answers to ``topic`` (checked, not yet submitted).
        ``batched``: its sequences may share forward passes with other batched ones (faster, but
        the text may then differ from the one-at-a-time reference); best-of-N always is."""
        glossed = request.plan and not request.think
        plan = self._glossed(topic, request) if glossed else self._plain(topic, request)

        def start(ctx: BackendContext) -> list[Sequence]:
            positions = plan.setup.positions_for(ctx)
            emit = job.emit if request.candidates == 1 else _ignore
            out = []
            for k in range(request.candidates):
                stats = Stats(load_seconds=self.model.load_info.seconds)
                script = plan.script(k, positions, stats, emit, job.submitted)
                out.append(Sequence(shared=plan.shared, own=plan.own, script=script, stats=stats,
                                    persist=plan.persist))
            return out

        def finish(sequences: list[Sequence]) -> Result:
            results = []
            for seq in sequences:
                stats, script = seq.stats, seq.script
                stats.llama_checks = sum(j.checks for j in script.judges)
                stats.llama_masks = sum(j.masks for j in script.judges)
                stats.total_seconds = time.perf_counter() - job.submitted
                results.append(plan.answer(script, stats))
            return results[0] if len(results) == 1 else self.choose(topic, results)

        # ``start`` and ``finish`` run on the scheduler's thread, once ``job`` is bound
        job = Job(start, finish, on_event=on_event, batched=batched or request.candidates > 1)
        return job

    def _plain(self, topic: str, request: Request) -> _Plan:
        """An answer under the request's grammar, after optional thinking (``sequence.Phases``)."""
        grammar = request.grammar
        prompt = prompts.build(self.model, topic, grammar.shape, grammar.emoji_filter,
                               think=request.think, style=request.prompt_style, examples=request.examples)
        setup = self.setup(grammar, prompt.end_texts)
        cands = setup.candidates
        if request.max_tokens < cands.min_answer_tokens:
            need = cands.min_answer_tokens
            raise InputError(f"max_tokens={request.max_tokens} is too small: the shortest complete "
                             f"answer in this shape takes {need if need != float('inf') else 'more'} "
                             f"tokens of {self.model.path.name}")
        shared, own = self._tokens(prompt)
        self.check_room(len(shared) + len(own), request)
        bias = _static_bias(cands, grammar, topic, request)
        filler = _geometric(grammar.emoji)
        matcher = matcher_for(grammar)
        think_tokens = self._free_text_tokens() if prompt.think else None

        def script(k: int, positions: np.ndarray, stats: Stats, emit: Callable[[Event], None],
                   started: float) -> Phases:
            seed = _candidate_seed(request.seed, k)
            phases: list[Phase] = []
            if think_tokens is not None:
                phases.append(ThinkPhase(
                    tokens=think_tokens, pieces=self.model.pieces(), eog=frozenset(self.model.eog_tokens()),
                    params=request.params, seed=_sub_seed(seed, 1), close=prompt.think_close,
                    budget=request.max_think_tokens, start=len(shared) + len(own),
                    tail=functools.partial(self._tail, prompt), stats=stats, emit=emit))
            phases.append(EmojiPhase(
                cands=cands, positions=positions, matcher=matcher,
                judge=Judge(setup.pristine, setup.verdicts, cands), params=request.params,
                seed=_sub_seed(seed, 0), max_tokens=request.max_tokens, bias=bias, filler=filler,
                stats=stats, emit=emit, started=started))
            return Phases(phases)

        def answer(script: Script, stats: Stats) -> Result:
            assert isinstance(script, Phases)
            think = script.think
            return Result(script.answer.text or "", think.text.strip() if think else "", stats, prompt.text)

        return _Plan(setup, shared, own, script, answer)

    def _glossed(self, topic: str, request: Request) -> _Plan:
        """A glossed answer (gloss.py): words, then each part's group, joined as the model chose."""
        shape, flt = request.grammar.shape, request.grammar.emoji_filter
        group = compile_group_grammar(shape, flt)
        recalled = recall.recall(topic, request.bank, topic_parts.explains(topic), frozenset(group.emoji),
                                 shape.emoji_per_group)
        prompt = prompts.build_gloss(self.model, topic, style=request.prompt_style, context=recalled.context)
        setup = self.setup(group, gloss.END_TEXTS)
        cands = setup.candidates
        if request.max_tokens < math.ceil(cands.min_answer_tokens) * shape.lines[0] * shape.steps[0]:
            raise InputError(f"max_tokens={request.max_tokens} is too small for {shape.lines[0]} line(s) "
                             f"of {shape.steps[0]} group(s) in {self.model.path.name}'s tokens")
        shared, own = self._tokens(prompt)
        self.check_room(len(shared) + len(own) + topic_parts.max_parts(shape) * (gloss_words.WORD_TOKENS + 2), request)
        base_bias = _static_bias(cands, group, topic, request)
        filler = _geometric(group.emoji)
        word_ids, n_words, same = self._word_tokens()
        related = functools.partial(_related, allowed=frozenset(group.emoji))

        def script(k: int, positions: np.ndarray, stats: Stats, emit: Callable[[Event], None],
                   started: float) -> gloss.Gloss:
            return gloss.Gloss(
                shape=shape, grammar=group, setup=setup, positions=positions, base_bias=base_bias,
                word_ids=word_ids, n_words=n_words, same=same, pieces=self.model.pieces(),
                params=request.params,
                seed=_candidate_seed(request.seed, k), max_tokens=request.max_tokens, related=related,
                lexicon_bias=request.lexicon, filler=filler, stats=stats, emit=emit,
                started=started, min_parts=topic_parts.min_parts(topic),
                most_parts=topic_parts.most_parts(topic),
                chain_bias=topic_parts.chain_bias(topic),
                likelihood=request.candidates > 1, tokenize=self.model.tokenize,
                follow=recalled.follow, known=recalled.known)

        def answer(script: Script, stats: Stats) -> Result:
            assert isinstance(script, gloss.Gloss)
            return Result(str(script.tree()), "", stats, prompt.text, script.plan, recalled.sources)

        return _Plan(setup, shared, own, script, answer, prompt.persist_shared)

    def _word_tokens(self) -> tuple[np.ndarray, int, np.ndarray]:
        """The tokens a glossed answer's words may use, then those ending them (computed once)."""
        if self._words is None:
            from ..knowledge import words

            def build() -> dict[str, np.ndarray]:
                ids, colons, same = gloss_words.word_tokens(self.model.pieces(), self.model.control_mask())
                return {"ids": ids, "colons": colons, "same": same}
            cache = self.model.setup_cache
            name = f"words|{setup_cache.source_digest(gloss_words, words)}"
            got = cache.arrays(name, build) if cache is not None else build()
            ids, colons, same = (got[k].astype(np.int32) for k in ("ids", "colons", "same"))
            self._words = (ids, len(ids) - len(colons), same)
        return self._words

    def _tail(self, prompt: prompts.Prompt, reasoning: str) -> list[int]:
        """What follows the model's thinking: its text, cleaned, then the answer's opening."""
        return (self.model.tokenize(reasoning) +
                self.model.tokenize(prompt.think_close + prompt.answer_prefix, parse_special=True))

    def submit(self, topic: str, request: Request, *, on_event: Callable[[Event], None] | None = None,
               batched: bool = False) -> Job:
        if request.candidates > 1:
            self.scheduler.ensure_slots(request.candidates)
        return self.scheduler.submit(self.job(topic, request, on_event=on_event, batched=batched))

    def explain(self, topic: str, request: Request) -> Result:
        return self.submit(topic, request).future.result()

    def stream(self, topic: str, request: Request) -> Iterator[Event]:
        """Thinking pieces and lexemes as they are decoded, then a "done" event with the result."""
        import queue
        events: queue.SimpleQueue = queue.SimpleQueue()
        job = self.submit(topic, request, on_event=events.put)
        job.future.add_done_callback(lambda _: events.put(None))
        try:
            while True:
                event = events.get()
                if event is None:
                    break
                yield event
            yield Event("done", result=job.future.result())
        finally:
            job.cancel()

    def start(self) -> None:
        """Create the context now, in the decode thread (``Scheduler.start``)."""
        self.scheduler.start()

    def close(self) -> None:
        """Stop decoding (waiting callers get ``ModelError``) and free the compiled grammars."""
        self.scheduler.close()
        with self._lock:
            setups, self._setups = list(self._setups.values()), collections.OrderedDict()
        for setup in setups:
            setup.pristine.close()


@functools.lru_cache(maxsize=16)
def _geometric(emoji: tuple[str, ...]) -> frozenset[str]:
    from ..language.unicode import lookup
    return frozenset(e for e in emoji if (info := lookup(e)) is not None and info.is_geometric)


def _static_bias(cands: Candidates, grammar: Grammar, topic: str, request: Request) -> np.ndarray:
    """Per-candidate logit offsets for the whole answer: a bonus on the tokens that begin emoji
    whose names share a word with the topic (``hint``), and a malus on tokens that hold only part of
    a character (``partial_penalty``): in vocabularies with whole-emoji tokens, byte pieces are the
    model's fallback and spell emoji it knows little about."""
    bias = np.zeros(len(cands.tokens), dtype=np.float64)
    if request.hint and topic:
        from ..knowledge.retrieval import related
        starts = [e.encode() for e in related(topic, grammar.emoji)]
        for i, piece in enumerate(cands.pieces[: cands.n_content]):
            if any(s.startswith(piece) for s in starts):
                bias[i] += request.hint
    bias[cands.partial] -= request.params.partial_penalty
    return bias


def prepare(request: Request) -> None:
    """Make what an answer to ``request`` needs and no model does, ahead of time: the bank's index,
    the group grammar of a glossed answer, the lexicon's tables for its emoji, the parser of the
    answer's grammar.
    All of it is cached per process; the ``emogram`` command runs this beside llama.cpp's model
    load, which keeps one core busy and leaves the other free."""
    from ..language.tree import parse_tree
    if request.plan and not request.think:
        if request.bank is not None:  # the bank's index (0.3 s for the shipped bank)
            from ..knowledge.bank_search import search_for
            search_for(request.bank)
        group = compile_group_grammar(request.grammar.shape, request.grammar.emoji_filter)
        _geometric(group.emoji)
        if request.lexicon:
            _related("", frozenset(group.emoji))
    try:
        parse_tree("", grammar=request.grammar)  # builds the grammar's parser (the text cannot parse)
    except Exception:
        pass


def _ignore(event: Event) -> None:
    """Where a best-of-N candidate's events go: only the chosen answer is reported."""


def _sub_seed(seed: int | None, k: int) -> int | None:
    return None if seed is None else (seed * 1_000_003 + k) & ((1 << 64) - 1)


def _candidate_seed(seed: int | None, k: int) -> int | None:
    """Candidate 0 uses the seed itself (so ``candidates=1`` is plain ``explain``)."""
    return seed if seed is None or k == 0 else _sub_seed(seed, 7919 * k + 2)


@functools.lru_cache(maxsize=4096)
def _related(words: str, allowed: frozenset[str]) -> list[tuple[str, float]]:
    from ..knowledge.lexicon import related
    return related(words, allowed=allowed)
