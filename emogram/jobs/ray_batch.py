"""The batch job on a Ray cluster (``pip install "emogram[ray]"``; imported only for ``--ray``).

Ray Data carries the pending topics through ``map_batches`` with ``Explain``, a callable class:
each actor of a fixed pool loads the model once, with as many llama.cpp threads as the CPUs Ray
reserves for it (``num_cpus``), so actors x threads never exceeds a node's CPUs. Results stream back
to the driver (``iter_batches``) in finish order, and the driver writes them through the same
resumable writer as the local path. That writer is what makes the output exactly-once: Ray restarts
a killed actor and retries its unfinished batches, so a batch may be computed twice, but a key is
written once (and a retried topic has the same seed, so the same answer).

Why the driver reads the input (``from_items``) rather than a ``read_*`` on the cluster: which
topics are pending depends on the output, which lives with the driver; it also makes stdin and
every input format behave as they do locally. A topic is a few bytes against ~0.3 s of compute.
Pipelines of your own can use ``Explain`` directly:

    ds = ray.data.read_parquet("s3://bucket/topics/")
    ds = ds.map_batches(Explain, fn_constructor_kwargs={"threads": 2, "seed": 1},
                        compute=ray.data.ActorPoolStrategy(size=8), num_cpus=2, batch_size=16)
    ds.write_parquet("s3://bucket/explained/")   # text, gloss, seed, error, timings columns added
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import warnings
from typing import Any, Iterator

from ..errors import EmogramError, InputError
from .batch_io import Task, payload

DEFAULT_THREADS = 1  # llama.cpp threads (= Ray CPUs) per actor; see docs/batch.md
DEFAULT_CHUNK = 16  # topics per Ray task: a killed actor's retries redo at most 2 of these


class Explain:
    """A Ray Data callable class: one loaded model per actor. Takes batches with a ``topic`` column
    (``column=``) and optionally ``seed``; returns them with ``text``, ``gloss``, ``seed``,
    ``error`` and ``timings`` (JSON) added. A bad topic gets an ``error``, never an exception."""

    def __init__(self, model: str | None = None, device: str = "auto", threads: int = DEFAULT_THREADS,
                 column: str = "topic", seed: int | None = None, batch_size: int | None = None,
                 adapter: str | bool | None = None, **options: Any) -> None:
        from ..api import Explainer

        self.explainer = Explainer(model, device=device, threads=threads, adapter=adapter)
        self.column, self.seed, self.batch_size, self.options = column, seed, batch_size, options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        topics = [str(t) for t in batch[self.column]]
        n = len(topics)
        if "seed" in batch:
            seeds = [int(s) for s in batch["seed"]]
        else:
            seeds = [secrets.randbelow(2**32) if self.seed is None else self.seed for _ in topics]
        text: list[str | None] = [None] * n
        gloss: list[str | None] = [None] * n
        error: list[str | None] = [None] * n
        timings: list[str | None] = [None] * n
        plan: list[str | None] = [None] * n
        adapter: list[str | None] = [None] * n
        for k, result in self.explainer.explain_iter(topics, seed=seeds, batch_size=self.batch_size,
                                                     **self.options):
            data = payload(result)
            text[k], gloss[k], error[k] = data.get("text"), data.get("gloss"), data.get("error")
            timings[k] = json.dumps(data["timings"]) if "timings" in data else None
            plan[k] = json.dumps(data["plan"]) if "plan" in data else None
            adapter[k] = data.get("adapter")
        return {**batch, "seed": seeds, "text": text, "gloss": gloss, "error": error,
                "timings": timings, "plan": plan, "adapter": adapter}


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError('--ray needs Ray Data: pip install "emogram[ray]"') from None
    return ray


def connect(address: str) -> bool:
    """Join a cluster (``"auto"``, ``ray://host:10001``, ``host:6379``) or start a local one on the
    cores this process may use (``"local"``). Returns True when this call started Ray (so the
    caller shuts it down). An already initialised Ray is used as it is."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if address == "local":
        from ..backend.machine import usable_cores
        ray.init(address="local", num_cpus=usable_cores(), **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"could not connect to a Ray cluster at {address!r}: {exc}") from None
    return True


def runner(address: str, *, model, device: str, adapter, workers: int | None, threads: int | None,
           options: dict, batch_size: int | None, chunk_size: int | None):
    """A batch runner on Ray, and the threads per actor (for the records)."""
    ray = _import_ray()
    threads = threads or DEFAULT_THREADS

    def run(tasks: list[Task]) -> Iterator[tuple[Task, dict]]:
        started = connect(address)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            actors = workers or max(1, cpus // threads)
            if actors * threads > cpus:
                warnings.warn(f"{actors} actors x {threads} CPUs each is more than the cluster's {cpus} "
                              "CPUs: the rest wait for the cluster to grow", stacklevel=2)
            chunk = chunk_size or max(1, min(DEFAULT_CHUNK, math.ceil(len(tasks) / (2 * actors))))
            logging.getLogger("ray.data").setLevel(logging.ERROR)  # our bar and summary say it all
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            context.verbose_stats_logs = False
            items = [{"index": i, "topic": t.topic, "seed": t.seed} for i, t in enumerate(tasks)]
            ds = ray.data.from_items(items, override_num_blocks=max(1, min(math.ceil(len(items) / chunk), 1000)))
            ds = ds.map_batches(
                Explain, batch_size=chunk, num_cpus=threads,
                compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2),
                fn_constructor_kwargs=dict(model=model, device=device, threads=threads,
                                           batch_size=batch_size, adapter=adapter, **options))
            try:
                for out in ds.iter_batches(batch_size=None, batch_format="pandas"):
                    for row in out.itertuples(index=False):
                        task = tasks[int(row.index)]
                        if isinstance(row.error, str):
                            yield task, {"error": row.error}
                        else:
                            yield task, {"text": row.text, "gloss": row.gloss,
                                         "timings": json.loads(row.timings),
                                         "plan": json.loads(row.plan) if isinstance(row.plan, str) else None,
                                         "adapter": row.adapter if isinstance(row.adapter, str) else None}
            except ray.exceptions.RayError as exc:
                cause = _emogram_cause(exc)
                if cause is not None:
                    raise cause from None
                raise EmogramError(f"the Ray job failed: {str(exc).splitlines()[0]}") from exc
        finally:
            if started:
                ray.shutdown()

    return run, threads


def _emogram_cause(exc: BaseException | None) -> EmogramError | None:
    """The EmogramError (e.g. a ModelError in an actor's constructor) behind a Ray error, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, EmogramError):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None
