"""Checking what callers pass, before any model work: the topic and every option.

Each bad value raises an ``InputError`` (a ``ValueError``) or ``InputTypeError`` (a ``TypeError``)
naming the argument, so a typo fails at once rather than after a model load, and nothing odd
reaches llama.cpp.
"""

from __future__ import annotations

import difflib
import math
import unicodedata

from .decoding.engine import Request
from .decoding.sampling import SamplingParams, seed_state
from .errors import InputError, InputTypeError
from .knowledge.prompts import EXAMPLES
from .language.grammar import Operator, Shape, compile_grammar
from .language.unicode import DEFAULT_EMOJI_VERSION, LATEST, EmojiFilter, split_emoji

MAX_TOPIC_CHARS = 300
DEFAULT_MAX_TOKENS = 96
MAX_TOKENS_CEILING = 1024
MAX_CANDIDATES = 64
UNSET: object = type("Unset", (), {"__repr__": lambda self: "UNSET"})()  # an option not given


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
                  emoji_version=UNSET, exclude=None, emoji_filter: EmojiFilter | None = None,
                  temperature: float | None = None, top_k: int | None = None,
                  top_p: float | None = None, min_p: float | None = None,
                  repeat_penalty: float | None = None, filler_penalty: float | None = None,
                  partial_penalty: float | None = None,
                  seed: int | None = None,
                  think: bool = False, max_tokens: int | None = None,
                  max_think_tokens: int | None = None, hint: float | None = None,
                  examples: int | None = None, candidates: int | None = None,
                  plan: bool | None = None, lexicon: bool | float | None = None,
                  bank: object = None, **unknown: object) -> Request:
    """Turn keyword arguments into an engine request, checking each one."""
    if unknown:
        raise _unknown_option(sorted(unknown)[0])
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
        elif isinstance(operators, Operator):
            operators = [operators]
        try:
            shape_args["operators"] = tuple(operators)
        except TypeError:
            raise InputTypeError(f"operators must be a str of operator emoji or an iterable of "
                                 f"them, not {type(operators).__name__}") from None
    shape = Shape(**shape_args)
    if emoji_filter is not None:
        if not isinstance(emoji_filter, EmojiFilter):
            raise InputTypeError(f"emoji_filter must be an EmojiFilter, not {type(emoji_filter).__name__}")
        if palette is not None or emoji_version not in (UNSET, None) or exclude is not None:
            raise InputError("give either emoji_filter or palette/emoji_version/exclude, not both")
        flt = emoji_filter
    else:
        flt = EmojiFilter.make(emoji_version=emoji_version_for(emoji_version, palette),
                               palette=palette, exclude=exclude or ())
        if flt.palette is not None and not flt.palette:
            raise InputError("palette is empty; give at least one emoji (e.g. palette='🍎🍌🍇')")
    grammar = compile_grammar(shape, flt)
    if partial_penalty is None and plan is not False and not think:
        partial_penalty = GLOSS_PARTIAL_PENALTY
    knobs = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                 repeat_penalty=repeat_penalty, filler_penalty=filler_penalty,
                 partial_penalty=partial_penalty)
    params = SamplingParams(**{k: v for k, v in knobs.items() if v is not None})
    if not isinstance(think, bool):
        raise InputTypeError(f"think must be True or False, not {type(think).__name__}")
    budget = positive_int(max_tokens, "max_tokens", DEFAULT_MAX_TOKENS)
    think_budget = positive_int(max_think_tokens, "max_think_tokens", 96)
    check_seed(seed)
    if hint is not None:
        if isinstance(hint, bool) or not isinstance(hint, (int, float)):
            raise InputTypeError(f"hint must be a number, not {type(hint).__name__}")
        if not math.isfinite(hint):
            raise InputError(f"hint must be finite, got {hint}")
    n_examples = len(EXAMPLES) if examples is None else examples
    if isinstance(n_examples, bool) or not isinstance(n_examples, int):
        raise InputTypeError(f"examples must be an int, not {type(n_examples).__name__}")
    if not 0 <= n_examples <= len(EXAMPLES):
        raise InputError(f"examples must be an int from 0 to {len(EXAMPLES)}, got {examples!r}")
    n_candidates = 1 if candidates is None else candidates
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, int):
        raise InputTypeError(f"candidates must be an int, not {type(n_candidates).__name__}")
    if not 1 <= n_candidates <= MAX_CANDIDATES:
        raise InputError(f"candidates must be between 1 and {MAX_CANDIDATES}, got {n_candidates}")
    if plan is not None and not isinstance(plan, bool):
        raise InputTypeError(f"plan must be True or False, not {type(plan).__name__}")
    return Request(grammar=grammar, params=params, seed=seed, max_tokens=budget, think=think,
                   max_think_tokens=think_budget, hint=float(hint or 0.0), examples=n_examples,
                   candidates=n_candidates, plan=True if plan is None else plan,
                   lexicon=lexicon_weight(lexicon), bank=bank_option(bank))


def bank_option(bank: object) -> tuple[str, ...] | None:
    """``bank``: None or True for the shipped bank, False for none, a path or paths of the user's
    banks (read before the shipped one). Each file is read and checked here, once while it is
    unchanged, so a bad line fails before any model work (``BankError``, naming file and line)."""
    from .knowledge.bank import bank_paths, user_entries
    paths = bank_paths(bank)
    if paths:
        user_entries(paths)
    return paths


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


OPTIONS = ("lines", "steps", "emoji_per_group", "operators", "palette", "emoji_version", "exclude",
           "emoji_filter", "temperature", "top_k", "top_p", "min_p", "repeat_penalty",
           "filler_penalty", "partial_penalty", "seed", "think", "max_tokens", "max_think_tokens",
           "hint", "examples", "candidates", "plan", "lexicon", "bank")


def _unknown_option(name: str) -> InputTypeError:
    near = difflib.get_close_matches(name, OPTIONS + ("model", "device"), n=1)
    hint = f"; did you mean {near[0]!r}?" if near else f"; the options are {', '.join(OPTIONS)}"
    return InputTypeError(f"unknown option {name!r}{hint}")


def check_seed(seed: object) -> None:
    """``seed`` is None or an int (any int: it is taken modulo 2**64)."""
    if seed is not None:
        seed_state(seed)  # type: ignore[arg-type]


def topic_list(topics: object) -> list:
    """The topics of a many-topic call as a list (not yet cleaned): any iterable but a str."""
    if isinstance(topics, (str, bytes, bytearray)):
        raise InputTypeError(f"topics must be an iterable of str (a list of topics), not a "
                             f"{type(topics).__name__}; for one topic use explain()")
    try:
        return list(topics)  # type: ignore[call-overload]
    except TypeError:
        raise InputTypeError(f"topics must be an iterable of str, not {type(topics).__name__}") from None


def positive_int(value, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_TOKENS_CEILING:
        raise InputError(f"{name} must be between 1 and {MAX_TOKENS_CEILING}, got {value}")
    return value


def per_topic_seeds(seed, n: int) -> list[int | None]:
    """One seed per topic: the same int for all, or a sequence of n ints."""
    if seed is None or isinstance(seed, int) and not isinstance(seed, bool):
        return [seed] * n
    if isinstance(seed, (list, tuple)):
        if len(seed) != n:
            raise InputError(f"seed holds {len(seed)} seeds for {n} topics; give one per topic")
        for s in seed:
            seed_state(s)  # type check
        return list(seed)
    raise InputTypeError(f"seed must be an int or a sequence of ints, not {type(seed).__name__}")


# A glossed answer's group is one emoji or two: a byte piece that starts a character is then more
# often the start of an odd, rare one. Tune half, seeds 0-2, penalty 4 against 6: precision against
# ELCo .464/.458, against topics to explain .488/.509 (bench/quality.py; 2 is the direct answer's).
GLOSS_PARTIAL_PENALTY = 6.0
DEFAULT_LEXICON = 2.0  # logits added to the lexicon's emoji for a part (bench/quality.py, tune half)


def lexicon_weight(value) -> float:
    """``lexicon``: True (the default weight), False (off), or a weight in logits."""
    import math
    if value is None or value is True:
        return DEFAULT_LEXICON
    if value is False:
        return 0.0
    if not isinstance(value, (int, float)):
        raise InputTypeError(f"lexicon must be True, False or a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InputError(f"lexicon must be a finite weight >= 0, got {value}")
    return float(value)
