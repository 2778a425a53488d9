"""The public API: ``explain``, ``stream``, ``Explainer``, ``explain_many``.

Arguments are checked here, before any model work, so bad input fails fast with an
``InputError`` (a ``ValueError``) or ``InputTypeError`` (a ``TypeError``) that says which argument
and why.
"""

from __future__ import annotations

import os
import sys
import threading
import unicodedata
from dataclasses import replace
from typing import Iterable, Iterator, Sequence

from . import models
from .engine import Engine, Event, Request
from .errors import DecodingError, EmogramError, InputError, InputTypeError
from .grammar import Operator, Shape, compile_grammar
from .language import Explanation, parse
from .prompts import EXAMPLES
from .sampling import SamplingParams, seed_state
from .unicode import EmojiFilter, split_emoji

MAX_TOPIC_CHARS = 300
DEFAULT_MAX_TOKENS = 96
MAX_TOKENS_CEILING = 1024


def clean_topic(topic: object) -> str:
    """The topic as the model will see it: control characters removed, whitespace collapsed."""
    if not isinstance(topic, str):
        raise InputTypeError(f"topic must be a str, not {type(topic).__name__}")
    text = "".join(" " if ch.isspace() else ch for ch in topic
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    text = " ".join(text.split())
    if not text:
        raise InputError("topic is empty; say what to explain, e.g. 'transformers'")
    if len(text) > MAX_TOPIC_CHARS:
        raise InputError(f"topic is {len(text)} characters; the limit is {MAX_TOPIC_CHARS}")
    return text


def build_request(*, lines=None, steps=None, emoji_per_group=None, operators=None, palette=None,
                  emoji_version=None, exclude=None, emoji_filter: EmojiFilter | None = None,
                  temperature: float | None = None, top_k: int | None = None,
                  top_p: float | None = None, min_p: float | None = None,
                  repeat_penalty: float | None = None, filler_penalty: float | None = None,
                  partial_penalty: float | None = None,
                  seed: int | None = None,
                  think: bool = False, max_tokens: int | None = None,
                  max_think_tokens: int | None = None, hint: float | None = None,
                  examples: int | None = None) -> Request:
    """Turn keyword arguments into an engine request, checking each one."""
    shape_args = {}
    if lines is not None:
        shape_args["lines"] = lines
    if steps is not None:
        shape_args["steps"] = steps
    if emoji_per_group is not None:
        shape_args["emoji_per_group"] = emoji_per_group
    if operators is not None:
        if isinstance(operators, str):
            operators = split_emoji(operators) if operators.strip() else []
        shape_args["operators"] = tuple(operators)
    shape = Shape(**shape_args)
    if emoji_filter is not None:
        if not isinstance(emoji_filter, EmojiFilter):
            raise InputTypeError(f"emoji_filter must be an EmojiFilter, not {type(emoji_filter).__name__}")
        if palette is not None or emoji_version is not None or exclude is not None:
            raise InputError("give either emoji_filter or palette/emoji_version/exclude, not both")
        flt = emoji_filter
    else:
        flt = EmojiFilter.make(emoji_version=emoji_version, palette=palette, exclude=exclude or ())
        if flt.palette is not None and not flt.palette:
            raise InputError("palette is empty; give at least one emoji (e.g. palette='🍎🍌🍇')")
    grammar = compile_grammar(shape, flt)
    knobs = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                 repeat_penalty=repeat_penalty, filler_penalty=filler_penalty,
                 partial_penalty=partial_penalty)
    params = SamplingParams(**{k: v for k, v in knobs.items() if v is not None})
    if not isinstance(think, bool):
        raise InputTypeError(f"think must be True or False, not {type(think).__name__}")
    budget = _positive_int(max_tokens, "max_tokens", DEFAULT_MAX_TOKENS)
    think_budget = _positive_int(max_think_tokens, "max_think_tokens", 96)
    if seed is not None:
        seed_state(seed)  # type check
    if hint is not None and (isinstance(hint, bool) or not isinstance(hint, (int, float))):
        raise InputTypeError(f"hint must be a number, not {type(hint).__name__}")
    n_examples = len(EXAMPLES) if examples is None else examples
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or not 0 <= n_examples <= len(EXAMPLES):
        raise InputError(f"examples must be an int from 0 to {len(EXAMPLES)}, got {examples!r}")
    return Request(grammar=grammar, params=params, seed=seed, max_tokens=budget, think=think,
                   max_think_tokens=think_budget, hint=float(hint or 0.0), examples=n_examples)


def _positive_int(value, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_TOKENS_CEILING:
        raise InputError(f"{name} must be between 1 and {MAX_TOKENS_CEILING}, got {value}")
    return value


class Explainer:
    """One loaded model, ready for many explanations (it is shared with other Explainers of the
    same model in this process; calls are serialised by the model's lock)."""

    def __init__(self, model: str | os.PathLike[str] | None = None, *, device: str = "auto",
                 verbose: bool = False, progress: bool = False, threads: int | None = None) -> None:
        self.model = models.load(model, device=device, verbose=verbose, progress=progress,
                                 threads=threads)
        self.engine = _engine_for(self.model)

    @property
    def model_name(self) -> str:
        return self.model.name

    def events(self, topic: str, **options) -> Iterator[Event]:
        """Low-level stream: thinking pieces, lexemes, then a "done" event carrying the
        ``Explanation`` (the CLI uses this)."""
        text = clean_topic(topic)
        request = build_request(**options)
        return self._events(text, request)

    def _events(self, text: str, request: Request) -> Iterator[Event]:
        for event in self.engine.stream(text, request):
            if event.kind == "done":
                yield replace(event, explanation=self._finish(text, request, event.result))
            else:
                yield event

    def stream(self, topic: str, **options) -> Iterator[str | Explanation]:
        """Yield each emoji, operator, space and newline as soon as it is complete; the last item
        is the parsed ``Explanation``."""
        text = clean_topic(topic)
        request = build_request(**options)
        return self._stream(text, request)

    def _stream(self, text: str, request: Request) -> Iterator[str | Explanation]:
        for event in self._events(text, request):
            if event.kind == "lexeme":
                yield event.text
            elif event.kind == "done":
                yield event.explanation

    def explain(self, topic: str, **options) -> Explanation:
        """Explain ``topic`` in emoji. See ``emogram.explain`` for the options."""
        text = clean_topic(topic)
        request = build_request(**options)
        return self._finish(text, request, self.engine.explain(text, request))

    def explain_many(self, topics: Iterable[str], *, progress: bool | None = None,
                     **options) -> list[Explanation]:
        """Explain each topic in turn (the shared prompt is evaluated once). A progress bar is drawn
        on stderr when it is a terminal, or when ``progress=True``."""
        items = list(topics)
        for t in items:
            clean_topic(t)  # fail before any work
        show = sys.stderr.isatty() if progress is None else bool(progress)
        seed = options.pop("seed", None)
        out = []
        for k, topic in enumerate(items):
            if show:
                _progress(k, len(items), topic)
            out.append(self.explain(topic, seed=None if seed is None else seed + k, **options))
        if show:
            _progress(len(items), len(items), "")
            sys.stderr.write("\n")
        return out

    def explain_iter(self, topics: Iterable[str], *, seed: int | Sequence[int] | None = None,
                     batch_size: int | None = None, **options) -> Iterator[tuple[int, Explanation | EmogramError]]:
        """Yield ``(index, explanation)`` for each topic as it finishes (finish order, which may
        differ from input order), or ``(index, error)`` for a topic that failed on its own (e.g. too
        long): a bad topic never stops the others. ``seed`` is one int for every topic, or one per
        topic. Options are checked before any work; a bad option raises at once."""
        items = list(topics)
        seeds = _per_topic_seeds(seed, len(items))
        build_request(**options)  # check the options once, before any work
        for k, topic in enumerate(items):
            try:
                yield k, self.explain(topic, seed=seeds[k], **options)
            except EmogramError as exc:
                yield k, exc

    def _finish(self, topic: str, request: Request, result) -> Explanation:
        try:
            tree = parse(result.text, grammar=request.grammar)
        except Exception as exc:  # by construction unreachable: say so loudly if it happens
            raise DecodingError(f"internal error: decoded text does not parse ({exc})") from exc
        return replace(tree, topic=topic, reasoning=result.reasoning, stats=result.stats,
                       model=self.model.name)


def _per_topic_seeds(seed, n: int) -> list[int | None]:
    if seed is None or isinstance(seed, int) and not isinstance(seed, bool):
        return [seed] * n
    if isinstance(seed, (list, tuple)):
        if len(seed) != n:
            raise InputError(f"seed holds {len(seed)} seeds for {n} topics; give one per topic")
        for s in seed:
            seed_state(s)  # type check
        return list(seed)
    raise InputTypeError(f"seed must be an int or a sequence of ints, not {type(seed).__name__}")


def _progress(done: int, total: int, topic: str) -> None:
    width = 24
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {topic[:40]:40s}")
    sys.stderr.flush()


_ENGINES: dict[int, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(model) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(id(model))
        if engine is None or engine.model is not model:
            engine = _ENGINES[id(model)] = Engine(model)
        return engine


def _explainer(model, device: str) -> Explainer:
    return Explainer(model, device=device)


def explain(topic: str, *, model: str | os.PathLike[str] | None = None, device: str = "auto",
            lines: int | tuple[int, int] | None = None, steps: int | tuple[int, int] | None = None,
            emoji_per_group: int | tuple[int, int] | None = None,
            operators: Sequence[str | Operator] | str | None = None,
            palette: str | Iterable[str] | None = None, emoji_version: str | float | None = None,
            exclude: str | Iterable[str] | None = None, temperature: float | None = None,
            seed: int | None = None, think: bool = False, max_tokens: int | None = None,
            **more) -> Explanation:
    """Explain ``topic`` in emoji only.

    ``model``: a preset name (``emogram models``), a ``.gguf`` path, ``hf:OWNER/REPO[:GLOB]``, or
    None for ``$EMOGRAM_MODEL`` or the default. ``lines``, ``steps`` (groups per line) and
    ``emoji_per_group`` are an int or a (min, max) pair. ``palette`` limits the emoji to a given
    set; ``emoji_version`` to those a phone of that Emoji version shows. ``seed`` makes the answer
    reproducible. ``think`` lets the model reason in words first (returned as ``.reasoning``).
    ``max_tokens`` is the answer's budget: the answer always ends complete within it.
    More sampling knobs: ``top_k``, ``top_p``, ``min_p``, ``repeat_penalty`` (pull away from emoji
    already used), ``filler_penalty`` (pull away from plain coloured shapes), ``max_think_tokens``,
    ``emoji_filter``.
    """
    return _explainer(model, device).explain(
        topic, lines=lines, steps=steps, emoji_per_group=emoji_per_group, operators=operators,
        palette=palette, emoji_version=emoji_version, exclude=exclude, temperature=temperature,
        seed=seed, think=think, max_tokens=max_tokens, **more)


def stream(topic: str, *, model: str | os.PathLike[str] | None = None, device: str = "auto",
           **options) -> Iterator[str | Explanation]:
    """Like ``explain`` but yields each emoji and operator as it is decoded; the last item is the
    ``Explanation``."""
    return _explainer(model, device).stream(topic, **options)


def explain_many(topics: Iterable[str], *, model: str | os.PathLike[str] | None = None,
                 device: str = "auto", progress: bool | None = None, **options) -> list[Explanation]:
    """Explain several topics with one model load; a progress bar shows on a terminal."""
    return _explainer(model, device).explain_many(topics, progress=progress, **options)
