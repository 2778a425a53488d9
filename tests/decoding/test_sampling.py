"""The cheap distribution: the C extension and the Python fallback agree bit for bit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from emogram import InputError, InputTypeError
from emogram.backend.machine import native_available
from emogram.decoding.sampling import PySampler, SamplingParams, make_sampler

REQUIRE_NATIVE = os.environ.get("EMOGRAM_REQUIRE_NATIVE") == "1"
needs_native = pytest.mark.skipif(not native_available() and not REQUIRE_NATIVE,
                                  reason="emogram._native is not built (pip install . builds it)")

HERE = Path(__file__).resolve().parent  # not the repository root: test the installed package


def test_native_extension_is_built_where_required():
    """CI sets EMOGRAM_REQUIRE_NATIVE=1: there the extension must have been compiled."""
    if REQUIRE_NATIVE:
        assert native_available()


params_strategy = st.builds(
    SamplingParams,
    temperature=st.sampled_from([0.0, 0.1, 0.7, 1.0, 2.5]),
    top_k=st.sampled_from([0, 1, 5, 40, 1000]),
    top_p=st.sampled_from([0.1, 0.5, 0.95, 1.0]),
    min_p=st.sampled_from([0.0, 0.05, 0.5]))


@needs_native
@given(params=params_strategy, seed=st.integers(0, 2**64 - 1), n_vocab=st.integers(1, 3000),
       data=st.data())
def test_native_and_python_draw_the_same_tokens(params, seed, n_vocab, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    style = data.draw(st.sampled_from(["normal", "ties", "spiky", "inf"]))
    logits = (rng.standard_normal(n_vocab) * 4).astype(np.float32)
    if style == "ties":
        logits = np.round(logits).astype(np.float32)  # many exact ties
    elif style == "spiky":
        logits[rng.integers(0, n_vocab, 3)] = 40.0
    elif style == "inf":
        logits[rng.integers(0, n_vocab, n_vocab // 3 + 1)] = -np.inf
    n = data.draw(st.integers(1, n_vocab))
    cand = np.sort(rng.choice(n_vocab, size=n, replace=False)).astype(np.int32)
    bias = rng.standard_normal(n) * data.draw(st.sampled_from([0.0, 1.0]))
    banned = (rng.random(n) < data.draw(st.sampled_from([0.0, 0.3, 0.99]))).astype(np.uint8)
    py = make_sampler(cand, params, seed, "python")
    c = make_sampler(cand, params, seed, "native")
    for _ in range(8):
        assert py.sample(logits, bias, banned) == c.sample(logits, bias, banned)
        assert py.uniform() == c.uniform()
    assert py.state == c.state


def test_same_seed_same_draws_and_all_banned_gives_minus_one():
    logits = np.linspace(-1, 1, 50).astype(np.float32)
    cand = np.arange(50, dtype=np.int32)
    bias = np.zeros(50)
    free = np.zeros(50, dtype=np.uint8)
    a = [PySampler(cand, SamplingParams(), 7).sample(logits, bias, free) for _ in range(3)]
    b = [PySampler(cand, SamplingParams(), 7).sample(logits, bias, free) for _ in range(3)]
    assert a == b
    assert PySampler(cand, SamplingParams(), 7).sample(logits, bias, np.ones(50, dtype=np.uint8)) == -1


def test_greedy_takes_the_best_and_the_lowest_index_on_ties():
    logits = np.array([0.0, 3.0, 3.0, 1.0], dtype=np.float32)
    s = PySampler(np.arange(4, dtype=np.int32), SamplingParams(temperature=0), 1)
    assert s.sample(logits, np.zeros(4), np.zeros(4, dtype=np.uint8)) == 1


def test_sampling_params_are_checked():
    for bad in [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(min_p=1), dict(top_k=-2),
                dict(temperature=float("nan"))]:
        with pytest.raises(InputError):
            SamplingParams(**bad)
    with pytest.raises(InputTypeError):
        SamplingParams(temperature="hot")


def test_pure_python_can_be_forced_and_still_explains():
    code = ("from emogram.backend.machine import active_implementation as a; from emogram import explain\n"
            "e = explain('tea', seed=1, max_tokens=16)\nprint(a(), e.stats.sampler, str(e) != '')")
    env = dict(os.environ, EMOGRAM_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.split() == ["python", "python", "True"], out.stderr


@needs_native
def test_native_refuses_bad_arrays():
    from emogram import _native
    logits = np.zeros(10, dtype=np.float32)
    cand = np.array([1, 20], dtype=np.int32)
    with pytest.raises(IndexError):
        _native.sample(logits, cand, np.zeros(2), np.zeros(2, dtype=np.uint8), 1.0, 0, 1.0, 0.0, 1)
    with pytest.raises(TypeError):
        _native.sample(logits.astype(np.float64), cand, np.zeros(2), np.zeros(2, dtype=np.uint8), 1.0, 0, 1.0, 0.0, 1)
    with pytest.raises(ValueError):
        _native.sample(logits, np.array([1], dtype=np.int32), np.zeros(2), np.zeros(2, dtype=np.uint8), 1.0, 0, 1.0, 0.0, 1)
