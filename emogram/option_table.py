"""Every option of ``explain``, declared once: name, kind, default, limits, help, and its flag.

Everything else is derived from ``TABLE``: ``build_request``'s checks (``options.py``), the flags
of ``emogram``, ``emogram batch`` and ``emogram grammar`` (``add_flags``, ``flag_values``), the
option list of ``explain``'s docstring (``docstring_list``), the docs' table (``markdown_table``)
and the query parameters of examples/async_server.py (``Option.kind``). tests/test_option_table.py
checks that each option reaches each of them.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from . import checks
from .decoding.engine import Request
from .decoding.sampling import MAX_TOP_K, SamplingParams
from .defaults import DEVICES, DEFAULT_LEXICON, DEFAULT_MAX_TOKENS, GLOSS_PARTIAL_PENALTY, MAX_CANDIDATES, MAX_TOKENS_CEILING
from .errors import InputTypeError
from .knowledge.prompts import EXAMPLES
from .language.grammar import MAX_EMOJI_PER_GROUP, MAX_LINES, MAX_STEPS, Shape

UNSET: object = type("Unset", (), {"__repr__": lambda self: "UNSET"})()  # an option not given

EXPLAIN, BATCH, GRAMMAR = "explain", "batch", "grammar"
ALL_COMMANDS = frozenset({EXPLAIN, BATCH, GRAMMAR})
ANSWERING = frozenset({EXPLAIN, BATCH})  # the commands that make answers (not just a grammar)
# where a flag shows in --help: a titled group, or the parser's own options (None)
SECTIONS = {"source": None, "main": None, "shape": "shape of the answer", "made": "how the answer is made"}


def span(text: str) -> int | tuple[int, int]:
    """A count on the command line: '3' -> 3, '1-4' -> (1, 4)."""
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return int(lo), int(hi)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}") from None


@dataclass(frozen=True)
class Flag:
    """An option's command-line flag: ``spelling``, the argparse ``settings`` (type, metavar,
    action...), the --help line (``batch_help`` where ``emogram batch`` words it for many topics),
    and ``negative``: a second flag (``--no-bank``) setting the option to ``negative_value``."""

    spelling: str
    section: str
    commands: frozenset = ALL_COMMANDS
    settings: dict = field(default_factory=dict, compare=False)
    help: str | None = None
    batch_help: str | None = None
    negative: str | None = None
    negative_value: object = None
    negative_help: str | None = None
    exclusive: bool = False  # the flag and its negative in a mutually exclusive group


@dataclass(frozen=True)
class Option:
    """One option of ``explain``. ``default``: what the request holds when it is not given;
    ``check``: the given value -> the request's (None: checked where the request is assembled:
    the shape, the emoji filter, the sampling knobs). ``kind`` is how a text (a query parameter)
    becomes a value: ``int``, ``span``, ``float``, ``bool``, ``text`` or ``other`` (no text form)."""

    name: str
    kind: str
    type: str
    default: Any
    help: str
    limits: str = ""
    check: Callable[[Any], Any] | None = None
    flag: Flag | None = None
    none_is_default: bool = True  # None stands for "not given" (not so for think: a flag)
    shown: str | None = None  # the default as the docs show it, where not str(default)

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if isinstance(self.default, tuple) and len(self.default) == 2:
            return f"{self.default[0]}-{self.default[1]}"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def _tokens(name: str) -> Callable[[Any], int]:
    return lambda value: checks.whole(value, name, 1, MAX_TOKENS_CEILING)


def lexicon_weight(value) -> float:
    """``lexicon``: True (the default weight), False (off), or a weight in logits."""
    if value is None or value is True:
        return DEFAULT_LEXICON
    if value is False:
        return 0.0
    if not isinstance(value, (int, float)):
        raise InputTypeError(f"lexicon must be True, False or a number, not {type(value).__name__}")
    return checks.number(value, "lexicon", 0)


def bank_option(bank: object) -> tuple[str, ...] | None:
    """``bank``: None or True for the shipped bank, False for none, a path or paths of the user's
    banks (read before the shipped one). Each file is read and checked here, once while it is
    unchanged, so a bad line fails before any model work (``BankError``, naming file and line)."""
    from .knowledge.bank import bank_paths, user_entries
    paths = bank_paths(bank)
    if paths:
        user_entries(paths)
    return paths


def _emoji_filter(value):
    from .language.unicode import EmojiFilter
    if not isinstance(value, EmojiFilter):
        raise InputTypeError(f"emoji_filter must be an EmojiFilter, not {type(value).__name__}")
    return value


def _sampling(name: str, help: str, limits: str, kind: str = "float", flag: Flag | None = None) -> Option:
    """A sampling knob: its default is ``SamplingParams``', which checks it too."""
    return Option(name, kind, "int" if kind == "int" else "float", getattr(SamplingParams, name), help, limits,
                  flag=flag)


_SHAPE = Shape()
_REQUEST = {f.name: f.default for f in dataclasses.fields(Request)}  # the engine's defaults
_COUNT = "int, or a (min, max) pair"
_EMOJI = "str of emoji, or an iterable of them"

TABLE: tuple[Option, ...] = (
    Option("lines", "span", _COUNT, _SHAPE.lines, "number of lines", f"1 to {MAX_LINES}",
           flag=Flag("--lines", "shape", settings=dict(type=span, metavar="N|MIN-MAX"),
                     help="number of lines (default 1-4)")),
    Option("steps", "span", _COUNT, _SHAPE.steps, "groups per line", f"1 to {MAX_STEPS}",
           flag=Flag("--steps", "shape", settings=dict(type=span, metavar="N|MIN-MAX"),
                     help="groups per line (default 1-3)")),
    Option("emoji_per_group", "span", _COUNT, _SHAPE.emoji_per_group, "emoji per group",
           f"1 to {MAX_EMOJI_PER_GROUP}",
           flag=Flag("--emoji-per-group", "shape", settings=dict(type=span, metavar="N|MIN-MAX"),
                     help="default 1-3")),
    Option("operators", "text", "str of operator emoji, or an iterable of them", None,
           "the operators allowed between groups", "the emoji of `Operator`", shown="all",
           flag=Flag("--operators", "shape", settings=dict(metavar="EMOJI"),
                     help="operators allowed between groups, e.g. '➡️➕'")),
    Option("palette", "text", _EMOJI, None, "only these emoji", "fully-qualified emoji", shown="any",
           flag=Flag("--palette", "shape", settings=dict(metavar="EMOJI"), help="only these emoji, e.g. '🍎🍌🍇🥝'")),
    Option("emoji_version", "text", "str or number, or None", UNSET,
           "only emoji up to this Emoji version (None or 'latest': all)", "0.6 up to the newest",
           none_is_default=False, shown="15.1 (none with a palette)",
           flag=Flag("--emoji-version", "shape", settings=dict(metavar="X.Y"),
                     help="only emoji up to this Emoji version (default 15.1: what readers' fonts draw today; "
                          "'latest': all of Emoji 18.0)")),
    Option("exclude", "text", _EMOJI, None, "never these emoji", shown="none",
           flag=Flag("--exclude", "shape", settings=dict(metavar="EMOJI"), help="never these emoji")),
    Option("emoji_filter", "other", "EmojiFilter", None,
           "the emoji allowed, as one object (instead of palette, emoji_version and exclude)",
           check=_emoji_filter, shown="none"),
    Option("seed", "int", "int or None", _REQUEST["seed"], "same seed, same answer (None: a random one)", "any int",
           check=checks.seed,
           flag=Flag("--seed", "main", ANSWERING, dict(type=int), help="same seed, same answer",
                     batch_help="the seed of every topic (default: a random one each, recorded)")),
    _sampling("temperature", "sampling temperature (0: always the likeliest token)", ">= 0",
              flag=Flag("--temperature", "main", ANSWERING, dict(type=float))),
    Option("max_tokens", "int", "int", _REQUEST["max_tokens"],
           "the answer's token budget: it always ends complete within it", f"1 to {MAX_TOKENS_CEILING}",
           check=_tokens("max_tokens"),
           flag=Flag("--max-tokens", "main", ANSWERING, dict(type=int),
                     help=f"token budget of the answer (default {DEFAULT_MAX_TOKENS})",
                     batch_help=f"token budget of each answer (default {DEFAULT_MAX_TOKENS})")),
    Option("think", "bool", "bool", _REQUEST["think"], "let the model reason in words first (``.reasoning``)",
           check=lambda value: checks.flag(value, "think"), none_is_default=False,
           flag=Flag("--think", "main", ANSWERING, dict(action="store_true", default=None),
                     help="let the model reason in words first")),
    _sampling("top_k", "keep the k likeliest tokens (0: all)", f"0 to {MAX_TOP_K}", "int"),
    _sampling("top_p", "keep the likeliest tokens up to this probability mass", "(0, 1]"),
    _sampling("min_p", "drop tokens under this share of the likeliest one's probability", "[0, 1)"),
    _sampling("repeat_penalty", "logits off an emoji per earlier use", ">= 0"),
    _sampling("filler_penalty", "logits off plain coloured shapes (🟨 🔵)", ">= 0"),
    Option("partial_penalty", "float", "float", None, "logits off tokens that hold only part of a character",
           ">= 0", shown=f"{SamplingParams.partial_penalty:g} ({GLOSS_PARTIAL_PENALTY:g} when planned)"),
    Option("max_think_tokens", "int", "int", _REQUEST["max_think_tokens"], "the thinking's token budget",
           f"1 to {MAX_TOKENS_CEILING}", check=_tokens("max_think_tokens")),
    Option("hint", "float", "float", _REQUEST["hint"], "logit bonus for emoji whose names share a word with the topic",
           "finite", check=lambda value: checks.number(value, "hint")),
    Option("examples", "int", "int", _REQUEST["examples"], "worked examples in the prompt", f"0 to {len(EXAMPLES)}",
           check=lambda value: checks.whole(value, "examples", 0, len(EXAMPLES))),
    Option("candidates", "int", "int", _REQUEST["candidates"], "decode this many answers side by side and keep the one covering "
           "the topic best", f"1 to {MAX_CANDIDATES}",
           check=lambda value: checks.whole(value, "candidates", 1, MAX_CANDIDATES),
           flag=Flag("--candidates", "made", settings=dict(type=int, metavar="N"),
                     help="decode N answers side by side and keep the one covering the topic best (default 1)")),
    Option("plan", "bool", "bool", _REQUEST["plan"], "name each part in words, then its emoji (False: answer directly)",
           check=lambda value: checks.flag(value, "plan"),
           flag=Flag("--plan", "made", settings=dict(action=argparse.BooleanOptionalAction, default=None),
                     help="name each part in words, then its emoji (default: on; --no-plan answers directly)")),
    Option("lexicon", "float", "bool or float", _REQUEST["lexicon"],
           "logit bonus for the emoji the lexicon relates to a part's words (True: the default, False: off)",
           ">= 0", check=lexicon_weight,
           flag=Flag("--lexicon", "made", settings=dict(type=float, metavar="WEIGHT"),
                     help=f"logit bonus for the emoji the lexicon relates to a part's words "
                          f"(default {DEFAULT_LEXICON:g}; 0 = off)",
                     negative="--no-lexicon", negative_value=0.0, negative_help="the same as --lexicon 0")),
    Option("bank", "other", "path, list of paths, or bool", (), "explanations to follow and read: None or "
           "True the shipped bank, paths your own (read first), False none", check=bank_option, shown="the shipped bank",
           flag=Flag("--bank", "source", ANSWERING, dict(action="append", metavar="PATH"),
                     help="a bank of explanations of your own (JSONL, as the shipped bank), read before "
                          "the shipped one; give it again for more",
                     negative="--no-bank", negative_value=False,
                     negative_help="no bank: the model answers from what it knows", exclusive=True)),
)
BY_NAME = {option.name: option for option in TABLE}
NAMES = tuple(BY_NAME)


def add_model_flags(parser: argparse.ArgumentParser, model_help: str) -> None:
    """``--model`` and ``--device``: the load arguments of every command that loads a model."""
    parser.add_argument("--model", "-m", help=model_help)
    parser.add_argument("--device", choices=DEVICES, default="auto")


def add_flags(parser: argparse.ArgumentParser, command: str, section: str) -> None:
    """Add the flags of ``command`` that show in ``section`` (``SECTIONS``), in table order."""
    wanted = [o for o in TABLE if o.flag and o.flag.section == section and command in o.flag.commands]
    if not wanted:
        return
    title = SECTIONS[section]
    target: Any = parser.add_argument_group(title) if title else parser
    for option in wanted:
        flag = option.flag
        assert flag is not None
        help_ = flag.batch_help if command == BATCH and flag.batch_help else flag.help
        into = target.add_mutually_exclusive_group() if flag.exclusive else target
        into.add_argument(flag.spelling, dest=option.name, help=help_, **flag.settings)
        if flag.negative:
            into.add_argument(flag.negative, dest=option.name, action="store_const",
                              const=flag.negative_value, help=flag.negative_help)


def spellings(flag: Flag) -> list[str]:
    """Every flag a user may type for an option (``--plan``, ``--no-plan``)."""
    out = [flag.spelling]
    if flag.settings.get("action") is argparse.BooleanOptionalAction:
        out.append("--no-" + flag.spelling[2:])
    return out + ([flag.negative] if flag.negative else [])


def flag_values(args: argparse.Namespace, command: str) -> dict:
    """The options given on ``command``'s command line, by name (flags not given are left out)."""
    return {o.name: getattr(args, o.name) for o in TABLE
            if o.flag and command in o.flag.commands and getattr(args, o.name, None) is not None}


def docstring_list() -> str:
    """The options, one per line, for ``explain``'s docstring."""
    lines = ["Options (each checked before any model work; ``emogram.options.TABLE``):", ""]
    for o in TABLE:
        lines.append(f"- ``{o.name}`` ({o.type}, default {o.default_text}): {o.help}.")
    return "\n".join(lines)


def markdown_table() -> str:
    """The options as a Markdown table for the docs site: name, CLI flag, type, default, help."""
    rows = ["| option | flag | type | default | what it does |", "|---|---|---|---|---|"]
    for o in TABLE:
        flag = "" if o.flag is None else ", ".join(f"`{s}`" for s in spellings(o.flag))
        limits = f" ({o.limits})" if o.limits else ""
        cells = [f"`{o.name}`", flag, o.type + limits, o.default_text, o.help]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def unknown_option(name: str, also: tuple[str, ...] = ("model", "device")) -> InputTypeError:
    import difflib
    near = difflib.get_close_matches(name, NAMES + also, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else f"; the options are {', '.join(NAMES)}"
    return InputTypeError(f"unknown option {name!r}{hint}")


__all__ = ["TABLE", "NAMES", "BY_NAME", "Option", "Flag", "UNSET", "add_flags", "flag_values",
           "docstring_list", "markdown_table", "span", "unknown_option"]
