"""Glossed answers: the model names each part of the explanation in a word or two, then writes
that part's emoji.

    Topic: how a letter is delivered
    letter: ✉️ -> post box: 📮 -> van: 🚚 -> home: 🏠

A small model keeps to the topic far better when each emoji comes right after the word it stands
for: on the tune half of the references, precision against people's answers rose from 22% to 42%
with this format alone (``bench/quality.py``). The words are the plan (returned as
``Explanation.plan``); the answer is the emoji. Each part is three phases of one sequence:

* ``WordPhase`` (``gloss_words.py``): free text restricted to word tokens, until the model writes
  ``:``; a word it has already used is pulled away from;
* a group: ``EmojiPhase`` under a grammar of one group of emoji after a space, judged by
  llama.cpp like any answer, its emoji nudged toward those the lexicon (``knowledge/lexicon.py``) relates
  to the part's words; or, when the words are an emoji's own name ("lungs": 🫁), that emoji
  (``NamedGroup``);
* the separator the model picks after the group: `` +`` (➕ combined with), `` ->`` (➡️ leads to),
  `` vs`` (🆚), `` =`` (🟰), or the end of the line. Only separators that keep the answer within
  the requested shape are offered (a full line can only go on with ➡️ on a new line, and so on).

The answer is then the groups joined by those operators, laid out in lines, valid by
construction (every emoji was approved by the grammar judge, every joint is a fixed operator) and
parsed again before it is returned. How many parts it has depends on what the topic asks
(``topic_parts.py``).
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..language.grammar import Grammar, Operator, Shape
from ..language.tree import Emoji, Group, Line, Tree
from ..stats import Event, Stats
from .gloss_words import ForcedWords, WordPhase, Words
from .grammar_setup import Setup
from .sampling import SamplingParams, make_sampler
from .sequence import EmojiPhase, Output, Step
from .topic_parts import MAX_PARTS, max_parts

SEPARATORS = {" +": Operator.AND, " ->": Operator.LEADS_TO, " vs": Operator.VERSUS, " =": Operator.MEANS}
END_TEXTS = tuple(SEPARATORS) + ("\n",)
JOIN_PENALTY = 3.0  # logits off tokens that extend a finished emoji (ZWJ, skin tone); docs/tuning.md
JOINERS = (b"\xe2\x80\x8d", b"\xf0\x9f\x8f\xbb", b"\xf0\x9f\x8f\xbc", b"\xf0\x9f\x8f\xbd",
            b"\xf0\x9f\x8f\xbe", b"\xf0\x9f\x8f\xbf")
NAMED_SCORE = 2.0  # lexicon score from which a part's words name an emoji outright; docs/tuning.md
NAMED_MARGIN = 0.5  # ... and by this much over the runner-up (no pick among 12 equal hearts)


@dataclass(frozen=True)
class FollowPart:
    """One stage of a bank entry the answer follows (``Gloss(follow=...)``): its words, the
    operator before it, its group when every emoji of it is allowed here (else None: the model
    picks the group under the grammar, nudged toward ``hint``, the entry's emoji that are allowed)."""

    words: str
    operator: Operator | None
    group: str | None
    hint: tuple[str, ...] = ()


class NamedGroup:
    """A part whose words are an emoji's name ("lungs"): that emoji, written for the model. A small
    model rarely writes what it saw little of: Gemma spells 🫁 in five byte pieces and, nudged or
    not, wrote 🌬️ for "lungs", 💡 for "magnet", 🐠 for "coral" (tune half: precision on topics to
    explain 47.9% -> 51.0%, ``bench/quality.py``)."""

    full_logits = False
    end = None  # it never ends the answer: the model picks how it goes on

    def __init__(self, emoji: str, tokens: list[int], gloss: "Gloss") -> None:
        self.emoji, self.tokens, self.gloss = emoji, tokens, gloss
        self.text = " " + emoji
        self.taken = len(tokens)
        self.last_token = tokens[-1]  # evaluated with what follows, as an emoji phase's last token

    def step(self, out: Output) -> Step:
        g = self.gloss
        g.used[self.emoji] += 1
        stats = g.stats
        stats.eval_tokens += self.taken
        # a full group, as the grammar would say, unless no other group can be paid for after it
        stats.stopped_by = "budget" if g.budget - self.taken < g.group_tokens else "grammar"
        if not stats.first_emoji_seconds:
            stats.first_emoji_seconds = time.perf_counter() - g.started
        g.emit(Event("lexeme", self.emoji))
        return Step(self.tokens[:-1], finished=True)


class SeparatorPhase:
    """After a full group: the model picks how the answer goes on (or ends), among those allowed."""

    full_logits = False

    def __init__(self, gloss: "Gloss", allowed: np.ndarray) -> None:
        self.gloss, self.allowed = gloss, allowed

    def step(self, out: Output) -> Step:
        g = self.gloss
        want = g._wanted_end()
        if want is not None and self.allowed[want]:  # the followed entry's joint
            g.chosen_end = want
            return Step(finished=True)
        bias = np.where(self.allowed, g.end_bias, -np.inf)
        i = g.end_sampler.sample(out.candidates(), bias, g.no_end_ban)
        g.chosen_end = i if i >= 0 else int(np.flatnonzero(self.allowed)[0])
        return Step(finished=True)


@dataclass
class Part:
    words: str
    operator: Operator | None = None  # joining it to the part before (None for the first)
    new_line: bool = False  # it starts a line (then joined by the line's leading ➡️)
    emoji: list[str] = field(default_factory=list)


class Gloss:
    """The script of one glossed answer (a ``sequence.Script``): words, group, separator, ..."""

    def __init__(self, *, shape: Shape, grammar: Grammar, setup: Setup, positions: np.ndarray,
                 base_bias: np.ndarray,
                 word_ids: np.ndarray, n_words: int, same: np.ndarray, pieces: list[bytes],
                 params: SamplingParams,
                 seed: int | None, max_tokens: int, related: Callable[[str], list[tuple[str, float]]],
                 lexicon_bias: float, filler: frozenset[str], stats: Stats,
                 emit: Callable[[Event], None], started: float,
                 min_parts: int = 1, most_parts: int = MAX_PARTS, chain_bias: float = 0.0,
                 likelihood: bool = False,
                 tokenize: Callable[[str], list[int]] | None = None,
                 follow: tuple[FollowPart, ...] = (), known: tuple[FollowPart, ...] = ()) -> None:
        from ..constraint.judge import Judge
        from ..constraint.matcher import matcher_for
        self.shape, self.setup, self.positions, self.base_bias = shape, setup, positions, base_bias
        self.cands = setup.candidates
        self.matcher = matcher_for(grammar)
        self.judges: list[Judge] = []  # one per group: each starts from the grammar's start
        # a judge per group, each from the grammar's start (no reference back to self: a Gloss
        # in a cycle would wait for the cyclic collector, with its ~2 MB of arrays)
        self._judge = functools.partial(Judge, setup.pristine, setup.verdicts, self.cands)
        self.words = Words(ids=word_ids, n_words=n_words, same=same, pieces=pieces, params=params,
                           seed=_mix(seed, 11), likelihood=likelihood, stats=stats)
        self.params, self.seed, self.budget = params, seed, max_tokens
        ends = positions[self.cands.n_content:]
        self.end_sampler = make_sampler(ends, params, _mix(seed, 13))
        self.no_end_ban = np.zeros(len(ends), dtype=np.uint8)
        self.related, self.lexicon_bias, self.filler = related, lexicon_bias, filler
        self.tokenize = tokenize  # for a named group's emoji (None: the model writes every group)
        self.max_parts = max_parts(shape, most_parts)
        self.min_parts = min(min_parts, self.max_parts)
        self.likelihood = likelihood  # keep the model's log-probability of its choices (best of N)
        self.stats, self.emit, self.started = stats, emit, started
        self.end_kinds = [_end_kind(p) for p in self.cands.pieces[self.cands.n_content:]]
        self.end_bias = np.array([chain_bias if kind is Operator.LEADS_TO else 0.0
                                  for kind in self.end_kinds])  # also ends a group sooner
        self.used: Counter[str] = Counter()
        self.parts: list[Part] = []
        self.lines, self.on_line = 1, 0  # the layout so far
        self.pending: Operator | None = None  # the operator chosen before the next part
        self.chosen_end: int | None = None
        self.force_line = False  # the next part starts a line whatever the model chose
        self.group_tokens = math.ceil(self.cands.min_answer_tokens)  # the fewest one group can take
        self.lead = False
        self.follow = follow  # the stages of a bank entry on the same topic, kept to in order
        self.known: dict[str, FollowPart] = {}  # the neighbours' stages by words: a copied part's group
        for part in known:
            self.known.setdefault(part.words, part)
        if follow:
            self.max_parts = max_parts(shape, max(most_parts, len(follow)))
            self.min_parts = min(self.min_parts, len(follow))
            self._colon = self.words.colon()

    # -- the script --
    def first(self) -> WordPhase | ForcedWords:
        return self._words_phase()

    def _words_phase(self) -> WordPhase | ForcedWords:
        """The next part's words: the followed entry's next stage, or the model's own."""
        n = len(self.parts)
        if self.follow and n < len(self.follow) and self.tokenize is not None:
            words = self.follow[n].words
            return ForcedWords(words, self.tokenize((" " if n else "") + words) + [self._colon])
        return WordPhase(self.words)

    def _wanted_end(self) -> int | None:
        """The end the followed entry asks for after the current part: its next operator, or the
        end of the answer after its last stage (None when not following, or past its end)."""
        n = len(self.parts)
        if not self.follow or n > len(self.follow):
            return None
        want = self.follow[n].operator if n < len(self.follow) else None
        for k, kind in enumerate(self.end_kinds):
            if kind is want:
                return k
        return None

    def after(self, phase, step: Step):
        if isinstance(phase, (WordPhase, ForcedWords)):
            self._start_part(phase.raw.decode("utf-8", errors="replace").strip())
            return self._group(), []
        if isinstance(phase, (EmojiPhase, NamedGroup)):
            self.parts[-1].emoji = split_group(phase.text or "")
            self.budget -= phase.taken
            if phase.end is None:  # full (or out of budget): its last token, then the model's choice
                if self.budget < self.group_tokens:
                    return None, []
                return SeparatorPhase(self, self._allowed_ends()), [phase.last_token]
            self.chosen_end = phase.end - self.cands.n_content
            want = self._wanted_end()
            if want is not None and self._allowed_ends()[want]:
                self.chosen_end = want
        assert self.chosen_end is not None  # the group's end, or the separator phase's choice
        kind = self.end_kinds[self.chosen_end]
        if kind is None or self.budget < self.group_tokens:
            return None, []
        self.pending, self.force_line = kind, False
        needed = self._still_needed()
        if not self._progresses(kind) and (self.budget < (needed + 1) * self.group_tokens
                                           or len(self.parts) + 1 + needed > self.max_parts):
                # The budget (or the part limit) left pays only for the parts the shape requires: go on
            # with those (a new line, which the model sees as the ``->`` it is fed) instead of one
            # more on this line.
            leads = [k for k, kind in enumerate(self.end_kinds) if kind is Operator.LEADS_TO]
            if leads:
                self.chosen_end, self.pending, self.force_line = leads[0], Operator.LEADS_TO, True
        return self._words_phase(), [int(self.cands.tokens[self.cands.n_content + self.chosen_end])]

    def _progresses(self, kind: Operator) -> bool:
        """Whether the next part, joined by ``kind``, is one the shape still requires."""
        (l_lo, _), (s_lo, s_hi) = self.shape.lines, self.shape.steps
        in_line = kind is not Operator.LEADS_TO or (
            self.on_line < s_hi and Operator.LEADS_TO in self.shape.operators)
        return self.on_line < s_lo if in_line else self.lines < l_lo

    def _start_part(self, words: str) -> None:
        op = self.pending
        new_line = op is Operator.LEADS_TO and (self.force_line or self.on_line >= self.shape.steps[1]
                                                or Operator.LEADS_TO not in self.shape.operators)
        if new_line:
            self.lines, self.on_line = self.lines + 1, 0
        self.on_line += 1
        self.parts.append(Part(words, op, new_line))
        if op is not None:  # stream the joint before the part's emoji
            for piece in (["\n", Operator.LEADS_TO.symbol, " "] if new_line else [" ", op.symbol, " "]):
                self.emit(Event("lexeme", piece))

    # -- the shape --
    def _allowed_ends(self) -> np.ndarray:
        """Which ends keep the answer within the shape: the end itself once there are enough lines
        and groups; ➡️ inside a line or onto a new one; ➕ 🆚 🟰 inside a line, when allowed."""
        (l_lo, l_hi), (s_lo, s_hi) = self.shape.lines, self.shape.steps
        lines, on_line = self.lines, self.on_line
        room = len(self.parts) < self.max_parts
        allowed = np.zeros(len(self.end_kinds), dtype=bool)
        for k, kind in enumerate(self.end_kinds):
            if kind is None:
                allowed[k] = lines >= l_lo and on_line >= s_lo and len(self.parts) >= self.min_parts
            elif not room:
                continue
            elif kind is Operator.LEADS_TO:
                allowed[k] = (on_line < s_hi and kind in self.shape.operators) or (
                    lines < l_hi and on_line >= s_lo)
            else:
                allowed[k] = on_line < s_hi and kind in self.shape.operators
        if not allowed.any():  # only when no end token exists at all: end anyway
            allowed[:] = [kind is None for kind in self.end_kinds]
        return allowed

    def _group(self) -> EmojiPhase | NamedGroup:
        cands = self.cands
        stage = self.follow[len(self.parts) - 1] if len(self.parts) <= len(self.follow) else None
        stage = stage or self.known.get(self.parts[-1].words)  # words copied from a neighbour
        if stage is not None and stage.group is not None and (given := self._given(stage.group)) is not None:
            return given
        related = self.related(self.parts[-1].words) if self.lexicon_bias else []
        if stage is not None:  # the entry's emoji first, then the lexicon's for its words
            related = [(e, 9.0) for e in stage.hint] + related
        elif (named := self._named(related)) is not None:
            return named
        bias = self.base_bias.copy()
        index = self.setup.piece_index(JOINERS)
        before = self.parts[-2].emoji if len(self.parts) > 1 else []
        echo = before[0].encode() if len(before) == 1 else None  # "👣 ➕ 👣" says nothing twice
        echoes = index.spelled(echo) if echo is not None else np.zeros(0, dtype=np.int64)
        suggested = index.inside([e.encode() for e, _ in related[:8]])  # start or rest of them
        suggested = np.setdiff1d(suggested, echoes)
        bias[suggested] += self.lexicon_bias  # the lexicon's emoji for these words
        joiners = index.joiners.copy()
        joiners[suggested] = False
        joiners[echoes] = False
        bias[:cands.n_content][joiners] -= JOIN_PENALTY
        bias[cands.n_content:] += self.end_bias
        bias[cands.n_content:][~self._allowed_ends()] = -np.inf
        self.lead = True
        self.judges.append(self._judge())
        return EmojiPhase(cands=cands, positions=self.positions, matcher=self.matcher, judge=self.judges[-1],
                          params=self.params, seed=_mix(self.seed, len(self.parts)),
                          max_tokens=self.budget - self._still_needed() * self.group_tokens,
                          bias=bias, filler=self.filler, stats=self.stats, emit=self._emit_group,
                          started=self.started, used=self.used, likelihood=self.likelihood,
                          avoid=echoes)

    def _given(self, group: str) -> NamedGroup | None:
        """The followed entry's group, written for the model, when the budget pays for it and no
        earlier part used it."""
        if self.tokenize is None or any(p.emoji and "".join(p.emoji) == group for p in self.parts[:-1]):
            return None
        tokens = self.tokenize(" " + group)
        if not tokens or len(tokens) > self.budget - self._still_needed() * self.group_tokens:
            return None
        return NamedGroup(group, tokens, self)

    def _named(self, related: list[tuple[str, float]]) -> NamedGroup | None:
        """The group the part's words name outright, if they do (``NamedGroup``): the lexicon's
        top emoji, by ``NAMED_SCORE`` and ``NAMED_MARGIN``, not used by an earlier part, within the
        budget and a shape whose groups may hold one emoji."""
        if not related or self.tokenize is None or self.shape.emoji_per_group[0] > 1:
            return None
        (emoji, score), runner_up = related[0], (related[1][1] if len(related) > 1 else 0.0)
        if score < NAMED_SCORE or score - runner_up < NAMED_MARGIN:
            return None
        if any(emoji in part.emoji for part in self.parts[:-1]):
            return None
        tokens = self.tokenize(" " + emoji)
        if not tokens or len(tokens) > self.budget - self._still_needed() * self.group_tokens:
            return None
        return NamedGroup(emoji, tokens, self)

    def _still_needed(self) -> int:
        """Groups the shape still requires after the current one (their tokens are kept back, so
        a long group cannot leave the answer unable to reach its minimum shape)."""
        (l_lo, _), (s_lo, _) = self.shape.lines, self.shape.steps
        return max(0, s_lo - self.on_line) + max(0, l_lo - self.lines) * s_lo

    def _emit_group(self, event: Event) -> None:
        if event.kind == "lexeme" and event.text == " " and self.lead:
            self.lead = False  # the space after the colon belongs to the gloss, not the answer
            return
        self.emit(event)

    # -- the result --
    def tree(self) -> Tree:
        lines: list[list[Part]] = []
        for part in self.parts:
            if not lines or part.new_line:
                lines.append([])
            lines[-1].append(part)
        return Tree(tuple(Line(tuple(Group(tuple(Emoji(e) for e in p.emoji)) for p in line),
                               tuple(p.operator for p in line[1:] if p.operator is not None))
                    for line in lines))  # (every part after a line's first has its operator)

    @property
    def plan(self) -> tuple[str, ...]:
        return tuple(part.words for part in self.parts)

    def close(self) -> None:
        for judge in self.judges:
            judge.close()


def _end_kind(piece: bytes) -> Operator | None:
    """The operator a separator token stands for; None for a token that ends the answer."""
    return SEPARATORS.get(piece.decode("utf-8", errors="replace").rstrip(" "))


def split_group(group_text: str) -> list[str]:
    from ..language.unicode import split_emoji
    return split_emoji(group_text.strip())


def _mix(seed: int | None, k: int) -> int | None:
    return None if seed is None else (seed * 1_000_003 + 7_777 + k) & ((1 << 64) - 1)
