"""The option fuzz: every public keyword of ``explain``, with wild values, must give either a valid
answer or one ``EmogramError``: nothing else, and never an abort.

Run as a child process by ``test_option_fuzz.py`` (an abort kills this process, not the test run);
by hand: ``python tests/fuzz_options.py [EXAMPLES]``. Each call is printed before it is made, so
the last line before a crash names the culprit. Exit status 0: every call behaved.

Most wild values are refused before any model work; the calls whose options are all acceptable
run on SmolLM2 (the smallest preset) with a small token budget unless the fuzz drew one.
"""

from __future__ import annotations

import math
import os
import sys

import emoji as emoji_package
from hypothesis import HealthCheck, given, settings, strategies as st

import emogram
from emogram import EmogramError, EmojiFilter, Explanation, Operator, parse
from emogram.options import OPTIONS, build_request

MODEL = "smollm2-135m"

HUGE = [2**31 - 1, 2**31, 2**63, 2**64, 10**30, -2**63, 1e308, -1e308, 1e-308, 5e-324, 1e-300]
NUMBERS = st.one_of(
    st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2, 0.5, -0.0, True, False, math.nan, math.inf, -math.inf] + HUGE))
STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "-1", "1e400", "0x10", "1_0", "3-2", "🍎", "➡️",
                     "➡️➕🆚🟰", "\x00", "15.0", "E18.0", "e0.6", "18.1", "✊🏽", "\u200d", "\ufe0f", "❤",
                     "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", "a" * 5000,
                     "<end_of_turn>", "<|im_end|>", "auto", "cpu", "gpu", "LEADS_TO", "leads-to"]))
WRONG_TYPES = st.sampled_from([None, b"bytes", bytearray(b"x"), object(), 1j, [1, 2], (1, 2, 3),
                               {"a": 1}, [[1]], {1.5}, (None, None), Operator.AND, EmojiFilter(),
                               range(3)])
EMPTY = st.sampled_from(["", [], (), set(), frozenset(), {}])
WILD = st.one_of(NUMBERS, STRINGS, WRONG_TYPES, EMPTY,
                 st.lists(st.one_of(st.integers(-3, 20), STRINGS), max_size=4),
                 st.tuples(NUMBERS, NUMBERS), st.frozensets(STRINGS, max_size=3))


def _span(hi: int) -> st.SearchStrategy:
    return st.one_of(st.integers(1, hi), st.tuples(st.integers(1, 2), st.integers(2, hi)))


SANE = {
    "lines": _span(3), "steps": _span(3), "emoji_per_group": _span(3),
    "operators": st.sampled_from(["➡️", "➡️➕", ["🆚", "➕"], {"🟰", "➕"}, (Operator.LEADS_TO,)]),
    "palette": st.one_of(st.sampled_from(["🍎🍌🍇", {"🍎", "🍌", "🍓"}, frozenset({"☕", "🍵"}),
                                          ["👍🏽", "🇺🇸", "🏴"]]),
                         st.builds(lambda: iter(["🌞", "🌧️"]))),  # a one-shot iterator
    "emoji_version": st.sampled_from(["12.0", 5, 15.1, "E13.1", "6.0", 0.6, "18"]),
    "exclude": st.sampled_from(["🍎", set(), ["😀", "🙂"], frozenset({"🌍"})]),
    "emoji_filter": st.sampled_from([EmojiFilter(), EmojiFilter(flags=False, zwj=False),
                                     EmojiFilter(palette={"🐱", "🐶", "🐭"})]),
    "temperature": st.floats(0, 3), "top_k": st.integers(0, 2**31 - 1), "top_p": st.floats(0.01, 1),
    "min_p": st.floats(0, 0.99), "repeat_penalty": st.floats(0, 10), "filler_penalty": st.floats(0, 10),
    "partial_penalty": st.floats(0, 10), "seed": st.integers(), "think": st.booleans(),
    "max_tokens": st.integers(1, 40), "max_think_tokens": st.integers(1, 12),
    "hint": st.floats(-10, 10), "examples": st.integers(0, 8), "candidates": st.integers(1, 3),
    "plan": st.booleans(), "lexicon": st.one_of(st.booleans(), st.floats(0, 50)),
    "bank": st.sampled_from([None, True, False, (), [], "/nonexistent/bank.jsonl", os.devnull, ".",
                             ["/nonexistent/a.jsonl", "/nonexistent/b.jsonl"]]),
    "model": st.just(MODEL), "device": st.sampled_from(["auto", "cpu"]),
}
WILD_MODELS = st.sampled_from([5, b"model.gguf", "", " ", "/nonexistent/model.gguf", "/dev/null", ".",
                               "x" * 5000, "~nouser/model.gguf", "a\x00b", "hf:no-slash", "gemma9",
                               os.devnull, ["smollm2-135m"], None])
assert set(SANE) == set(OPTIONS) | {"model", "device"}, "the fuzz must cover every public keyword"

SANE_TOPICS = st.one_of(st.sampled_from(["tea", "black holes", "a <b> & c", "<end_of_turn>", "请用中文回答"]),
                        st.text(min_size=1, max_size=40))



@st.composite
def option_values(draw) -> dict:
    """Some keywords with acceptable values, then up to three of them (or others) made wild: each
    wild value is met on its own often enough to pass the checks of the rest."""
    options = draw(st.fixed_dictionaries({}, optional=SANE))
    if "emoji_filter" in options and {"palette", "exclude", "emoji_version"} & set(options):
        if draw(st.booleans()):  # the two ways of choosing emoji exclude each other: keep one
            del options["emoji_filter"]
        else:
            for name in ("palette", "exclude", "emoji_version"):
                options.pop(name, None)
    for name in draw(st.lists(st.sampled_from(sorted(SANE)), max_size=3, unique=True)):
        options[name] = draw(WILD_MODELS if name == "model" else WILD)
    return options


@st.composite
def topics(draw):
    """Mostly a str (some odd), sometimes anything at all."""
    return draw(WILD) if draw(st.integers(0, 9)) == 0 else draw(SANE_TOPICS)


def check(topic, options: dict) -> str:
    """One call: 'answer', or 'refused: <error>'; anything else raises."""
    call = dict(options)
    one_shot = {k: list(v) for k, v in call.items() if hasattr(v, "__next__")}  # iterators: used once
    call.update({k: iter(v) for k, v in one_shot.items()})
    call.setdefault("model", MODEL)
    call.setdefault("max_tokens", 24)  # keep answers short when the fuzz did not choose a budget
    if call.get("think") is True:
        call.setdefault("max_think_tokens", 8)
    print(f"try {topic!r:.80} {call!r:.1500}", flush=True)
    try:
        e = emogram.explain(topic, **call)
    except EmogramError as exc:
        return f"refused: {type(exc).__name__}"
    assert isinstance(e, Explanation), type(e)
    call.update({k: iter(v) for k, v in one_shot.items()})
    grammar = build_request(**{k: v for k, v in call.items() if k not in ("model", "device")}).grammar
    assert parse(str(e), grammar=grammar) == e
    assert emoji_package.purely_emoji(str(e).replace(" ", "").replace("\n", ""))
    return "answer"


def main(examples: int) -> int:
    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(topic=topics(), options=option_values())
    def fuzz(topic, options):
        outcome = check(topic, options)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    fuzz()
    print("outcomes:", ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())), flush=True)
    if not outcomes.get("answer"):
        print("no call was answered: the fuzz did not reach the model", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 150))
