"""A job's future behaves like an executor's: waiters see a cancelled job as done (no model)."""

import concurrent.futures as cf
import threading

from emogram.decoding.job import Job


def test_a_cancelled_job_wakes_concurrent_futures_waiters():
    job = Job(start=lambda ctx: [], finish=lambda sequences: None)
    threading.Timer(0.05, job.cancel).start()
    done, late = cf.wait([job.future], timeout=10)
    assert job.future in done and not late and job.future.cancelled()
    assert list(cf.as_completed([job.future], timeout=1)) == [job.future]


def test_cancelling_a_settled_job_keeps_its_result():
    job = Job(start=lambda ctx: [], finish=lambda sequences: None)
    job.future.set_result("answer")
    job.cancel()
    assert job.cancelled and job.future.result() == "answer"
