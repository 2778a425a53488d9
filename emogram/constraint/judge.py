"""The grammar judge and what is remembered of its verdicts and of the matcher's moves.

llama.cpp's grammar sampler judges every token the engine takes (the GBNF is the contract). Asking
it costs 0.3-0.7 ms, so its verdicts are remembered per matcher state: the state (DFA state, trie
node, pending bytes) determines what may follow, so a verdict given in one visit holds in every
later visit, and each question is put to llama.cpp once per process. The sampler itself is cloned
and brought up to date (by replaying the tokens accepted so far, each of which it approved) only
when a question must actually be put to it.

The matcher's moves (next state, finished lexemes, tokens still needed) are pure functions of
(state, candidate) and are remembered the same way: right after a forward pass every cache is
cold and working a move out again costs more than looking it up.

Both memories are bounded (``VerdictCache.MAX_STATES``, ``MAX_MOVES``): past the bound nothing new
is remembered and answers are worked out again, so memory stays flat in a long-running server.
This module knows the grammar engine only through the ``GrammarJudge`` protocol.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from .budget import TokenDistance
from .matcher import Matcher, State
from .prefilter import Candidates


class GrammarJudge(Protocol):
    """A grammar engine's opinion of tokens (llama.cpp's ``GrammarSampler`` is one)."""

    def clone(self) -> "GrammarJudge": ...

    def allows(self, token: int) -> bool: ...  # an end-of-generation token: may the text end?

    def allowed(self, tokens: np.ndarray) -> np.ndarray: ...

    def accept(self, token: int, *, approved: bool = False) -> None: ...  # approved: allows() said yes

    def close(self) -> None: ...


class Move(NamedTuple):
    """Where a candidate token takes the matcher from one state (all pure functions of the two)."""

    state: State
    done: tuple[str, ...]  # lexemes it completed
    cost: float  # tokens still needed after it (budget.TokenDistance)
    committed: str | None  # the emoji the text is then bound to write (repetition control)
    complete: bool  # the text is finished: it may end and nothing may follow


class Verdicts:
    """The judge's verdicts on the candidates in one matcher state (filled in as they are asked)."""

    __slots__ = ("bad", "good", "complete", "end")

    def __init__(self, n: int, n_content: int, may_end: bool) -> None:
        self.bad = np.zeros(n, dtype=np.uint8)
        self.good = np.zeros(n, dtype=np.uint8)
        self.complete = False
        self.end: bool | None = None if may_end else False
        if not may_end:
            self.bad[n_content:] = 1


class VerdictCache:
    """Verdicts per matcher state and matcher moves per (state, candidate), for one grammar."""

    MAX_STATES = 20_000
    MAX_MOVES = 200_000

    def __init__(self) -> None:
        self.states: dict[tuple, Verdicts] = {}
        self.moves: dict[tuple[State, int], Move | None] = {}


_UNKNOWN = object()


def move(moves: dict, matcher: Matcher, distance: TokenDistance, state: State, i: int,
         piece: bytes) -> Move | None:
    """Candidate ``i`` (``piece``) from ``state``: remembered, or worked out and remembered."""
    key = (state, i)
    found = moves.get(key, _UNKNOWN)
    if found is _UNKNOWN:
        step = matcher.advance(state, piece)
        if step is None:
            found = None
        else:
            new_state, done = step
            found = Move(new_state, tuple(done), distance.cost(new_state),
                         matcher.committed_emoji(new_state),
                         matcher.accepting(new_state) and not matcher.can_continue(new_state))
        if len(moves) < VerdictCache.MAX_MOVES:
            moves[key] = found
    return found


def ban_unfinishable(matcher: Matcher, cands: Candidates, moves: dict, state: State, left_after: int,
                     banned: np.ndarray) -> None:
    """Tight budget: ban in one pass every candidate after which the answer cannot be finished."""
    for i in np.flatnonzero(banned[: cands.n_content] == 0).tolist():
        found = move(moves, matcher, cands.distance, state, i, cands.pieces[i])
        if found is None or found.cost > left_after:
            banned[i] = 1


class Judge:
    """One sequence's view of the grammar judge: asked only what the cache does not know."""

    def __init__(self, pristine: GrammarJudge, cache: VerdictCache, cands: Candidates) -> None:
        self.pristine = pristine
        self.cache = cache
        self.cands = cands
        self.live: GrammarJudge | None = None
        self.pending: list[int] = []
        self.checks = 0
        self.masks = 0

    def verdicts(self, state: State, matcher: Matcher) -> Verdicts:
        key = state[:3]
        v = self.cache.states.get(key)
        if v is None:
            v = Verdicts(len(self.cands.tokens), self.cands.n_content, matcher.accepting(state))
            if len(self.cache.states) < VerdictCache.MAX_STATES:
                self.cache.states[key] = v
        return v

    def _sampler(self) -> GrammarJudge:
        if self.live is None:
            self.live = self.pristine.clone()
        for tok in self.pending:
            self.live.accept(tok, approved=True)  # each was allowed in this state (see verdicts)
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
        """May the text end here? (Only asked where the matcher says it may.) A vocabulary with no
        end-of-generation token gives the judge no way to answer; the matcher's word stands."""
        if v.end is None:
            if self.cands.eog is None:
                v.end = True
            else:
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
