"""Each option is declared once (``emogram/option_table.py``) and reaches every surface derived from
it: ``build_request`` (the option changes the request), the flags of ``emogram``, ``emogram batch``
and ``emogram grammar``, what ``emogram serve`` forwards, ``explain``'s docstring, the docs' table
(``markdown_table``), the query parameters of examples/async_server.py and the option fuzz.

The last tests plant the two ways a table drifts from a surface (an option in the table alone, a
flag missing from a parser) and see ``missing_surfaces`` name them. Pure Python: no model loads.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

import emogram
from emogram import EmojiFilter, cli, option_table, server
from emogram.errors import EmogramError
from emogram.option_table import TABLE, Flag, Option, spellings
from emogram.options import build_request, markdown_table

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "async_server.py"

# a value for each option that differs from its default, as Python and on the command line
SAMPLES = {
    "lines": (2, "2"), "steps": (1, "1"), "emoji_per_group": (1, "1"), "operators": ("➡️", "➡️"),
    "palette": ("🍎🍌", "🍎🍌"), "emoji_version": ("12.0", "12.0"), "exclude": ("🍎", "🍎"),
    "emoji_filter": (EmojiFilter(flags=False), None), "seed": (5, "5"), "temperature": (0.9, "0.9"),
    "max_tokens": (20, "20"), "think": (True, None), "top_k": (5, None), "top_p": (0.5, None),
    "min_p": (0.2, None), "repeat_penalty": (1.0, None), "filler_penalty": (0.5, None),
    "partial_penalty": (1.0, None), "max_think_tokens": (10, None), "hint": (1.0, None),
    "examples": (2, None), "candidates": (2, "2"), "plan": (False, None), "lexicon": (1.0, "1"),
    "bank": (False, "mine.jsonl"),
}


def _request_fields(request) -> dict:
    fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
    fields["grammar"] = fields["grammar"].gbnf
    return fields


def reaches_build_request(option: Option) -> bool:
    """Given a value other than its default, the option changes the request."""
    if option.name not in SAMPLES:
        return False
    try:
        changed = build_request(**{option.name: SAMPLES[option.name][0]})
    except EmogramError:
        return False
    return _request_fields(changed) != _request_fields(build_request())


def reaches_parser(option: Option, command: str, parser) -> bool:
    """Every spelling of the option's flag parses on ``command`` into the option, by name."""
    assert option.flag is not None
    sample = SAMPLES.get(option.name, (None, "1"))[1] or "1"
    topic = ["tea"] if command == "explain" else []
    for spelling in spellings(option.flag):
        takes_value = spelling == option.flag.spelling and option.flag.settings.get("action") not in (
            "store_true", option_table.argparse.BooleanOptionalAction)
        try:
            args = parser.parse_args(topic + [spelling] + ([sample] if takes_value else []))
        except SystemExit:
            return False
        if option.name not in option_table.flag_values(args, command):
            return False
    return True


def served(option: Option) -> bool:
    """``emogram serve`` takes an explain command with the flag and hands the server's ``cli.run``
    the same arguments (the request's argv survives the protocol unchanged)."""
    assert option.flag is not None
    argv = ["tea", option.flag.spelling, SAMPLES.get(option.name, (None, "1"))[1] or "1"]
    request = {"identity": "x", "settings": {}, "argv": argv, "cwd": "/", "tty": [False, False]}
    return cli._explains(argv) and server.parse_request(json.dumps(request).encode())["argv"] == argv


def _example():
    spec = importlib.util.spec_from_file_location("async_server_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_example(option: Option, example) -> bool:
    """The option (if it has a text form) is a query parameter of examples/async_server.py."""
    if option.kind == "other":
        return True
    known = example.INT_OPTIONS | example.FLOAT_OPTIONS | example.TEXT_OPTIONS | example.BOOL_OPTIONS
    return option.name in known


def missing_surfaces(option: Option, parsers=None, example=None) -> list[str]:
    """The surfaces ``option`` does not reach: an empty list when it reaches them all."""
    parsers = parsers or {name: make() for name, make in cli.PARSERS.items()}
    example = example or _example()
    missing = []
    if not reaches_build_request(option):
        missing.append("build_request")
    if option.flag is not None:
        for command in sorted(option.flag.commands):
            if not reaches_parser(option, command, parsers[command]):
                missing.append(f"emogram {command}")
        if option.flag.commands & {"explain"} and not served(option):
            missing.append("serve")
    if f"``{option.name}``" not in (emogram.explain.__doc__ or ""):
        missing.append("explain docstring")
    if f"| `{option.name}` |" not in markdown_table():
        missing.append("markdown_table")
    if not in_example(option, example):
        missing.append("examples/async_server.py")
    return missing


def test_every_option_reaches_every_surface():
    parsers = {name: make() for name, make in cli.PARSERS.items()}
    example = _example()
    gaps = {o.name: missing_surfaces(o, parsers, example) for o in TABLE}
    assert {name: gap for name, gap in gaps.items() if gap} == {}


def test_the_samples_and_the_fuzz_cover_the_table():
    """A new option needs a sample here and a strategy in the fuzz (its set check is the table's)."""
    assert set(SAMPLES) == set(option_table.NAMES)
    fuzz = Path(__file__).resolve().parent / "fuzz_options.py"
    assert "set(SANE) == set(OPTIONS)" in fuzz.read_text(encoding="utf-8")


def test_build_request_takes_the_table_and_nothing_else():
    with pytest.raises(emogram.InputTypeError, match="unknown option 'sed'; did you mean 'seed'"):
        build_request(sed=1)
    request = build_request()
    for o in TABLE:
        if o.check is not None and o.name not in ("bank", "emoji_filter"):
            assert getattr(request, o.name) == o.default, o.name


def test_the_request_defaults_are_the_tables():
    """The engine's ``Request`` defaults where the table has one (one constant, in defaults.py)."""
    from emogram.decoding.engine import Request
    defaults = {f.name: f.default for f in dataclasses.fields(Request)}
    for name in ("max_tokens", "max_think_tokens", "lexicon", "examples", "candidates", "plan", "think", "hint"):
        assert defaults[name] == option_table.BY_NAME[name].default, name


def test_every_command_is_declared_once_and_the_epilog_names_each():
    epilog = cli._parser().epilog
    for command in cli.COMMANDS:
        if command.name != "explain":
            assert f"emogram {command.name}" in epilog
        assert not cli._explains([command.name, "x"]) or command.name == "explain"


# -- the plants: a table that drifts from a surface is seen ------------------------------------------

def test_planted_an_option_in_the_table_alone_is_seen(monkeypatch):
    """A new Option with a flag, added to the table and nothing else: build_request accepts the
    name but the request ignores it, and the docstring (made at import, before the plant) lacks it.
    The parsers, the docs' table and the example's sets are made from the table: they have it."""
    fake = Option("sparkle", "float", "float", 0.0, "more sparkle", flag=Flag("--sparkle", "made",
                                                                              settings=dict(type=float)))
    table = TABLE + (fake,)
    monkeypatch.setattr(option_table, "TABLE", table)
    monkeypatch.setattr(option_table, "BY_NAME", {o.name: o for o in table})
    monkeypatch.setattr(option_table, "NAMES", tuple(o.name for o in table))
    monkeypatch.setattr("emogram.options.TABLE", table)
    monkeypatch.setattr("emogram.options.BY_NAME", {o.name: o for o in table})
    monkeypatch.setitem(SAMPLES, "sparkle", (2.0, "2"))
    assert missing_surfaces(fake) == ["build_request", "explain docstring"]


def test_planted_a_flag_missing_from_the_cli_is_seen(monkeypatch):
    """A parser made while the table lacked ``seed`` (a flag left out of the CLI): seen."""
    seed = option_table.BY_NAME["seed"]
    monkeypatch.setattr(option_table, "TABLE", tuple(o for o in TABLE if o.name != "seed"))
    incomplete = {name: make() for name, make in cli.PARSERS.items()}
    monkeypatch.undo()
    assert missing_surfaces(seed, incomplete) == ["emogram batch", "emogram explain"]
    assert missing_surfaces(seed) == []  # control: the real parsers have it
