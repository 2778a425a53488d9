"""Constrained decoding: a prompt in, emoji-only text out, valid by construction.

Per step, after the forward pass:

1. **Pre-filter.** Only tokens whose bytes can occur in emoji-only text are candidates (computed
   once per model and grammar: a few hundred to 1,500 of a vocabulary of 49k-262k), plus the tokens
   that end an answer. The cheap distribution is built over those only (``sampling.py``, in C).
2. **Rejection sampling** (as llama.cpp's ``common/sampling.cpp`` does): draw one candidate, then ask
   the judges about that single token: the matcher (is it in the language? can the answer still be
   finished within the tokens left?) and llama.cpp's grammar sampler (the GBNF). Both must say yes.
   A refused token is banned for this step and we draw again; after a few refusals every candidate
   the grammar refuses is banned at once and the draw is made among the rest.
3. **Accept** the token, advance the matcher, evaluate the token.

llama.cpp's verdicts depend only on the grammar state, which the matcher state identifies, so they
are remembered per state: each question is put to llama.cpp once per process, and llama.cpp's
sampler is only brought up to date (by replaying the tokens it approved) when a new question comes.
The matcher's moves (next state, finished lexemes, tokens still needed) are remembered the same
way, per (state, candidate): right after a forward pass every cache is cold and working a move out
again costs more than looking it up. Draws never depend on what is remembered, so a seed gives the
same text cold or warm.

The budget is kept with ``budget.TokenDistance``: a token is only taken if the tokens still needed
after it fit in the tokens left, so a small budget closes the answer (its emoji, group and line)
instead of cutting it. No token is accepted by llama.cpp before it approved it, so it never throws.
"""

from __future__ import annotations

import functools
import math
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple, Protocol

import numpy as np

from . import prompts
from .errors import DecodingError, InputError
from .grammar import Grammar
from .budget import TokenDistance
from .llama import GrammarSampler, Model
from .matcher import Matcher, State, _utf8_len, matcher_for
from .sampling import SamplingParams, make_sampler

REJECTIONS_BEFORE_MASK = 4


@dataclass
class Stats:
    """Timings and counters of one generation (ollama's ``--verbose`` figures and more)."""

    load_seconds: float = 0.0
    prompt_tokens: int = 0
    prompt_seconds: float = 0.0
    think_tokens: int = 0
    think_seconds: float = 0.0
    eval_tokens: int = 0
    eval_seconds: float = 0.0
    first_emoji_seconds: float = 0.0
    total_seconds: float = 0.0
    constraint_us: list[float] = field(default_factory=list, repr=False)
    rejections: int = 0
    penalty_rejections: int = 0
    disagreements: int = 0  # matcher said yes, llama.cpp said no (must stay 0; tests check)
    llama_checks: int = 0  # single-token questions put to llama.cpp (the rest came from the cache)
    llama_masks: int = 0  # whole-candidate-list questions put to llama.cpp
    stopped_by: str = ""  # "model" (chose to end), "grammar" (nothing else allowed), "budget"
    sampler: str = ""

    @property
    def eval_rate(self) -> float:
        return self.eval_tokens / self.eval_seconds if self.eval_seconds else 0.0

    @property
    def prompt_rate(self) -> float:
        return self.prompt_tokens / self.prompt_seconds if self.prompt_seconds else 0.0

    @property
    def constraint_median_us(self) -> float:
        return statistics.median(self.constraint_us) if self.constraint_us else 0.0

    @property
    def constraint_p99_us(self) -> float:
        if not self.constraint_us:
            return 0.0
        ordered = sorted(self.constraint_us)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Request:
    """Everything one generation needs besides the topic."""

    grammar: Grammar
    params: SamplingParams = SamplingParams()
    seed: int | None = None
    max_tokens: int = 96
    think: bool = False
    max_think_tokens: int = 96
    prompt_style: str | None = None
    examples: int = len(prompts.EXAMPLES)
    hint: float = 0.0  # logit bonus for emoji whose names share a word with the topic (retrieval.py)


class Forward(Protocol):
    """Where logits come from: the model (one forward pass per pushed token) or a test's stand-in."""

    def logits(self) -> np.ndarray: ...

    def push(self, token: int) -> None: ...


@dataclass(frozen=True)
class Event:
    """What ``Engine.stream`` yields: a piece of thinking, a finished lexeme, or the end."""

    kind: str  # "think" | "lexeme" | "done"
    text: str = ""
    result: "Result | None" = None
    explanation: Any = None  # set by the API layer on "done"


@dataclass(frozen=True)
class Result:
    text: str
    reasoning: str
    stats: Stats
    prompt: str


# --- pre-filter -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidates:
    """The tokens worth considering for one (model, grammar), computed once."""

    tokens: np.ndarray  # int32, content tokens then end tokens
    pieces: tuple[bytes, ...]
    n_content: int
    eog: int  # one end-of-generation token, to ask llama.cpp "may the text end here?"
    distance: TokenDistance  # tokens still needed to finish, from any matcher state
    min_answer_tokens: float  # tokens of the shortest complete answer (smaller budgets are refused)
    partial: np.ndarray  # bool: content tokens holding only part of a character


def _alphabet(matcher: Matcher) -> set[int]:
    return {cp for kids in matcher.children for cp in kids}


def prefilter(model: Model, matcher: Matcher, end_texts: tuple[str, ...]) -> Candidates:
    """Tokens whose bytes could appear inside emoji-only text, and the tokens that end an answer."""
    alphabet = _alphabet(matcher)
    encodings = [chr(cp).encode() for cp in alphabet]
    prefixes = {e[:k] for e in encodings for k in range(1, len(e))}
    suffixes = {e[k:] for e in encodings for k in range(1, len(e))}
    infixes = {e[a:b] for e in encodings for a in range(1, len(e)) for b in range(a + 1, len(e) + 1)}

    def fits(piece: bytes) -> bool:
        if not piece or piece[0] == 0:
            return False
        i = 0
        while i < len(piece) and i < 3 and 0x80 <= piece[i] <= 0xBF:
            i += 1
        if i == len(piece):
            return piece in infixes
        if i and piece[:i] not in suffixes:
            return False
        body = piece[i:]
        k = len(body) - 1
        while k > 0 and 0x80 <= body[k] <= 0xBF:
            k -= 1
        need = _utf8_len(body[k])
        if need == 0:
            return False
        if k + need > len(body):
            if body[k:] not in prefixes:
                return False
            body = body[:k]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return all(ord(c) in alphabet for c in text)

    pieces = model.pieces()
    content, ends = [], []
    end_bytes = tuple(t.encode() for t in end_texts)
    eog = set(model.eog_tokens())
    used_bytes = bytes(sorted({b for e in encodings for b in e} | set(b" \t\r\n\x0b\x0c")))
    for tok, piece in enumerate(pieces):
        if tok in eog:
            ends.append(tok)
        elif piece.translate(None, used_bytes) or not piece:  # a byte no emoji text has: most tokens
            continue
        elif model.is_control(tok):
            continue
        elif end_bytes and any(piece.startswith(e) and not piece[len(e):].strip() for e in end_bytes):
            ends.append(tok)
        elif fits(piece):
            content.append(tok)
    if not content:
        raise DecodingError(f"no token of {model.path.name} can write an emoji")
    judge_eog = next((t for t in ends if t in eog), model.eos)
    tokens = np.array(content + ends, dtype=np.int32)
    distance = TokenDistance(matcher, [pieces[t] for t in content])
    partial = np.array([not _whole_characters(pieces[t]) for t in content] + [False] * len(ends))
    return Candidates(tokens, tuple(pieces[t] for t in tokens), len(content), judge_eog, distance,
                      distance.cost(matcher.initial), partial)


def _whole_characters(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- the engine -----------------------------------------------------------------------------

class Engine:
    """Constrained decoding on one model. Thread-safe: generations take the model's lock."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._setup_lock = threading.Lock()
        self._setups: dict[tuple[Grammar, tuple[str, ...]], _Setup] = {}
        self._every_token: np.ndarray | None = None

    def _setup(self, grammar: Grammar, end_texts: tuple[str, ...]) -> "_Setup":
        """Per (grammar, end texts), made once: candidates, the compiled grammar, the verdicts."""
        key = (grammar, end_texts)
        with self._setup_lock:
            setup = self._setups.get(key)
            if setup is None:
                cands = prefilter(self.model, matcher_for(grammar), end_texts)
                setup = self._setups[key] = _Setup(cands, GrammarSampler(self.model, grammar.gbnf),
                                                   VerdictCache())
            return setup

    def candidates(self, grammar: Grammar, end_texts: tuple[str, ...] = ()) -> Candidates:
        return self._setup(grammar, end_texts).candidates

    def explain(self, topic: str, request: Request) -> Result:
        result = None
        for event in self.stream(topic, request):
            if event.kind == "done":
                result = event.result
        assert result is not None
        return result

    def stream(self, topic: str, request: Request) -> Iterator[Event]:
        """Generate, yielding thinking text, then each emoji/operator/space/newline once finished."""
        model = self.model
        grammar = request.grammar
        prompt = prompts.build(model, topic, grammar.shape, grammar.emoji_filter, think=request.think,
                               style=request.prompt_style, examples=request.examples)
        stats = Stats(load_seconds=model.load_info.seconds)
        started = time.perf_counter()
        with model.lock:
            shared, own = _split_prompt(model, prompt, topic)
            self._check_room(len(shared) + len(own), request)
            t0 = time.perf_counter()
            stats.prompt_tokens = model.prefill_split(shared, own)
            stats.prompt_seconds = time.perf_counter() - t0
            reasoning = ""
            if prompt.think:
                reasoning_parts: list[str] = []
                for piece in self._think(prompt, request, stats):
                    reasoning_parts.append(piece)
                    yield Event("think", piece)
                reasoning = "".join(reasoning_parts)
                tail = model.tokenize(reasoning + prompt.think_close + prompt.answer_prefix,
                                      add_special=False, parse_special=True)
                t0 = time.perf_counter()
                stats.prompt_tokens += model.prefill_split(shared, own + tail)
                stats.prompt_seconds += time.perf_counter() - t0
            text = yield from self.constrained(grammar, request, model, stats, prompt.end_texts, started,
                                               topic)
        stats.total_seconds = time.perf_counter() - started
        yield Event("done", result=Result(text, reasoning.strip(), stats, prompt.text))

    @staticmethod
    def _with_mask(judge: "_Judge", verdicts: "Verdicts", banned: np.ndarray) -> np.ndarray:
        """Ban every candidate the grammar refuses (asking llama.cpp about all of them if the cache
        does not know them all yet): the step after too many single refusals."""
        if not verdicts.complete:
            judge.complete(verdicts)
        return banned | verdicts.bad

    def _check_room(self, n_prompt: int, request: Request) -> None:
        need = n_prompt + request.max_tokens + (request.max_think_tokens if request.think else 0) + 8
        if need > self.model.n_ctx:
            raise InputError(f"prompt ({n_prompt} tokens) plus the token budget does not fit the "
                             f"context of {self.model.n_ctx} tokens; shorten the topic")

    def _think(self, prompt: prompts.Prompt, request: Request, stats: Stats) -> Iterator[str]:
        """Free text until the closing marker, an end token, or the thinking budget."""
        model = self.model
        if self._every_token is None:
            self._every_token = np.array([t for t in range(model.n_vocab)
                                          if not model.is_control(t) or model.is_eog(t)], dtype=np.int32)
        everything = self._every_token
        sampler = make_sampler(everything, request.params, _sub_seed(request.seed, 1))
        zeros_f = np.zeros(len(everything), dtype=np.float64)
        zeros_b = np.zeros(len(everything), dtype=np.uint8)
        pieces = model.pieces()
        raw = b""
        shown = 0
        t0 = time.perf_counter()
        for _ in range(request.max_think_tokens):
            i = sampler.sample(model.logits(), zeros_f, zeros_b)
            if i < 0:
                break
            tok = int(everything[i])
            if model.is_eog(tok):
                break
            raw += pieces[tok]
            stats.think_tokens += 1
            text = raw.decode("utf-8", errors="ignore")
            cut = text.find(prompt.think_close) if prompt.think_close else -1
            if cut >= 0:
                text = text[:cut]
            if len(text) > shown:
                yield text[shown:]
                shown = len(text)
            if cut >= 0:
                break
            model.push(tok)
        stats.think_seconds = time.perf_counter() - t0

    def constrained(self, grammar: Grammar, request: Request, forward: "Forward",
                    stats: Stats | None = None, end_texts: tuple[str, ...] = (),
                    started: float | None = None, topic: str = "") -> Iterator[Event]:
        """The emoji phase alone: sample, judge, accept, advance, until the text is complete.

        ``forward`` gives the logits and takes each chosen token: normally the model (a forward
        pass per token); tests pass logits drawn by hypothesis to exercise this loop thousands of
        times without a forward pass. Returns (as the generator's value) the text.
        """
        setup = self._setup(grammar, end_texts)
        cands = setup.candidates
        if request.max_tokens < cands.min_answer_tokens:
            need = cands.min_answer_tokens
            raise InputError(f"max_tokens={request.max_tokens} is too small: the shortest complete "
                             f"answer in this shape takes {need if need != float('inf') else 'more'} "
                             f"tokens of {self.model.path.name}")
        matcher = matcher_for(grammar)
        stats = stats if stats is not None else Stats()
        started = time.perf_counter() if started is None else started
        judge = _Judge(setup.pristine, setup.verdicts, cands)
        try:
            bias = _static_bias(cands, grammar, topic, request)
            return (yield from self._emoji_loop(cands, matcher, judge, request, stats, started, forward,
                                                bias))
        finally:
            stats.llama_checks = judge.checks
            stats.llama_masks = judge.masks
            judge.close()

    def _emoji_loop(self, cands: Candidates, matcher: Matcher, judge: "_Judge", request: Request,
                    stats: Stats, started: float, forward: "Forward", bias: np.ndarray) -> Iterator[Event]:
        params = request.params
        sampler = make_sampler(cands.tokens, params, _sub_seed(request.seed, 0))
        stats.sampler = sampler.implementation
        pieces, tokens, n_content = cands.pieces, cands.tokens, cands.n_content
        distance = cands.distance
        state = matcher.initial
        committed = matcher.committed_emoji(state)  # the emoji the text is bound to write now
        moves = judge.cache.moves
        used: Counter[str] = Counter()
        filler = _geometric(request.grammar.emoji)
        literals = matcher.literals
        out = bytearray()
        perf = time.perf_counter
        loop_start = perf()
        free = np.zeros(len(cands.tokens), dtype=np.uint8)  # all-zero between steps
        for step in range(request.max_tokens):
            left_after = request.max_tokens - step - 1
            logits = forward.logits()  # (waits for llama.cpp's output: model time, not ours)
            t_start = perf()
            verdicts = judge.verdicts(state, matcher)
            # Draws never depend on what the verdict cache already knows (known-bad tokens are
            # drawn and refused like any other), so a seed gives the same text cold or warm.
            banned, touched = free, []
            refused = 0  # grammar refusals this step
            masked = False  # has every known-bad candidate been banned in one go this step?
            local = 0  # budget and repetition refusals this step
            fallback = None  # a valid token refused only as a repeat: better than no token
            while True:
                i = sampler.sample(logits, bias, banned)
                if i < 0:
                    if not masked:
                        banned, masked = self._with_mask(judge, verdicts, banned), True
                        continue
                    if fallback is not None:
                        i, move = fallback
                        break
                    raise DecodingError(_stuck_message(matcher, state, out))
                banned[i] = 1
                if banned is free:
                    touched.append(i)
                stats.rejections += 1  # undone below when the token is taken
                if i >= n_content:  # an end token: the text may end here (the matcher said so)
                    if not verdicts.bad[i] and judge.may_end(verdicts):
                        break
                    continue
                move = None if verdicts.bad[i] else _move(moves, matcher, distance, state, i, pieces[i])
                if move is None or (not verdicts.good[i] and not judge.allows(verdicts, i)):
                    if move is not None:
                        stats.disagreements += 1  # matcher said yes, llama.cpp no: must stay 0
                    verdicts.bad[i] = 1  # never ask about this token in this state again
                    refused += 1
                    if refused == REJECTIONS_BEFORE_MASK and not masked:
                        banned, masked = self._with_mask(judge, verdicts, banned), True
                    continue
                if move.cost > left_after:
                    local += 1
                    if local == 16:  # tight budget: ban in one pass all that cannot finish
                        if banned is free:
                            banned = banned.copy()
                        _ban_unfinishable(matcher, cands, moves, state, left_after, banned)
                    continue
                emoji_now = move.committed
                if emoji_now is not None and emoji_now != committed:
                    weight = params.repeat_penalty * used[emoji_now] + (
                        params.filler_penalty if emoji_now in filler else 0.0)
                    if weight > 0 and sampler.uniform() >= math.exp(-weight):
                        stats.penalty_rejections += 1
                        if fallback is None:
                            fallback = (i, move)
                        continue
                break
            stats.rejections -= 1
            for j in touched:
                free[j] = 0
            if i >= n_content:
                stats.stopped_by = "model"
                stats.constraint_us.append((perf() - t_start) * 1e6)
                break
            tok = int(tokens[i])
            judge.accept(tok)
            state, committed = move.state, move.committed
            stats.constraint_us.append((perf() - t_start) * 1e6)
            out += pieces[i]
            for lexeme in move.done:
                if lexeme not in literals:
                    used[lexeme] += 1
                if not stats.first_emoji_seconds:
                    stats.first_emoji_seconds = perf() - started
                yield Event("lexeme", lexeme)
            stats.eval_tokens += 1
            if left_after == 0 or move.complete:
                stats.stopped_by = "budget" if left_after == 0 else "grammar"
                break
            forward.push(tok)
        else:
            stats.stopped_by = "budget"
        stats.eval_seconds = perf() - loop_start
        for lexeme in matcher.finish(state):
            if not stats.first_emoji_seconds:
                stats.first_emoji_seconds = perf() - started
            yield Event("lexeme", lexeme)
        if not matcher.accepting(state):
            raise DecodingError(_stuck_message(matcher, state, out))
        return out.decode("utf-8")


class Move(NamedTuple):
    """Where a candidate token takes the matcher from one state (all pure functions of the two)."""

    state: State
    done: tuple[str, ...]  # lexemes it completed
    cost: float  # tokens still needed after it (budget.TokenDistance)
    committed: str | None  # the emoji the text is then bound to write (repetition control)
    complete: bool  # the text is finished: it may end and nothing may follow


def _move(moves: dict, matcher: Matcher, distance: TokenDistance, state: State, i: int,
          piece: bytes) -> Move | None:
    """Candidate ``i`` (``piece``) from ``state``: remembered, or worked out and remembered."""
    key = (state, i)
    move = moves.get(key, _UNKNOWN)
    if move is _UNKNOWN:
        step = matcher.advance(state, piece)
        if step is None:
            move = None
        else:
            new_state, done = step
            move = Move(new_state, tuple(done), distance.cost(new_state), matcher.committed_emoji(new_state),
                        matcher.accepting(new_state) and not matcher.can_continue(new_state))
        if len(moves) < VerdictCache.MAX_MOVES:
            moves[key] = move
    return move


_UNKNOWN = object()


def _ban_unfinishable(matcher: Matcher, cands: Candidates, moves: dict, state: State, left_after: int,
                      banned: np.ndarray) -> None:
    """Tight budget: ban in one pass every candidate after which the answer cannot be finished."""
    for i in np.flatnonzero(banned[: cands.n_content] == 0).tolist():
        move = _move(moves, matcher, cands.distance, state, i, cands.pieces[i])
        if move is None or move.cost > left_after:
            banned[i] = 1


class Verdicts:
    """llama.cpp's verdicts on the candidates in one matcher state (filled in as they are asked)."""

    __slots__ = ("bad", "good", "complete", "end")

    def __init__(self, n: int, n_content: int, may_end: bool) -> None:
        self.bad = np.zeros(n, dtype=np.uint8)
        self.good = np.zeros(n, dtype=np.uint8)
        self.complete = False
        self.end: bool | None = None if may_end else False
        if not may_end:
            self.bad[n_content:] = 1


@dataclass(frozen=True)
class _Setup:
    candidates: Candidates
    pristine: GrammarSampler  # the grammar compiled by llama.cpp, in its start state
    verdicts: "VerdictCache"


class VerdictCache:
    """Verdicts per matcher state, for one (model, grammar). The matcher state (DFA state, trie
    node, pending bytes) determines what may follow, so llama.cpp's answer in one visit holds in
    every later visit: each question is put to llama.cpp once per process."""

    MAX_STATES = 20_000
    MAX_MOVES = 200_000

    def __init__(self) -> None:
        self.states: dict[tuple, Verdicts] = {}
        # The matcher's moves, by (state, candidate): pure functions, remembered because right
        # after a forward pass every cache is cold and working one out again costs ~20-30 µs.
        self.moves: dict[tuple[State, int], Move | None] = {}


class _Judge:
    """llama.cpp's grammar sampler as the judge, asked only what the cache does not know.

    The sampler is cloned and brought up to date (by replaying the tokens accepted so far, each of
    which llama.cpp approved) only when a question must actually be put to it.
    """

    def __init__(self, pristine: GrammarSampler, cache: VerdictCache, cands: Candidates) -> None:
        self.pristine = pristine
        self.cache = cache
        self.cands = cands
        self.live: GrammarSampler | None = None
        self.pending: list[int] = []
        self.checks = 0
        self.masks = 0

    def verdicts(self, state, matcher: Matcher) -> Verdicts:
        key = state[:3]
        v = self.cache.states.get(key)
        if v is None:
            v = Verdicts(len(self.cands.tokens), self.cands.n_content, matcher.accepting(state))
            if len(self.cache.states) < VerdictCache.MAX_STATES:
                self.cache.states[key] = v
        return v

    def _sampler(self) -> GrammarSampler:
        if self.live is None:
            self.live = self.pristine.clone()
        for tok in self.pending:
            self.live.accept(tok)
        self.pending.clear()
        return self.live

    def allows(self, v: Verdicts, i: int) -> bool:
        self.checks += 1
        ok = self._sampler().allows(int(self.cands.tokens[i]))
        if ok:
            v.good[i] = 1
        else:
            v.bad[i] = 1
        return ok

    def may_end(self, v: Verdicts) -> bool:
        if v.end is None:
            self.checks += 1
            v.end = self._sampler().allows(self.cands.eog)
            if not v.end:
                v.bad[self.cands.n_content:] = 1
        return v.end

    def complete(self, v: Verdicts) -> None:
        """Ask about every candidate at once (after too many single rejections)."""
        self.masks += 1
        n_content = self.cands.n_content
        allowed = self._sampler().allowed(self.cands.tokens[:n_content])
        v.bad[:n_content] |= ~allowed
        v.good[:n_content] |= allowed
        self.may_end(v)
        v.complete = True

    def accept(self, token: int) -> None:
        self.pending.append(token)

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
            self.live = None


@functools.lru_cache(maxsize=16)
def _geometric(emoji: tuple[str, ...]) -> frozenset[str]:
    from .unicode import lookup
    return frozenset(e for e in emoji if (info := lookup(e)) is not None and info.is_geometric)


def _static_bias(cands: Candidates, grammar: Grammar, topic: str, request: Request) -> np.ndarray:
    """Per-candidate logit offsets for the whole answer: a bonus on the tokens that begin emoji
    whose names share a word with the topic (``hint``), and a malus on tokens that hold only part of
    a character (``partial_penalty``): in vocabularies with whole-emoji tokens, byte pieces are the
    model's fallback and spell emoji it knows little about."""
    bias = np.zeros(len(cands.tokens), dtype=np.float64)
    if request.hint and topic:
        from .retrieval import related
        starts = [e.encode() for e in related(topic, grammar.emoji)]
        for i, piece in enumerate(cands.pieces[: cands.n_content]):
            if any(s.startswith(piece) for s in starts):
                bias[i] += request.hint
    bias[cands.partial] -= request.params.partial_penalty
    return bias


def _stuck_message(matcher: Matcher, state, out: bytes) -> str:
    text = bytes(out).decode("utf-8", errors="replace")
    return (f"no token can continue the explanation after {text!r} "
            f"(at least {matcher.remaining(state)} more bytes needed)")


def _sub_seed(seed: int | None, k: int) -> int | None:
    return None if seed is None else (seed * 1_000_003 + k) & ((1 << 64) - 1)


def _split_prompt(model: Model, prompt: prompts.Prompt, topic: str) -> tuple[list[int], list[int]]:
    """Tokens of the part every call shares (instructions, examples) and of this call's part.

    Evaluating the shared part on its own, always the same way, keeps results reproducible when it
    is served from the cache, and makes later calls only pay for their own few tokens.
    """
    cut = prompt.shared_chars
    if cut <= 0:
        return [], model.tokenize(prompt.text, add_special=prompt.add_bos)
    shared = model.tokenize(prompt.text[:cut], add_special=prompt.add_bos)
    own = model.tokenize(prompt.text[cut:], add_special=False)
    return shared, own
