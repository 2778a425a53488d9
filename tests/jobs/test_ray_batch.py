"""The batch job on a local Ray cluster (this machine's CPUs): an actor killed mid-run has its
topics retried, and the output still holds every topic exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest

pytest.importorskip("ray.data", reason='needs pip install "emogram[ray]" (the test extra has it)')

from emogram.backend.machine import usable_cores  # noqa: E402
from emogram.jobs.ray_batch import Explain  # noqa: E402

from batch_helpers import (FAST, assert_valid, batch_command, descendants, generic_topics,  # noqa: E402
                           records, wait_for_lines)

ACTOR = "ray::MapWorker(MapBatches(Explain))"


def test_explain_is_a_ray_data_callable_class():
    """What each actor runs, called as Ray Data calls it: a batch of columns in, columns added."""
    udf = Explain(threads=1, lines=1)
    out = udf({"topic": np.array(["tea", "x" * 301], dtype=object), "id": np.array([7, 8])})
    assert list(out["id"]) == [7, 8] and len(out["seed"]) == 2
    assert out["text"][0] and out["error"][0] is None and '"eval_tokens"' in out["timings"][0]
    assert out["text"][1] is None and "301 characters" in out["error"][1]


def test_ray_job_with_a_killed_actor_writes_each_topic_once(tmp_path):
    actors = min(2, usable_cores())
    topics = generic_topics(200)
    (tmp_path / "t.txt").write_text("\n".join(topics) + "\n")
    path = tmp_path / "out.jsonl"
    command = batch_command("t.txt", "-o", "out.jsonl", "--ray", "--workers", str(actors),
                            "--threads", "1", *FAST)
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        wait_for_lines(path, 40, process)
        victims = [pid for pid, cmd in descendants(process.pid) if cmd.startswith(ACTOR)]
        assert len(victims) == actors, descendants(process.pid)
        os.kill(victims[0], signal.SIGKILL)
        _, err = process.communicate(timeout=400)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the driver and the local cluster it started
    assert process.returncode == 0, err
    got = records(path)
    assert len(got) == 200 and sorted(r["topic"] for r in got) == sorted(topics)
    assert len({r["key"] for r in got}) == 200
    for r in got:
        assert_valid(r)
        assert r["timings"]["threads"] == 1
    print(f"ray job: {time.monotonic() - start:.1f} s")
