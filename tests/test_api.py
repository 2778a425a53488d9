"""The public API: input checking before any model work, and what an Explanation carries."""

from __future__ import annotations

import pytest

import emogram
from emogram import Explainer, Explanation, InputError, InputTypeError, explain, explain_many, stream
from emogram.options import MAX_TOPIC_CHARS, clean_topic


def test_public_names():
    for name in emogram.__all__:
        assert hasattr(emogram, name)
    assert issubclass(emogram.InputError, ValueError) and issubclass(emogram.InputTypeError, TypeError)
    assert issubclass(emogram.ParseError, emogram.EmogramError)


@pytest.mark.parametrize("topic, error", [
    (None, InputTypeError), (42, InputTypeError), (b"bytes", InputTypeError),
    ("", InputError), ("   \n\t ", InputError), ("\x00\x01", InputError),
    ("x" * (MAX_TOPIC_CHARS + 1), InputError),
])
def test_bad_topics_are_refused(topic, error):
    with pytest.raises(error):
        explain(topic)


def test_topic_cleaning():
    assert clean_topic("  black\tholes\n\x07 ") == "black holes"
    assert clean_topic("x" * MAX_TOPIC_CHARS) == "x" * MAX_TOPIC_CHARS


@pytest.mark.parametrize("options, message", [
    (dict(lines=(3, 2)), "lines: the minimum"),
    (dict(lines=0), "at least 1"),
    (dict(emoji_per_group=99), "maximum is"),
    (dict(palette=""), "palette is empty"),
    (dict(palette="🍎x"), "'x'"),
    (dict(palette="❤"), "did you mean"),
    (dict(emoji_version="banana"), "not a version"),
    (dict(temperature=-1.0), "temperature"),
    (dict(max_tokens=0), "max_tokens"),
    (dict(operators="🐢"), "unknown operator"),
    (dict(steps=(1, 3), operators=""), "operators is empty"),
])
def test_contradictory_or_bad_options_say_which(options, message):
    with pytest.raises(InputError, match=message):
        explain("cats", **options)


@pytest.mark.parametrize("options", [dict(seed="1"), dict(think="yes"), dict(max_tokens=2.5),
                                     dict(lines="3"), dict(temperature="warm")])
def test_wrongly_typed_options(options):
    with pytest.raises(InputTypeError):
        explain("cats", **options)


def test_explain_returns_a_rich_explanation():
    e = explain("photosynthesis", seed=7)
    assert isinstance(e, Explanation)
    assert e.topic == "photosynthesis" and e.model
    assert e.text == str(e) and e.gloss() and e.to_json() and e.to_mermaid() and e.to_html()
    s = e.stats
    assert s.eval_tokens > 0 and s.eval_rate > 0 and s.prompt_tokens > 0 and s.load_seconds > 0
    assert s.constraint_us and s.sampler in ("native", "python")
    assert e.reasoning == ""


def test_options_shape_the_answer():
    e = explain("the seasons", lines=2, steps=2, emoji_per_group=1, seed=3)
    assert len(e.lines) == 2 and all(len(line.groups) == 2 for line in e.lines)
    assert all(len(g.emoji) == 1 for g in e.groups())
    only_arrows = explain("a journey", operators="➡️", steps=(2, 3), seed=1)
    assert all(op.symbol == "➡️" for line in only_arrows.lines for op in line.operators)


def test_stream_yields_pieces_then_the_explanation():
    items = list(stream("gravity", seed=2))
    assert isinstance(items[-1], Explanation)
    assert "".join(items[:-1]) == str(items[-1])


def test_stream_checks_input_at_call_time():
    with pytest.raises(InputError):
        stream("")


def test_explainer_and_explain_many(capsys):
    ex = Explainer()
    results = ex.explain_many(["tea", "coffee", "water"], seed=10, progress=True, batch_size=1)
    assert [r.topic for r in results] == ["tea", "coffee", "water"]
    assert "3/3" in capsys.readouterr().err
    # One at a time, seed + k for the k-th topic: the texts of single calls.
    assert str(explain_many(["tea"], seed=10, progress=False)[0]) == str(results[0])
    assert str(ex.explain("coffee", seed=11)) == str(results[1])
    with pytest.raises(InputError):
        ex.explain_many(["ok", ""])
