"""What a generation reports besides its text: timings and counters, and the events of a stream."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Timings and counters of one generation (ollama's ``--verbose`` figures and more)."""

    load_seconds: float = 0.0
    queue_seconds: float = 0.0  # waiting for a free sequence slot in a busy model
    prompt_tokens: int = 0
    prompt_seconds: float = 0.0
    think_tokens: int = 0
    think_seconds: float = 0.0
    plan_tokens: int = 0  # the words naming each part (glossed answers)
    plan_seconds: float = 0.0
    eval_tokens: int = 0
    eval_seconds: float = 0.0
    first_emoji_seconds: float = 0.0
    total_seconds: float = 0.0
    batch_mean: float = 0.0  # sequences per forward pass, on average, while this one decoded
    constraint_us: list[float] = field(default_factory=list, repr=False)
    rejections: int = 0
    penalty_rejections: int = 0
    disagreements: int = 0  # matcher said yes, llama.cpp said no (must stay 0; tests check)
    llama_checks: int = 0  # single-token questions put to llama.cpp (the rest came from the cache)
    llama_masks: int = 0  # whole-candidate-list questions put to llama.cpp
    stopped_by: str = ""  # "model" (chose to end), "grammar" (nothing else allowed), "budget"
    sampler: str = ""
    log_likelihood: float = 0.0  # sum of the chosen tokens' log-probabilities among the candidates

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
class Source:
    """A bank entry an answer used: ``followed`` (the answer keeps to its stages: the same topic)
    or ``read`` (in the model's prompt, as a neighbouring topic)."""

    topic: str
    answer: str  # the entry's stages in words and emoji
    bank: str  # "emogram" for the shipped bank, else the path of the user's bank file
    line: int  # its line in that file
    used: str  # "followed" or "read"
    score: float  # how much of the topic's content words it shares (0..1)

    def to_dict(self) -> dict:
        return {"topic": self.topic, "answer": self.answer, "bank": self.bank, "line": self.line,
                "used": self.used, "score": round(self.score, 3)}


@dataclass(frozen=True)
class Result:
    """One finished generation, before parsing."""

    text: str
    reasoning: str
    stats: Stats
    prompt: str
    plan: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Event:
    """What a generation emits: a piece of thinking, a finished lexeme, or the end."""

    kind: str  # "think" | "lexeme" | "done"
    text: str = ""
    result: Result | None = None
    explanation: Any = None  # set by the API layer on "done"
