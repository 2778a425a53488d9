"""Checking what callers pass, before any model work: the topic and every option.

Each bad value raises an ``InputError`` (a ``ValueError``) or ``InputTypeError`` (a ``TypeError``)
naming the argument, so a typo fails at once rather than after a model load, and nothing odd
reaches llama.cpp.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any, cast

from .decoding.engine import Request
from . import checks
from .decoding.sampling import SamplingParams
from .defaults import GLOSS_PARTIAL_PENALTY
from .errors import InputError, InputTypeError
from .language.grammar import Operator, Shape, compile_grammar
from .language.unicode import DEFAULT_EMOJI_VERSION, LATEST, EmojiFilter, split_emoji
from .option_table import BY_NAME, NAMES, TABLE, UNSET, markdown_table, unknown_option

MAX_TOPIC_CHARS = 300
OPTIONS = NAMES  # every option of explain, in the table's order

__all__ = ["build_request", "clean_topic", "markdown_table", "OPTIONS", "TABLE", "UNSET"]


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


def build_request(**options: object) -> Request:
    """Turn keyword arguments into an engine request, checking each one. The options, their
    defaults and their checks are ``option_table.TABLE``'s; here they are put together: the shape,
    the emoji allowed and the grammar, the sampling knobs, then each option's own check, in the
    table's order."""
    for name in options:
        if name not in BY_NAME:
            raise unknown_option(sorted(set(options) - set(BY_NAME))[0])
    raw: dict[str, Any] = {o.name: options.get(o.name, UNSET) for o in TABLE}
    plain: dict[str, Any] = {name: None if value is UNSET else value for name, value in raw.items()}
    grammar = compile_grammar(_shape(plain), _emoji_filter(plain, raw["emoji_version"]))
    partial = plain["partial_penalty"]
    if partial is None and plain["plan"] is not False and not plain["think"]:
        partial = GLOSS_PARTIAL_PENALTY
    knobs = {**{name: plain[name] for name in SAMPLING_KNOBS}, "partial_penalty": partial}
    params = SamplingParams(**{k: v for k, v in knobs.items() if v is not None})
    value: dict[str, Any] = {}
    for o in TABLE:
        if o.check is not None:
            given = raw[o.name]
            unset = given is UNSET or given is None and o.none_is_default
            value[o.name] = o.default if unset else o.check(given)
    return Request(grammar=grammar, params=params, **{k: v for k, v in value.items() if k in REQUEST_FIELDS})


REQUEST_FIELDS = {f.name for f in dataclasses.fields(Request)}  # the options the request holds as given
SAMPLING_KNOBS = tuple(f.name for f in dataclasses.fields(SamplingParams) if f.name != "partial_penalty")
SHAPE_COUNTS = tuple(f.name for f in dataclasses.fields(Shape) if f.name != "operators")  # lines, steps, ...


def _shape(raw: dict) -> Shape:
    """The shape options (``Shape`` checks the counts); operators as a str of emoji, one
    ``Operator``, or an iterable of them."""
    shape_args = {name: raw[name] for name in SHAPE_COUNTS if raw[name] is not None}
    operators = raw["operators"]
    if operators is not None:
        if isinstance(operators, str):
            operators = split_emoji(operators) if operators.strip() else []
        elif isinstance(operators, Operator):
            operators = [operators]
        try:
            shape_args["operators"] = tuple(operators)
        except TypeError:
            raise InputTypeError(f"operators must be a str of operator emoji or an iterable of "
                                 f"them, not {type(operators).__name__}") from None
    return Shape(**shape_args)


def _emoji_filter(raw: dict, version: object) -> EmojiFilter:
    """The emoji an answer may use: ``emoji_filter``, or one made of palette, emoji_version and
    exclude (never both)."""
    palette, exclude = raw["palette"], raw["exclude"]
    if raw["emoji_filter"] is not None:
        flt = BY_NAME["emoji_filter"].check(raw["emoji_filter"])  # type: ignore[misc]
        if palette is not None or version not in (UNSET, None) or exclude is not None:
            raise InputError("give either emoji_filter or palette/emoji_version/exclude, not both")
        return flt
    # the version as the caller gave it: EmojiFilter.make checks its type and value
    wanted = cast("str | float | None", emoji_version_for(version, palette))
    flt = EmojiFilter.make(emoji_version=wanted, palette=palette,
                           exclude=exclude or ())
    if flt.palette is not None and not flt.palette:
        raise InputError("palette is empty; give at least one emoji (e.g. palette='🍎🍌🍇')")
    return flt


def emoji_version_for(emoji_version: object = UNSET, palette: object = None) -> object:
    """The Emoji version an answer keeps to: ``emoji_version`` as given ("latest" and None: the
    whole inventory); when it is not given, ``DEFAULT_EMOJI_VERSION`` (15.1: what readers' fonts
    draw today), unless a palette names the emoji itself."""
    if emoji_version is not UNSET:
        return emoji_version
    return None if palette is not None else DEFAULT_EMOJI_VERSION


def recorded_options(options: dict) -> dict:
    """``options`` with the Emoji version they stand for written out (``"15.1"`` when none was
    given, ``"latest"`` for None), so a batch record replays the same answer after the default
    changes, and its key changes when the default does."""
    if "emoji_filter" in options:
        return options
    version = emoji_version_for(options.get("emoji_version", UNSET), options.get("palette"))
    if version is None and "emoji_version" not in options:
        return options  # a palette and no version: nothing to write out
    return {**options, "emoji_version": LATEST if version is None else
            str(version) if isinstance(version, float) else version}


def topic_list(topics: object) -> list:
    """The topics of a many-topic call as a list (not yet cleaned): any iterable but a str."""
    if isinstance(topics, (str, bytes, bytearray)):
        raise InputTypeError(f"topics must be an iterable of str (a list of topics), not a "
                             f"{type(topics).__name__}; for one topic use explain()")
    try:
        return list(topics)  # type: ignore[call-overload]
    except TypeError:
        raise InputTypeError(f"topics must be an iterable of str, not {type(topics).__name__}") from None


def per_topic_seeds(seed, n: int) -> list[int | None]:
    """One seed per topic: the same int for all, or a sequence of n ints."""
    if seed is None or isinstance(seed, int) and not isinstance(seed, bool):
        return [seed] * n
    if isinstance(seed, (list, tuple)):
        if len(seed) != n:
            raise InputError(f"seed holds {len(seed)} seeds for {n} topics; give one per topic")
        return [checks.whole(s, "seed") for s in seed]
    raise InputTypeError(f"seed must be an int or a sequence of ints, not {type(seed).__name__}")


