"""Generations sharing one model: streams read in turns, threads, asyncio tasks; streams abandoned,
resumed on another thread or cancelled. Every output is compared with its sequential same-seed
twin (``twins.py``), and whatever stops early must give its sequence and its KV cells back."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import threading

import pytest

import emogram
from emogram import Explainer, Explanation

from twins import POOL, Twins, assert_all_freed, read_in_turns, scheduler_state

# A long answer (4 lines of 3 groups: at least 23 tokens), so a stream read for one piece and then
# abandoned is certainly still decoding.
LONG = dict(lines=4, steps=3)


@pytest.fixture(scope="module")
def ex(gemma):
    return Explainer("gemma3-270m")


@pytest.fixture(scope="module")
def twin(ex):
    return Twins(ex)


@pytest.fixture
def jobs(ex, monkeypatch):
    """Every job submitted to the engine during the test, in order."""
    seen = []
    submit = ex.engine.submit

    def recording(*args, **kwargs):
        job = submit(*args, **kwargs)
        seen.append(job)
        return job

    monkeypatch.setattr(ex.engine, "submit", recording)
    return seen


def assert_streamed(items: list, expected: str) -> None:
    *pieces, last = items
    assert isinstance(last, Explanation)
    assert str(last) == expected
    assert "".join(pieces) == expected
    assert all(isinstance(p, str) for p in pieces)


def test_two_streams_read_in_turns_match_their_twins(ex, twin):
    """Issue #15's case. On commit 3091efc photosynthesis (seed 1) read in turns with black holes
    (seed 2) gave '🌱 ➕ 🌌 / ➡️ ❓ ➡️ ❗ / ...': one model lock held across ``yield``."""
    expected = [twin("photosynthesis", 1), twin("black holes", 2)]
    a, b = read_in_turns([ex.stream("photosynthesis", seed=1), ex.stream("black holes", seed=2)])
    assert_streamed(a, expected[0])
    assert_streamed(b, expected[1])
    # zip() itself, as users write it: both run until the shorter ends.
    pairs = list(zip(ex.stream("photosynthesis", seed=1), ex.stream("black holes", seed=2)))
    for k, items in enumerate(zip(*pairs)):
        text = "".join(str(item) for item in items[:-1])
        assert expected[k].startswith(text)
        assert isinstance(items[-1], Explanation) or expected[k].startswith(text + items[-1])


def test_more_streams_than_slots_read_in_turns(ex, twin):
    """Two streams more than the sequence slots (8, or more once a batch asked for them): the last
    two wait for a slot, nothing is mixed up."""
    items = [(POOL[k % len(POOL)][0], POOL[k % len(POOL)][1] + 10 * (k // len(POOL)))
             for k in range(ex.engine.scheduler.slots + 2)]
    expected = [twin(topic, seed) for topic, seed in items]
    outputs = read_in_turns([ex.stream(topic, seed=seed) for topic, seed in items])
    for items, text in zip(outputs, expected):
        assert_streamed(items, text)
    assert_all_freed(ex)


def test_threads_share_one_explainer(ex, twin):
    """Four threads explaining at once (the same topic and seed twice at a time too, and one
    thread through the module-level ``emogram.explain``): each gets exactly its twin's text."""
    items = POOL[:6]
    expected = {item: twin(*item) for item in items}
    plans = [[items[(2 * t + k) % len(items)] for k in range(3)] for t in range(4)]
    barrier = threading.Barrier(len(plans))

    def run(t: int) -> list[str]:
        barrier.wait()
        call = (lambda topic, seed: emogram.explain(topic, seed=seed, model="gemma3-270m")) if t == 3 \
            else (lambda topic, seed: ex.explain(topic, seed=seed))
        return [str(call(topic, seed)) for topic, seed in plans[t]]

    with cf.ThreadPoolExecutor(len(plans)) as pool:
        results = list(pool.map(run, range(len(plans)), timeout=300))
    assert results == [[expected[item] for item in plan] for plan in plans]
    assert_all_freed(ex)


def test_asyncio_tasks_gathered(ex, twin):
    """aexplain and astream tasks gathered on one loop: twins' texts, and the loop keeps running
    while they decode (a ticker task counts its turns)."""
    items = POOL[:8]
    expected = [twin(topic, seed) for topic, seed in items]

    async def via_stream(topic: str, seed: int, explainer=None) -> list:
        source = explainer.astream(topic, seed=seed) if explainer else \
            emogram.astream(topic, seed=seed, model="gemma3-270m")
        return [piece async for piece in source]

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        calls = [ex.aexplain(topic, seed=seed) if k % 2 == 0 else via_stream(topic, seed, ex)
                 for k, (topic, seed) in enumerate(items)]
        calls += [emogram.aexplain(items[0][0], seed=items[0][1], model="gemma3-270m"),
                  via_stream(*items[1])]
        results = await asyncio.gather(*calls)
        stop.set()
        await tick
        return results, ticks

    results, ticks = asyncio.run(main())
    for k, result in enumerate(results):
        text = expected[k] if k < len(items) else expected[k - len(items)]
        if isinstance(result, Explanation):
            assert str(result) == text
        else:
            assert_streamed(result, text)
    assert ticks >= 20  # ~5 s of decoding: a blocked loop would have ticked once or twice
    assert_all_freed(ex)


def test_abandoned_streams_free_their_sequences(ex, twin, jobs):
    """close(), a with block, a dropped stream (garbage), a for loop left early: each job is
    cancelled at once, its slot and cells come back, and later calls still match their twins."""
    topic, seed = POOL[2]
    expected = twin(topic, seed, **LONG)
    del jobs[:]

    s = ex.stream(topic, seed=seed, **LONG)
    next(s)
    s.close()
    assert list(s) == []
    with ex.stream(topic, seed=seed, **LONG) as s:
        next(s)
    s = ex.stream(topic, seed=seed, **LONG)
    next(s)
    del s
    gc.collect()
    for _piece in ex.stream(topic, seed=seed, **LONG):
        break
    gc.collect()
    assert len(jobs) == 4
    assert all(job.cancelled and job.future.cancelled() for job in jobs)
    assert_all_freed(ex)
    assert str(ex.explain(topic, seed=seed, **LONG)) == expected
    assert_streamed(list(ex.stream(topic, seed=seed, **LONG)), expected)
    assert_all_freed(ex)


def test_a_stream_closed_by_another_thread_stops_its_reader(ex, jobs):
    topic, seed = POOL[3]
    s = ex.stream(topic, seed=seed, **LONG)
    next(s)
    closer = threading.Timer(0.05, s.close)
    closer.start()
    rest = list(s)  # ends quietly when the other thread closes it
    closer.join()
    assert not rest or not isinstance(rest[-1], Explanation)
    assert jobs[0].future.cancelled()
    assert_all_freed(ex)


def test_a_stream_resumed_on_another_thread(ex, twin):
    topic, seed = POOL[4]
    expected = twin(topic, seed)
    s = ex.stream(topic, seed=seed)
    head = [next(s), next(s)]
    with cf.ThreadPoolExecutor(2) as pool:
        rest = pool.submit(list, s).result(timeout=120)
        assert_streamed(head + rest, expected)
        # every piece read on a different thread than the one before
        s = ex.stream(topic, seed=seed)
        items, k = [], 0
        while not items or not isinstance(items[-1], Explanation):
            items.append(pool.submit(next, s).result(timeout=120) if k % 2 else next(s))
            k += 1
    assert_streamed(items, expected)
    assert_all_freed(ex)


def test_cancelling_asyncio_tasks_frees_their_sequences(ex, twin, jobs):
    topic, seed = POOL[5]
    expected = twin(topic, seed, **LONG)
    del jobs[:]

    async def until_active():
        while not scheduler_state(ex)["active"]:
            await asyncio.sleep(0.002)

    async def main():
        task = asyncio.create_task(ex.aexplain(topic, seed=seed, **LONG))
        await until_active()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        first = asyncio.Event()

        async def consume():
            async for _piece in ex.astream(topic, seed=seed, **LONG):
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ex.aexplain(topic, seed=seed, **LONG), 0.2)

        stream = ex.astream(topic, seed=seed, **LONG)  # an async iterator closed half way
        await stream.__anext__()
        await stream.aclose()

    asyncio.run(main())
    assert len(jobs) == 4
    assert all(job.cancelled and job.future.cancelled() for job in jobs)
    assert_all_freed(ex)
    assert str(ex.explain(topic, seed=seed, **LONG)) == expected
