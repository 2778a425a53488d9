"""Glossed answers: the model names each part of the explanation in a word or two, then writes
that part's emoji.

    Topic: how a letter is delivered
    letter: ✉️ -> post box: 📮 -> van: 🚚 -> home: 🏠

A small model keeps to the topic far better when each emoji comes right after the word it stands
for: on the tune half of the references, precision against people's answers rose from 22% to 42%
with this format alone (``bench/quality.py``). The words are the plan (returned as
``Explanation.plan``); the answer is the emoji. Each part is three phases of one sequence:

* ``WordPhase``: free text restricted to word tokens, until the model writes ``:``; a word it has
  already used is pulled away from;
* a group: ``EmojiPhase`` under a grammar of one group of emoji after a space, judged by
  llama.cpp like any answer, its emoji nudged toward those the lexicon (``knowledge/lexicon.py``) relates
  to the part's words; or, when the words are an emoji's own name ("lungs": 🫁), that emoji
  (``NamedGroup``);
* the separator the model picks after the group: `` +`` (➕ combined with), `` ->`` (➡️ leads to),
  `` vs`` (🆚), `` =`` (🟰), or the end of the line. Only separators that keep the answer within
  the requested shape are offered (a full line can only go on with ➡️ on a new line, and so on).

The answer is then the groups joined by those operators, laid out in lines, valid by
construction (every emoji was approved by the grammar judge, every joint is a fixed operator) and
parsed again before it is returned.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..language.grammar import Operator, Shape
from ..language.tree import Emoji, Group, Line, Tree
from ..stats import Event, Stats
from .sampling import SamplingParams, log_probability, make_sampler
from .sequence import EmojiPhase, Output, Step

SEPARATORS = {" +": Operator.AND, " ->": Operator.LEADS_TO, " vs": Operator.VERSUS, " =": Operator.MEANS}
END_TEXTS = tuple(SEPARATORS) + ("\n",)
MAX_PARTS = 6  # parts of one answer at most, unless the shape requires more
JOIN_PENALTY = 3.0  # logits off tokens that extend a finished emoji (ZWJ, skin tone) unless the lexicon
#                     asks for it: "man" gave 👨 then 👨‍👩‍👦 (bench/quality.py, tune half)
JOINERS = (b"\xe2\x80\x8d", b"\xf0\x9f\x8f\xbb", b"\xf0\x9f\x8f\xbc", b"\xf0\x9f\x8f\xbd",
            b"\xf0\x9f\x8f\xbe", b"\xf0\x9f\x8f\xbf")
EXPLAIN_PARTS = 3  # parts at least for a topic to explain (see min_parts)
PHRASE_PARTS = 3  # parts at most for a phrase (see most_parts): the corpus's rule for phrases; the
#                   adapter, left to itself, took 14 of 108 ELCo phrases (tune half) for topics to
#                   explain ("heavy metal": food scraps, metal ions, eat cells, cancer, detox)
CHAIN_BIAS = 3.0  # logits toward ``->`` (leads to) between an explanation's parts (tune half: the
#                   answers read as stages; precision 46.5% -> 47.9%, bench/quality.py)
_ASKS = frozenset({"how", "why", "what", "when", "where", "who", "the"})
WORD_TOKENS = 6  # tokens of one part's words at most
WORD_PENALTY = 3.0  # logits off a word (any spelling of its stem) once a part has used it
_WORD = re.compile(rb"^ ?[A-Za-z][a-z'-]*$")
NAMED_SCORE = 2.0  # lexicon score from which a part's words name an emoji outright: only the
#                    whole-name bonus reaches it ("lungs" -> 🫁 scores 2.5; the next best word
#                    matches score ~1.3), so 1.7 to 2.4 gave the same answers on the tune half
NAMED_MARGIN = 0.5  # ... and by this much over the runner-up (no pick among 12 equal hearts)


def word_tokens(pieces: list[bytes], control: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens a part's words may use, the tokens that end the words (those holding a colon), and
    for each word token the index of its stem (``words.stem``, without a leading space, lower case):
    " hearts" and "Heart" are one word, so using it once pulls away from both)."""
    words = [t for t, p in enumerate(pieces) if not control[t] and _WORD.match(p)]
    colons = [t for t, p in enumerate(pieces) if not control[t] and p.strip() == b":"]
    from ..knowledge.words import stem
    spelling: dict[str, int] = {}
    same = np.array([spelling.setdefault(stem(pieces[t].strip().decode("ascii", "replace")), len(spelling))
                     for t in words], dtype=np.int32)
    return np.array(words + colons, dtype=np.int32), np.array(colons, dtype=np.int32), same


class WordPhase:
    """A part's words, up to the colon. Full-vocabulary logits, restricted to word tokens."""

    full_logits = True

    def __init__(self, gloss: "Gloss") -> None:
        self.gloss = gloss
        self.raw = b""
        self.count = 0
        self.started = time.perf_counter()

    def step(self, out: Output) -> Step:
        g = self.gloss
        bias = g.word_bias.copy()
        if self.count == 0:
            bias[g.n_words:] = -np.inf  # at least one word before the colon
        elif self.count >= WORD_TOKENS:
            bias[:g.n_words] = -np.inf  # enough words: the colon now
        logits = out.full()
        i = g.word_sampler.sample(logits, bias, g.no_ban)
        tok = int(g.word_ids[i]) if i >= 0 else int(g.word_ids[g.n_words])
        if g.likelihood:
            g.stats.log_likelihood += log_probability(logits[g.word_ids], max(i, 0))
        g.stats.plan_tokens += 1
        if i >= g.n_words or i < 0:
            g.stats.plan_seconds += time.perf_counter() - self.started
            return Step([tok], finished=True)
        g.word_bias[:g.n_words][g.same == g.same[i]] -= WORD_PENALTY  # pull away from used words
        self.raw += g.pieces[tok]
        self.count += 1
        return Step([tok])


@dataclass(frozen=True)
class FollowPart:
    """One stage of a bank entry the answer follows (``Gloss(follow=...)``): its words, the
    operator before it, its group when every emoji of it is allowed here (else None: the model
    picks the group under the grammar, nudged toward ``hint``, the entry's emoji that are allowed)."""

    words: str
    operator: Operator | None
    group: str | None
    hint: tuple[str, ...] = ()


class ForcedWords:
    """A part's words written for the model: a stage of the entry the answer follows."""

    full_logits = False

    def __init__(self, words: str, tokens: list[int]) -> None:
        self.raw = words.encode()
        self.tokens = tokens

    def step(self, out: Output) -> Step:
        return Step(list(self.tokens), finished=True)


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

    def __init__(self, *, shape: Shape, grammar, setup, positions: np.ndarray, base_bias: np.ndarray,
                 word_ids: np.ndarray, n_words: int, same: np.ndarray, pieces: list[bytes],
                 params: SamplingParams,
                 seed: int | None, max_tokens: int, related: Callable[[str], list[tuple[str, float]]],
                 lexicon_bias: float, filler: frozenset[str], stats: Stats,
                 emit: Callable[[Event], None], started: float,
                 min_parts: int = 1, most_parts: int = MAX_PARTS, chain_bias: float = 0.0,
                 likelihood: bool = False,
                 tokenize: Callable[[str], list[int]] | None = None,
                 follow: tuple[FollowPart, ...] = ()) -> None:
        from ..constraint.judge import Judge
        from ..constraint.matcher import matcher_for
        self.shape, self.setup, self.positions, self.base_bias = shape, setup, positions, base_bias
        self.cands = setup.candidates
        self.matcher = matcher_for(grammar)
        self.judges: list[Judge] = []  # one per group: each starts from the grammar's start
        # a judge per group, each from the grammar's start (no reference back to self: a Gloss
        # in a cycle would wait for the cyclic collector, with its ~2 MB of arrays)
        self._judge = functools.partial(Judge, setup.pristine, setup.verdicts, self.cands)
        self.word_ids, self.n_words, self.same, self.pieces = word_ids, n_words, same, pieces
        self.word_bias = np.zeros(len(word_ids), dtype=np.float64)
        self.no_ban = np.zeros(len(word_ids), dtype=np.uint8)
        self.params, self.seed, self.budget = params, seed, max_tokens
        self.word_sampler = make_sampler(word_ids, params, _mix(seed, 11))
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
        if follow:
            self.max_parts = max_parts(shape, max(most_parts, len(follow)))
            self.min_parts = min(self.min_parts, len(follow))
            colon = [t for t in self.word_ids[self.n_words:] if pieces[t] == b":"]
            self._colon = int(colon[0]) if colon else int(self.word_ids[self.n_words])

    # -- the script --
    def first(self) -> WordPhase | ForcedWords:
        return self._words_phase()

    def _words_phase(self) -> WordPhase | ForcedWords:
        """The next part's words: the followed entry's next stage, or the model's own."""
        n = len(self.parts)
        if self.follow and n < len(self.follow) and self.tokenize is not None:
            words = self.follow[n].words
            return ForcedWords(words, self.tokenize((" " if n else "") + words) + [self._colon])
        return WordPhase(self)

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
        if stage is not None and stage.group is not None and (given := self._given(stage.group)) is not None:
            return given
        related = self.related(self.parts[-1].words) if self.lexicon_bias else []
        if stage is not None:  # the entry's emoji first, then the lexicon's for its words
            related = [(e, 9.0) for e in stage.hint] + related
        elif (named := self._named(related)) is not None:
            return named
        bias = self.base_bias.copy()
        index = self.setup.piece_index()
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
                               tuple(p.operator for p in line[1:])) for line in lines))

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


def max_parts(shape: Shape, most: int = MAX_PARTS) -> int:
    """Parts at most: ``most``, or more when the shape requires more; never more than it allows."""
    return min(max(most, shape.lines[0] * shape.steps[0]), shape.lines[1] * shape.steps[1])


def explains(topic: str) -> bool:
    """Does the topic ask for an explanation (a process, an event, an idea) rather than a picture
    of a phrase? A question ("how tides work"), a definite topic ("the water cycle"), a single word
    or a longer topic does; two content words ("tiny apartment", "black holes") name a thing."""
    from ..knowledge.words import words
    first = re.match(r"\W*([a-z]*)", topic.lower()).group(1)  # "What's up?" -> "what"
    return first in _ASKS or len(words(topic)) != 2


def min_parts(topic: str) -> int:
    """Parts an answer has at least: a phrase takes two; an explanation three (the model, left to
    itself, stops at two for nearly everything)."""
    return EXPLAIN_PARTS if explains(topic) else 2


def most_parts(topic: str) -> int:
    """Parts an answer has at most: a phrase three, as the corpus teaches; an explanation six."""
    return MAX_PARTS if explains(topic) else PHRASE_PARTS


def chain_bias(topic: str) -> float:
    """Toward ``->`` between an explanation's parts, so that they read as stages in order."""
    return CHAIN_BIAS if explains(topic) else 0.0
