"""Every option is checked before any model work, each bad value one typed error naming it.

Most tests here pass a model path that does not exist: an option that slipped past the checks
would show up as a ``ModelError`` (the load was tried) instead of the expected ``InputError``.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys

import pytest

import emogram
from emogram import (EmojiFilter, Explainer, InputError, InputTypeError, ModelError, Shape,
                     compile_grammar)
from emogram.language.unicode import inventory, parse_version, versions
from emogram.options import build_request

NOWHERE = "/nonexistent/emogram-test-model.gguf"


@pytest.mark.parametrize("options, error, message", [
    (dict(top_k=2**31), InputError, "top_k must be between 0"),
    (dict(top_k=10**30), InputError, "top_k must be between 0"),
    (dict(top_k=-1), InputError, "top_k"),
    (dict(top_k=2.0), InputTypeError, "top_k must be an int"),
    (dict(hint=math.inf), InputError, "hint must be finite"),
    (dict(hint=-math.inf), InputError, "hint must be finite"),
    (dict(hint=math.nan), InputError, "hint must be finite"),
    (dict(hint="2"), InputTypeError, "hint must be a number"),
    (dict(temperature=math.nan), InputError, "temperature must be finite"),
    (dict(top_p=math.inf), InputError, "top_p must be finite"),
    (dict(emoji_version="nan"), InputError, "not a version number"),
    (dict(emoji_version="inf"), InputError, "not a version number"),
    (dict(emoji_version=math.nan), InputError, "finite"),
    (dict(emoji_version=math.inf), InputError, "finite"),
    (dict(emoji_version="1e1"), InputError, "not a version number"),
    (dict(emoji_version="99"), InputError, "newer than the newest"),
    (dict(emoji_version="18.1"), InputError, "newer than the newest"),
    (dict(emoji_version="E 15"), InputError, "not a version number"),
    (dict(emoji_version="0.1"), InputError, "older than the first"),
    (dict(emoji_version=[15]), InputTypeError, "emoji_version must be a string or number"),
    (dict(max_tokens=True), InputTypeError, "max_tokens must be an int"),
    (dict(max_tokens=2**70), InputError, "max_tokens must be between"),
    (dict(max_think_tokens=False), InputTypeError, "max_think_tokens"),
    (dict(palette=5), InputTypeError, "palette must be a str of emoji or an iterable"),
    (dict(palette=b"\xf0\x9f\x8d\x8e"), InputTypeError, "not bytes"),
    (dict(palette={1, 2}), InputTypeError, "palette must hold strings"),
    (dict(palette=set()), InputError, "palette is empty"),
    (dict(exclude=3.5), InputTypeError, "exclude must be"),
    (dict(operators=5), InputTypeError, "operators must be"),
    (dict(operators=[1]), InputTypeError, "an operator is an emoji"),
    (dict(operators=["plus"]), InputError, "unknown operator"),
    (dict(lines=(1, 2.0)), InputTypeError, "lines must be"),
    (dict(steps=(1, 10**30)), InputError, "steps: the maximum is 8"),
    (dict(seed="1"), InputTypeError, "seed must be an int"),
    (dict(seed=1.0), InputTypeError, "seed must be an int"),
    (dict(think="yes"), InputTypeError, "think must be True or False"),
    (dict(examples=2.0), InputTypeError, "examples must be an int"),
    (dict(examples=99), InputError, "examples must be between 0"),
    (dict(candidates=True), InputTypeError, "candidates must be an int"),
    (dict(emoji_filter="🍎"), InputTypeError, "emoji_filter must be an EmojiFilter"),
    (dict(emoji_filter=EmojiFilter(), palette="🍎"), InputError, "either emoji_filter"),
    (dict(temprature=1.0), InputTypeError, "unknown option 'temprature'; did you mean 'temperature'"),
    (dict(verbose=True), InputTypeError, "unknown option 'verbose'"),
])
def test_each_bad_option_is_one_typed_error_before_any_model_work(options, error, message):
    with pytest.raises(error, match=message):
        build_request(**options)
    with pytest.raises(error, match=message):  # not a ModelError: the path was never looked at
        emogram.explain("cats", model=NOWHERE, **options)


@pytest.mark.parametrize("device, error", [("banana", InputError), ("GPU", InputError), (0, InputTypeError),
                                           (["cpu"], InputTypeError), (None, InputTypeError)])
def test_a_bad_device_is_refused_before_the_model_path_is_looked_at(device, error):
    with pytest.raises(error, match="device must be"):
        emogram.explain("cats", model=NOWHERE, device=device)
    with pytest.raises(error, match="device must be"):
        Explainer(NOWHERE, device=device)
    with pytest.raises(error, match="device must be"):
        emogram.batch(["cats"], model=NOWHERE, device=device)


def _calls():
    """Each module-level door, called with ``topic`` and options; returns what it returned."""
    async def drain(agen):
        return [x async for x in agen]

    return {
        "explain": lambda t, **o: emogram.explain(t, **o),
        "stream": lambda t, **o: emogram.stream(t, **o),
        "aexplain": lambda t, **o: asyncio.run(emogram.aexplain(t, **o)),
        "astream": lambda t, **o: asyncio.run(drain(emogram.astream(t, **o))),
        "explain_many": lambda t, **o: emogram.explain_many([t, "tea"], **o),
        "explain_iter": lambda t, **o: list(emogram.explain_iter([t, "tea"], **o)),
        "batch": lambda t, **o: list(emogram.batch([t, "tea"], **o)),
    }


@pytest.mark.parametrize("door", list(_calls()))
@pytest.mark.parametrize("options, error", [
    (dict(top_k=2**40), InputError), (dict(emoji_version="nan"), InputError),
    (dict(hint=math.inf), InputError), (dict(palette=5), InputTypeError),
    (dict(seed="1"), InputTypeError), (dict(max_tokens=True), InputTypeError),
    (dict(lines=99), InputError), (dict(device="tpu"), InputError), (dict(nonsense=1), InputTypeError),
])
def test_every_module_level_door_checks_before_loading(door, options, error):
    """A bad option and a model path that does not exist: the option's error, never ModelError."""
    with pytest.raises(error):
        _calls()[door]("cats", model=NOWHERE, **options)


@pytest.mark.parametrize("door", list(_calls()))
def test_control_good_options_do_reach_the_model_path(door):
    """Control for the test above: with good options the same calls do look for the model."""
    with pytest.raises(ModelError, match="model file not found"):
        _calls()[door]("cats", model=NOWHERE, seed=1)


@pytest.mark.parametrize("topics, error", [
    ("tea", InputTypeError), (b"tea", InputTypeError), (5, InputTypeError),
    (["tea", ""], InputError), (["tea", None], InputTypeError), (["tea", "x" * 301], InputError),
])
def test_explain_many_checks_every_topic_before_loading(topics, error):
    with pytest.raises(error):
        emogram.explain_many(topics, model=NOWHERE)


@pytest.mark.parametrize("seed, error", [("1", InputTypeError), ([1, 2], InputTypeError),
                                         (1.5, InputTypeError), (True, InputTypeError)])
def test_explain_many_seed_is_one_int(seed, error):
    with pytest.raises(error, match="seed must be an int"):
        emogram.explain_many(["tea", "coffee"], model=NOWHERE, seed=seed)


@pytest.mark.parametrize("options, error", [
    (dict(seed=[1]), InputError), (dict(seed=["a", "b"]), InputTypeError), (dict(seed="1"), InputTypeError),
    (dict(batch_size=0), InputError), (dict(batch_size="8"), InputTypeError),
])
def test_explain_iter_checks_seeds_and_batch_size_before_loading(options, error):
    with pytest.raises(error):
        emogram.explain_iter(["tea", "coffee"], model=NOWHERE, **options)


def test_explain_many_checks_every_topic_before_the_first_is_explained(smol, monkeypatch):
    """A bad last topic: refused before any job reaches the scheduler (nothing decoded)."""
    ex = Explainer("smollm2-135m")
    submitted = []
    real = ex.engine.submit
    monkeypatch.setattr(ex.engine, "submit", lambda *a, **k: submitted.append(a) or real(*a, **k))
    steps = ex.engine.scheduler.steps
    with pytest.raises(InputError, match="topic is empty"):
        ex.explain_many(["tea", "coffee", "  "], seed=1, batch_size=1)
    assert submitted == [] and ex.engine.scheduler.steps == steps
    ex.explain_many(["tea"], seed=1, max_tokens=8)  # control: the spy does see real work
    assert len(submitted) == 1 and ex.engine.scheduler.steps > steps


# --- collections of emoji ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [list, tuple, set, frozenset, iter, dict.fromkeys],
                         ids=["list", "tuple", "set", "frozenset", "iterator", "dict"])
def test_palette_and_exclude_take_any_collection(make):
    expected = build_request(palette="🍎🍌👍🏽🇺🇸", exclude="🍌").grammar
    got = build_request(palette=make(["🍎", "🍌", "👍🏽", "🇺🇸"]), exclude=make(["🍌"])).grammar
    assert got == expected and set(got.emoji) == {"🍎", "👍🏽", "🇺🇸"}


def test_an_emoji_filter_built_directly_is_checked_and_hashable():
    f = EmojiFilter(palette={"🍎", "🍌"}, exclude=["🍌"], max_version="12.0")
    assert f == EmojiFilter.make(palette="🍎🍌", exclude="🍌", emoji_version=12)
    assert compile_grammar(Shape(), f).emoji == ("🍎",)
    with pytest.raises(InputError, match="finite"):
        EmojiFilter(max_version=math.nan)
    with pytest.raises(InputTypeError, match="flags must be True or False"):
        EmojiFilter(flags="no")
    with pytest.raises(InputError, match="not a fully-qualified emoji"):
        EmojiFilter(palette={"x"})


def test_emoji_versions_from_the_first_to_the_newest_are_accepted():
    known = sorted({i.version for i in inventory()})
    assert list(versions()) == known and known[0] == 0.6 and known[-1] == 18.0
    for v in known:
        assert parse_version(v) == v == parse_version(f"E{v}") == parse_version(str(v))
    assert parse_version(15) == 15.0 and parse_version(" e15 ") == 15.0
    # Between two versions: the older one's emoji (Emoji went from 5.0 to 11.0).
    assert EmojiFilter.make(emoji_version="6.0").select() == EmojiFilter.make(emoji_version="5.0").select()
    assert EmojiFilter.make(emoji_version=17.5).select() == EmojiFilter.make(emoji_version=17).select()
    for v in (0.5, 18.01, 19, math.nan, math.inf, -math.inf, "nan", "inf", "1e1", "15.0.1", "15,0"):
        with pytest.raises(InputError):
            parse_version(v)


# --- the extra that holds the strategies -----------------------------------------------------

def test_import_emogram_does_not_import_hypothesis():
    code = ("import sys, emogram; emogram.parse('📄'); import emogram.options; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_emogram_testing_without_hypothesis_says_what_to_install():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "try:\n    import emogram.testing\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'emogram.testing needs hypothesis: pip install "emogram[testing]"'
