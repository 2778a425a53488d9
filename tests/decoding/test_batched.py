"""Batch mode with the real model: many sequences per forward pass, each answer still valid, never
truncated, and the seed rule (exact paths give the lone call's text; batched texts may differ in
the last bits of their logits, so only their validity is promised, and how often they differ is
measured).

Each test here loads Gemma 3 270M; run them under ``flock /tmp/emogram-model.lock``.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
from pathlib import Path

import emoji as emoji_package
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from emogram import EmojiFilter, Explainer, InputError, Shape, parse
from emogram.options import build_request

from oracle import GBNFOracle

TOPICS = [t["topic"] for t in json.loads(
    (Path(__file__).resolve().parents[2] / "bench" / "topics.json").read_text(encoding="utf-8"))["topics"]]
STOPS = {"model", "grammar", "budget"}


@pytest.fixture(scope="module")
def explainer(gemma):
    return Explainer("gemma3-270m")


@pytest.fixture(scope="module")
def oracles(gemma):
    """llama.cpp's own grammar engine, one per grammar: the GBNF is the contract."""
    made: dict = {}

    def get(grammar) -> GBNFOracle:
        if grammar not in made:
            made[grammar] = GBNFOracle(gemma, grammar.gbnf)
        return made[grammar]
    yield get
    for oracle in made.values():
        oracle.base.close()


def check_answer(text: str, stats, grammar, max_tokens: int, oracle: GBNFOracle) -> None:
    """Complete (lark parses it, llama.cpp's grammar accepts it whole), emoji only, within its
    filter and budget, and the matcher never disagreed with llama.cpp."""
    tree = parse(text, grammar=grammar)
    assert str(tree) == text
    assert oracle.accepts(text), text
    assert emoji_package.purely_emoji(text.replace(" ", "").replace("\n", "")), text
    assert "\ufffd" not in text
    assert {e.char for e in tree.emoji()} <= set(grammar.emoji), text
    assert 1 <= stats.eval_tokens <= max_tokens, (stats.eval_tokens, max_tokens)
    assert stats.stopped_by in STOPS
    assert stats.disagreements == 0


def test_two_hundred_batched_decodes_are_all_valid(explainer, oracles):
    """The 200-decode validity test (test_engine.py) in batch mode: 200 answers from
    ``explain_many(batch_size=8)``, five temperatures from 0 to 1.5, budgets from 96 tokens (the
    default) down to 4, so that the model, the grammar and the budget all end answers."""
    runs, stops, widths = 0, set(), []
    plan = [(0.0, 96), (0.4, 24), (0.7, 12), (1.0, 8), (1.5, 4)]
    for k, (temperature, budget) in enumerate(plan):
        topics = [TOPICS[(40 * k + j) % len(TOPICS)] for j in range(40)]
        out = explainer.explain_many(topics, batch_size=8, seed=100 * k, temperature=temperature,
                                     max_tokens=budget, progress=False)
        grammar = build_request(temperature=temperature, max_tokens=budget).grammar
        for topic, e in zip(topics, out):
            assert e.topic == topic
            check_answer(str(e), e.stats, grammar, budget, oracles(grammar))
            stops.add(e.stats.stopped_by)
            widths.append(e.stats.batch_mean)
            runs += 1
    assert runs == 200
    assert {"model", "budget"} <= stops
    assert max(widths) > 4  # the answers really shared forward passes


# --- sequences of one batch with their own budgets, filters and candidates, cut at random steps ---

FILTERS = [None, "🍎🍌🍇🍓🥝🥣🔪", "🐝🌸🍯🏠➕", "4.0", "exclude-faces"]
SHAPES = [Shape(), Shape(lines=(1, 1), steps=(1, 2), emoji_per_group=(1, 2)),
          Shape(lines=(2, 3), steps=(2, 3), emoji_per_group=(1, 1))]


def options_for(spec: dict) -> dict:
    opts = dict(max_tokens=spec["budget"], seed=spec["seed"], candidates=spec["candidates"],
                temperature=spec["temperature"], plan=spec["plan"])
    shape = SHAPES[spec["shape"]]
    opts.update(lines=shape.lines, steps=shape.steps, emoji_per_group=shape.emoji_per_group)
    flt = spec["filter"]
    if flt == "4.0":
        opts["emoji_version"] = "4.0"
    elif flt == "exclude-faces":
        opts["emoji_filter"] = EmojiFilter(flags=False, skin_tones=False, zwj=False)
    elif flt is not None:
        opts["palette"] = flt
    return opts


job_specs = st.fixed_dictionaries({
    "topic": st.sampled_from(TOPICS),
    "budget": st.integers(1, 40),
    "filter": st.sampled_from(FILTERS),
    "shape": st.integers(0, len(SHAPES) - 1),
    "candidates": st.sampled_from([1, 1, 2, 3]),
    "temperature": st.sampled_from([0.0, 0.5, 1.2]),
    "seed": st.integers(0, 2**31),
    "cancel_at": st.one_of(st.none(), st.integers(1, 30)),  # a sequence step at which to cancel
    "plan": st.sampled_from([True, True, False]),  # glossed (the default) or direct answers
})


def cancel_at_step(job, step: int) -> None:
    """Cancel ``job`` from the scheduler's thread once any of its sequences has taken ``step``
    steps (the test wraps each sequence's ``advance``; the library is not changed)."""
    start = job.start

    def start_and_wrap(ctx):
        sequences = start(ctx)
        for seq in sequences:
            advance = seq.advance

            def wrapped(out, batch, seq=seq, advance=advance):
                advance(out, batch)
                if seq.steps >= step:
                    job.cancel()
            seq.advance = wrapped
        return sequences
    job.start = start_and_wrap


def wait_idle(scheduler, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while scheduler._active or scheduler._waiting:
        assert time.monotonic() < deadline, "the scheduler kept jobs after every future settled"
        time.sleep(0.01)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(job_specs, min_size=2, max_size=7))
def test_batched_sequences_with_random_budgets_filters_and_cancels_stay_valid(explainer, oracles, specs):
    engine = explainer.engine
    scheduler = engine.scheduler
    jobs = []
    for spec in specs:
        request = build_request(**options_for(spec))
        try:
            job = engine.job(spec["topic"], request, batched=True)
        except InputError as exc:  # a budget below the shortest answer in this shape: refused at once
            assert "too small" in str(exc)
            continue
        if spec["cancel_at"] is not None:
            cancel_at_step(job, spec["cancel_at"])
        if request.candidates > 1:
            scheduler.ensure_slots(request.candidates)
        jobs.append((spec, request, scheduler.submit(job)))
    _, late = cf.wait([job.future for _, _, job in jobs], timeout=120)
    assert not late  # a cancelled job's future must wake cf.wait too, not only report done()
    finished = 0
    for spec, request, job in jobs:
        assert job.future.done()
        if job.future.cancelled():
            assert spec["cancel_at"] is not None
            continue
        result = job.future.result()  # never an exception: no DecodingError, no ModelError
        check_answer(result.text, result.stats, request.grammar, request.max_tokens,
                     oracles(request.grammar))
        finished += 1
    wait_idle(scheduler)
    assert sorted(scheduler._free) == list(range(scheduler.slots)), "a sequence slot leaked"
    # an exact call after all that gives the text it gives on a fresh scheduler
    assert str(explainer.explain("volcanoes", seed=7, max_tokens=24)) == exact_reference(explainer)


_REFERENCE: dict[str, str] = {}


def exact_reference(explainer) -> str:
    if "volcanoes" not in _REFERENCE:
        _REFERENCE["volcanoes"] = str(explainer.explain("volcanoes", seed=7, max_tokens=24))
    return _REFERENCE["volcanoes"]


@pytest.fixture(autouse=True, scope="module")
def _reference_before_anything_batched(explainer):
    exact_reference(explainer)


# --- the seed rule: exact paths give the lone call's text; batched texts are measured ---

def test_batched_texts_against_single_sequence_texts(explainer, oracles, capsys):
    """Lone ``explain`` calls are the reference. Exact paths equal them: ``explain_many`` with
    ``batch_size=1``, an ``explain`` while a batched ``explain_many`` runs beside it, and a
    batched job that happens to be decoded alone. Texts decoded eight to a forward pass are valid
    and may differ (ggml's kernels for several rows round differently): how often is printed, and
    only floors far below what is measured are asserted (a sequence fed another row's logits
    would agree almost never, and part ways at once)."""
    topics = TOPICS[:24]
    seed, budget = 11, 48
    lone = [str(explainer.explain(t, seed=seed + k, max_tokens=budget)) for k, t in enumerate(topics)]

    exact = explainer.explain_many(topics[:8], batch_size=1, seed=seed, max_tokens=budget, progress=False)
    assert [str(e) for e in exact] == lone[:8]
    if not explainer.model.load_info.gpu_offload:  # the CPU default is batch_size=1: exact
        default = explainer.explain_many(topics[:8], seed=seed, max_tokens=budget, progress=False)
        assert [str(e) for e in default] == lone[:8]

    alone = dict(explainer.explain_iter(topics[:1], batch_size=4, seed=seed, max_tokens=budget))
    assert str(alone[0]) == lone[0]

    batched: list = []
    side = threading.Thread(target=lambda: batched.extend(explainer.explain_many(
        topics, batch_size=8, seed=seed, max_tokens=budget, progress=False)))
    side.start()
    beside = [str(explainer.explain(t, seed=seed + k, max_tokens=budget)) for k, t in enumerate(topics[8:12], 8)]
    side.join()
    assert beside == lone[8:12]

    grammar = build_request(max_tokens=budget).grammar
    for e in batched:
        check_answer(str(e), e.stats, grammar, budget, oracles(grammar))
    same = sum(str(e) == text for e, text in zip(batched, lone))
    shared = [_common_prefix(str(e), text) / max(len(text), 1) for e, text in zip(batched, lone)]
    width = sum(e.stats.batch_mean for e in batched) / len(batched)
    with capsys.disabled():
        print(f"\nbatched (batch_size=8, {width:.1f} rows per pass on average) vs lone texts: "
              f"{same}/{len(topics)} identical, mean shared prefix {sum(shared) / len(shared):.0%}")
    # A floor far below what is measured (52-65% shared with the adapter's longer answers in four
    # runs, 2026-12-02): a sequence fed another row's logits would share almost nothing past its
    # first token. How many texts are identical to the end is printed, not asserted: it depends on
    # which sequences happen to share a pass (timing), and was 1, 4, 5 and 6 of 24 in those runs.
    assert sum(shared) / len(shared) >= 0.3


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
