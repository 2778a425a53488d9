"""A model's lifetime: closing it (``Explainer.close``, ``models.unload_all``, ``Engine.close``)
while generations run stops them with ``ModelError``, never a crash, and a closed model refuses
every call with ``ModelError``. The crash checks run in a child process: a use after free in
llama.cpp kills the process instead of raising. And what a long-lived model keeps per grammar
stays bounded, however many palettes it is asked for."""

from __future__ import annotations

import gc
import json
import subprocess
import weakref
import sys
from pathlib import Path

import numpy as np
import pytest

import emogram
from emogram import Explainer, ModelError, compile_grammar
from emogram.backend.llama import Model
from emogram.constraint.judge import VerdictCache
from emogram.decoding.engine import Engine
from emogram.options import build_request

HERE = Path(__file__).resolve().parent

# Threads explaining, two streams read in turns and four asyncio tasks, all in loops on one
# Explainer, until the model is closed under them; then every later call must raise ModelError.
CHILD = r'''
import asyncio, json, sys, threading, time
import emogram
from emogram import Explainer, ModelError
from emogram.backend import models

how = sys.argv[1]
ex = Explainer("gemma3-270m")
ex.explain("warm up", seed=0)
outcomes, lock, done = [], threading.Lock(), {"ok": 0}
deadline = time.monotonic() + 120

def finish(kind, exc):
    with lock:
        outcomes.append([kind, type(exc).__name__ if exc else "none", str(exc)[:200] if exc else ""])

def ok():
    with lock:
        done["ok"] += 1

def explain_loop(k):
    try:
        while time.monotonic() < deadline:
            ex.explain(f"topic {k}", seed=k, lines=4, steps=3); ok()
        finish("thread", None)
    except BaseException as exc:
        finish("thread", exc)

def streams_loop():
    try:
        while time.monotonic() < deadline:
            a, b = ex.stream("black holes", seed=2, lines=4), ex.stream("photosynthesis", seed=1, lines=4)
            for _ in zip(a, b):
                pass
            ok()
        finish("streams", None)
    except BaseException as exc:
        finish("streams", exc)

async def task_loop(k):
    try:
        while time.monotonic() < deadline:
            if k % 2:
                await ex.aexplain(f"task {k}", seed=k, lines=4, steps=3)
            else:
                async for _ in ex.astream(f"task {k}", seed=k, lines=4, steps=3):
                    pass
            ok()
        finish("task", None)
    except BaseException as exc:
        finish("task", exc)

async def tasks():
    await asyncio.gather(*(task_loop(k) for k in range(4)))

workers = [threading.Thread(target=explain_loop, args=(k,)) for k in range(3)]
workers.append(threading.Thread(target=streams_loop))
workers.append(threading.Thread(target=lambda: asyncio.run(tasks())))
for w in workers:
    w.start()
while done["ok"] < 4:  # generations are under way, some finished
    time.sleep(0.01)
if how == "close":
    ex.close()
elif how == "unload_all":
    models.unload_all()
else:  # both at once, from two threads
    closers = [threading.Thread(target=ex.close), threading.Thread(target=models.unload_all)]
    for c in closers:
        c.start()
    for c in closers:
        c.join()
for w in workers:
    w.join(60)
after = []
for name, call in [("explain", lambda: ex.explain("tea", seed=1)),
                   ("stream", lambda: list(ex.stream("tea", seed=1))),
                   ("aexplain", lambda: asyncio.run(ex.aexplain("tea", seed=1))),
                   ("explain_many", lambda: ex.explain_many(["tea", "coffee"], seed=1)),
                   ("tokenize", lambda: ex.model.tokenize("tea"))]:
    try:
        call()
        after.append([name, "none"])
    except BaseException as exc:
        after.append([name, type(exc).__name__])
fresh = str(emogram.explain("tea", seed=1, model="gemma3-270m"))  # a new load works
print(json.dumps({"ok": done["ok"], "outcomes": outcomes, "after": after, "fresh": fresh,
                  "alive": [w.name for w in workers if w.is_alive()]}))
'''


@pytest.mark.parametrize("how", ["close", "unload_all", "both"])
def test_closing_the_model_under_running_generations(how):
    out = subprocess.run([sys.executable, "-c", CHILD, how], capture_output=True, text=True,
                         timeout=400, cwd=HERE)
    assert out.returncode == 0, f"exit status {out.returncode}\n{out.stderr[-3000:]}"
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["alive"] == []
    assert report["ok"] >= 4
    assert len(report["outcomes"]) == 8  # 3 threads, the streams' thread, 4 tasks
    assert {kind for kind, _, _ in report["outcomes"]} == {"thread", "streams", "task"}
    assert all(error == "ModelError" for _, error, _ in report["outcomes"]), report["outcomes"]
    assert report["after"] == [[name, "ModelError"] for name, _ in report["after"]]
    assert report["fresh"]
    assert "Traceback" not in out.stderr


@pytest.fixture
def private_model():
    """A SmolLM2 of this test's own (not the shared one the other tests use)."""
    from emogram.backend import models
    model = Model(models.resolve("smollm2-135m").path, prompt_cache=models.prompt_cache_dir())
    yield model
    model.close()


def test_every_model_method_on_a_closed_model_raises(private_model):
    model = private_model
    model.pieces(), model.control_mask(), model.eog_tokens()  # remembered answers too
    sampler = model.grammar(compile_grammar().gbnf)
    ctx = model.new_context(n_seq=1, n_ctx=256)
    tokens = model.tokenize("tea")
    ctx.decode(tokens, range(len(tokens)), [0] * len(tokens), [False] * (len(tokens) - 1) + [True])
    model.close()
    model.close()  # twice is fine
    assert model.closed
    calls = {
        "metadata": lambda: model.metadata("general.name"), "name": lambda: model.name,
        "chat_template": lambda: model.chat_template, "tokenize": lambda: model.tokenize("tea"),
        "pieces": model.pieces, "is_eog": lambda: model.is_eog(0), "is_control": lambda: model.is_control(0),
        "control_mask": model.control_mask, "eog_tokens": model.eog_tokens, "bos": lambda: model.bos,
        "eos": lambda: model.eos, "add_bos": lambda: model.add_bos, "token_text": lambda: model.token_text(1),
        "grammar": lambda: model.grammar(compile_grammar().gbnf),
        "new_context": lambda: model.new_context(n_seq=1, n_ctx=256),
        # a grammar sampler and a context made before the close
        "sampler.allows": lambda: sampler.allows(1), "sampler.accept": lambda: sampler.accept(1),
        "sampler.allowed": lambda: sampler.allowed(np.arange(10, dtype=np.int32)),
        "sampler.clone": sampler.clone,
        "ctx.decode": lambda: ctx.decode([1], [0], [0], [True]), "ctx.seq_rm": lambda: ctx.seq_rm(0),
        "ctx.state_get": lambda: ctx.state_get(0), "ctx.state_set": lambda: ctx.state_set(0, b"x"),
        "ctx.clear": ctx.clear, "ctx.hidden": lambda: ctx.hidden(0),
    }
    for name, call in calls.items():
        with pytest.raises(ModelError):
            call()
            pytest.fail(f"{name} did not raise")
    sampler.close(), ctx.close()  # freeing what is left is fine


def test_a_closed_explainer_refuses_every_call():
    with Explainer("smollm2-135m", threads=1) as ex:  # its own model (threads=1: another key)
        text = str(ex.explain("tea", seed=1, max_tokens=24))
    for call in (lambda: ex.explain("tea", seed=1), lambda: ex.stream("tea"), lambda: ex.events("tea"),
                 lambda: ex.explain_many(["tea", "coffee"])):
        with pytest.raises(ModelError):
            call()
    # explain_iter reports errors per topic, as it does for a topic that fails on its own
    assert [type(r) for _, r in ex.explain_iter(["tea", "coffee"])] == [ModelError, ModelError]
    again = Explainer("smollm2-135m", threads=1)  # loads afresh
    try:
        assert str(again.explain("tea", seed=1, max_tokens=24)) == text
    finally:
        again.close()


def test_engine_close(private_model):
    """Engine.close stops its generations (ModelError), frees its grammars, refuses new work and
    leaves the model usable by a new engine."""
    model = private_model
    request = build_request(seed=1, max_tokens=24)
    engine = Engine(model)
    text = engine.explain("tea", request).text
    events = engine.stream("the history of the universe", build_request(seed=2, lines=4, steps=3))
    next(events)
    setups = list(engine._setups.values())
    thread = engine.scheduler._thread
    engine.close()
    with pytest.raises(ModelError):
        list(events)
    assert not thread.is_alive()
    assert engine.scheduler.ctx is None
    assert setups and all(setup.pristine._ptr is None for setup in setups)
    with pytest.raises(ModelError):
        engine.submit("tea", request)
    engine.close()  # twice is fine
    fresh = Engine(model)
    assert fresh.explain("tea", request).text == text
    model.close()  # closes the new engine with it
    with pytest.raises(ModelError):
        fresh.submit("tea", request)


def test_caches_stay_bounded_with_many_palettes(gemma, monkeypatch):
    """A server taking its users' palettes: each palette is a grammar with a setup of its own
    (candidates, llama.cpp's compiled grammar, the verdict and move memos). Past the bounds the
    oldest setups are dropped and freed, the memos stop growing, and the model keeps one engine.
    The bounds are lowered here so that eight palettes cross them; docs/safe.md states the real ones."""
    from emogram import api
    from emogram.constraint.matcher import matcher_for
    from emogram.language.grammar import compile_grammar as compiled
    assert (Engine.MAX_SETUPS, VerdictCache.MAX_STATES, VerdictCache.MAX_MOVES) == (32, 20_000, 200_000)
    assert compiled.cache_info().maxsize == 64 and matcher_for.cache_info().maxsize == 32
    monkeypatch.setattr(Engine, "MAX_SETUPS", 3)
    monkeypatch.setattr(VerdictCache, "MAX_STATES", 4)
    monkeypatch.setattr(VerdictCache, "MAX_MOVES", 40)
    ex = Explainer("gemma3-270m")
    engine = ex.engine
    earlier = {id(setup) for setup in engine._setups.values()}  # made by other tests, before the patch
    pool = list("🌱🌳🌲🌴🌵🌾🌿🍀🍁🍂🍃🍄🌰🦀🦞🦐🦑🐙🐚🐌🦋🐛🐜🐝🐞🦗🦂🦟🦠💐🌸")
    seen: list[weakref.ref] = []
    for k in range(8):
        palette = pool[3 * k:3 * k + 8]
        options = dict(seed=k, palette=palette, lines=1, steps=2)
        answer = ex.explain("a garden", **options) if k % 2 else \
            emogram.explain("a garden", model="gemma3-270m", **options)  # the module-level door too
        assert {e.char for e in answer.emoji()} <= set(palette)
        seen += [weakref.ref(setup) for setup in engine._setups.values()]
        assert len(engine._setups) <= 3
        for setup in engine._setups.values():
            if id(setup) not in earlier:
                assert len(setup.verdicts.states) <= 4 and len(setup.verdicts.moves) <= 40
    gc.collect()
    alive = {id(ref()) for ref in seen if ref() is not None}
    assert len(alive) <= 3  # evicted setups are freed, their llama.cpp grammars with them
    assert api._engine_for(gemma) is engine
    assert sum(1 for o in gc.get_objects() if isinstance(o, Engine) and o.model is gemma) == 1
    assert len(engine.scheduler._prefixes) <= engine.scheduler.KEEP_PREFIXES


def test_a_finished_answer_frees_its_decoding_state_without_the_cycle_collector(gemma):
    """A retired job sits in a reference cycle (job, callbacks, sequences) until the cyclic
    collector runs; its sequences must not keep their scripts (a glossed answer's word biases and
    samplers, ~2 MB) alive that long. With the collector off, the live scripts do not pile up."""
    from emogram.decoding.gloss import Gloss
    from emogram.decoding.sequence import Phases

    def live() -> int:
        return sum(isinstance(o, (Gloss, Phases)) for o in gc.get_objects())

    explainer = Explainer("gemma3-270m")  # the loaded model (the fixture), shared
    explainer.explain("rain", seed=0)
    explainer.explain("rain", seed=0, plan=False)
    gc.collect()
    gc.disable()
    try:
        before = live()
        for k in range(6):
            explainer.explain(f"topic {k}", seed=k, plan=bool(k % 2))
        assert live() - before <= 1  # one may be in a caller's frame for a moment
    finally:
        gc.enable()
