"""The public API: ``explain``, ``stream``, ``explain_many``, ``explain_iter``, their asyncio twins
``aexplain`` and ``astream``, and ``Explainer`` (one loaded model).

Arguments are checked here, before any model is loaded, so bad input fails fast with an
``InputError`` (a ``ValueError``) or ``InputTypeError`` (a ``TypeError``) that says which argument
and why (``options.py``). Every generation is a sequence of the model's scheduler, so calls from
many threads, interleaved streams and asyncio tasks share one model safely and are decoded
together, each giving the text it would give alone.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import AsyncIterator, Iterable, Iterator, Sequence

from .backend import models
from .decoding.engine import Engine, Request
from .checks import whole
from .defaults import DEFAULT_BATCH_SIZE, GPU_BATCH_SIZE, MAX_BATCH_SIZE
from .errors import DecodingError, EmogramError
from .language.explanation import Explanation, parse
from .option_table import docstring_list
from .options import build_request, clean_topic, per_topic_seeds, topic_list
from .stats import Event

__all__ = ["Explainer", "explain", "stream", "explain_many", "explain_iter", "aexplain", "astream",
           "build_request", "clean_topic"]


class Explainer:
    """One loaded model, ready for many explanations. Shared with every other Explainer of the
    same model in the process; safe to use from several threads and asyncio tasks at once."""

    def __init__(self, model: str | os.PathLike[str] | None = None, *, device: str = "auto",
                 verbose: bool = False, progress: bool = False, threads: int | None = None,
                 adapter: str | os.PathLike[str] | bool | None = None) -> None:
        self.model = models.load(model, device=device, verbose=verbose, progress=progress,
                                 threads=threads, adapter=adapter)
        self.engine = _engine_for(self.model)

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def adapter_name(self) -> str:
        """The LoRA adapter applied to the model ("" for none): see ``models.resolve_adapter``."""
        return self.model.adapter.name if self.model.adapter is not None else ""

    def warm_up(self) -> "Explainer":
        """Create the model's context now, in the background, rather than at the first answer: a
        one-shot command overlaps it with the first answer's set-up."""
        self.engine.start()
        return self

    def close(self) -> None:
        """Free the model (for every Explainer sharing it); later calls raise ``ModelError``."""
        models.unload(self.model)

    def __enter__(self) -> "Explainer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one topic --
    def explain(self, topic: str, **options) -> Explanation:
        """Explain ``topic`` in emoji. See ``emogram.explain`` for the options."""
        [text], request = _precheck([topic], options)
        return self._explain(text, request)

    def _explain(self, text: str, request: Request) -> Explanation:
        return self._finish(text, request, self.engine.submit(text, request).future.result())

    def stream(self, topic: str, **options) -> "Stream":
        """Each emoji, operator, space and newline as soon as it is complete, then the
        ``Explanation``. Close the stream (or use ``with``) to stop it early."""
        [text], request = _precheck([topic], options)
        return Stream(self, text, request)

    def events(self, topic: str, **options) -> "Stream":
        """Like ``stream``, but yielding the raw ``Event``s (thinking pieces too): the CLI uses it."""
        [text], request = _precheck([topic], options)
        return Stream(self, text, request, raw=True)

    async def aexplain(self, topic: str, **options) -> Explanation:
        """``explain`` for asyncio: decoding runs off the event loop; cancelling the task stops it."""
        [text], request = _precheck([topic], options)
        job = self.engine.submit(text, request)
        try:
            result = await asyncio.wrap_future(job.future)
        finally:
            job.cancel()  # a no-op once finished; frees the sequence if the task was cancelled
        return self._finish(text, request, result)

    async def astream(self, topic: str, **options) -> AsyncIterator[str | Explanation]:
        """``stream`` for asyncio: an async iterator; closing it or cancelling the task stops it."""
        [text], request = _precheck([topic], options)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                job.cancel()

        job = self.engine.submit(text, request, on_event=put)
        job.future.add_done_callback(lambda _: put(None))
        try:
            while True:
                event = await events.get()
                if event is None:
                    break
                if event.kind == "lexeme":
                    yield event.text
            yield self._finish(text, request, job.future.result())
        finally:
            job.cancel()

    # -- many topics --
    def explain_iter(self, topics: Iterable[str], *, seed: int | Sequence[int] | None = None,
                     batch_size: int | None = None, **options
                     ) -> Iterator[tuple[int, Explanation | EmogramError]]:
        """Yield ``(index, explanation)`` for each topic as it finishes (finish order, which may
        differ from input order), or ``(index, error)`` for a topic that failed on its own (e.g. too
        long): a bad topic never stops the others. ``seed`` is one int for every topic, or one per
        topic. Up to ``batch_size`` topics are decoded side by side. Options are checked first."""
        items, base = _precheck(topic_list(topics), options, batch_size=batch_size, clean=False)
        seeds = per_topic_seeds(seed, len(items))
        size = _batch_size(batch_size, self.model.load_info.gpu_offload)
        return self._run_many([(k, t, seeds[k]) for k, t in enumerate(items)], base, size, strict=False)

    def explain_many(self, topics: Iterable[str], *, batch_size: int | None = None,
                     progress: bool | None = None, **options) -> list[Explanation]:
        """Explain each topic, in order (``seed`` + k for the k-th topic when ``seed`` is given).
        Every topic and option is checked before any work; up to ``batch_size`` topics (default
        1 on the CPU, 16 with GPU offload) are decoded side by side. A progress bar is drawn on
        stderr when it is a terminal, or when ``progress=True``."""
        items, base = _precheck(topic_list(topics), options, batch_size=batch_size)
        seed = options.get("seed")
        size = _batch_size(batch_size, self.model.load_info.gpu_offload)
        show = sys.stderr.isatty() if progress is None else bool(progress)
        work = [(k, t, None if seed is None else seed + k) for k, t in enumerate(items)]
        out: list[Explanation | None] = [None] * len(items)
        for done, (k, result) in enumerate(self._run_many(work, base, size, strict=True), 1):
            out[k] = result
            if show:
                _progress(done, len(items), items[k])
        if show and items:
            sys.stderr.write("\n")
        return out  # type: ignore[return-value]

    def _run_many(self, work, base: Request, size: int, *, strict: bool):
        """Keep up to ``size`` jobs in flight; yield (index, result or error) as each finishes."""
        import concurrent.futures as cf
        from dataclasses import replace
        self.engine.scheduler.ensure_slots(size)
        pending: dict[cf.Future, tuple] = {}
        queue = list(reversed(work))
        try:
            while queue or pending:
                while queue and len(pending) < size:
                    k, topic, seed = queue.pop()
                    try:
                        text = clean_topic(topic)
                        request = replace(base, seed=seed)
                        job = self.engine.submit(text, request, batched=size > 1)
                    except EmogramError as exc:
                        if strict:
                            raise
                        yield k, exc
                        continue
                    pending[job.future] = (k, text, request, job)
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for future in done:
                    k, text, request, job = pending.pop(future)
                    try:
                        yield k, self._finish(text, request, future.result())
                    except EmogramError as exc:
                        if strict:
                            raise
                        yield k, exc
        finally:
            for k, text, request, job in pending.values():
                job.cancel()

    def _finish(self, topic: str, request: Request, result) -> Explanation:
        try:
            tree = parse(result.text, grammar=request.grammar).tree
        except Exception as exc:  # by construction unreachable: say so loudly if it happens
            raise DecodingError(f"internal error: decoded text does not parse ({exc})") from exc
        return Explanation(tree, topic=topic, reasoning=result.reasoning, stats=result.stats,
                           model=self.model.name, plan=result.plan, adapter=self.adapter_name,
                           sources=result.sources)


class Stream:
    """An open generation, read piece by piece from any thread. It runs in the model's scheduler
    whether or not it is read; ``close()``, leaving a ``with`` block, or dropping the stream stops
    it and frees its sequence."""

    def __init__(self, explainer: Explainer, topic: str, request: Request, *, raw: bool = False) -> None:
        import queue
        self._explainer, self._topic, self._request, self._raw = explainer, topic, request, raw
        events: queue.SimpleQueue = queue.SimpleQueue()
        self._events = events
        # The callbacks hold the queue, not the stream, so a dropped stream is collected (and its
        # job cancelled, in __del__) at once instead of decoding on to the end.
        self._job = explainer.engine.submit(topic, request, on_event=events.put)
        self._job.future.add_done_callback(lambda _: events.put(None))
        self._finished = False

    def __iter__(self) -> "Stream":
        return self

    def __next__(self):
        while not self._finished:
            event = self._events.get()
            if event is None:
                self._finished = True
                if self._job.future.cancelled():  # closed by another thread while we waited
                    break
                explanation = self._explainer._finish(self._topic, self._request, self._job.future.result())
                return Event("done", explanation=explanation) if self._raw else explanation
            if self._raw:
                return event
            if event.kind == "lexeme":
                return event.text
        raise StopIteration

    def close(self) -> None:
        self._finished = True
        self._job.cancel()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._job.cancel()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _batch_size(value, gpu: bool = False) -> int:
    """``batch_size``: sequences decoded together; None for this machine's default."""
    if value is None:
        return GPU_BATCH_SIZE if gpu else DEFAULT_BATCH_SIZE
    return whole(value, "batch_size", 1, MAX_BATCH_SIZE)


def _progress(done: int, total: int, topic: str) -> None:
    width = 24
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {topic[:40]:40s}")
    sys.stderr.flush()


_ENGINE_LOCK = threading.Lock()


def _engine_for(model) -> Engine:
    """The model's engine (one per loaded model; it lives and dies with the model)."""
    with _ENGINE_LOCK:
        engine = getattr(model, "_engine", None)
        if engine is None:
            engine = model._engine = Engine(model)
        return engine


def _precheck(topics: list, options: dict, *, device: object = "auto", adapter: object = None,
              batch_size: object = None, clean: bool = True, seed_per_topic: bool = False
              ) -> tuple[list, Request]:
    """The checks of every public call, in one order, before any model is loaded: the topics
    (cleaned, unless each is to fail on its own), the options (``seed`` one int, or one per topic),
    ``batch_size``, ``device`` and ``adapter``. Returns the topics and the request."""
    items = [clean_topic(t) for t in topics] if clean else list(topics)
    if seed_per_topic:
        options = dict(options)
        per_topic_seeds(options.pop("seed", None), len(items))
    request = build_request(**options)
    if batch_size is not None:
        _batch_size(batch_size)
    models.check_device(device)
    models.check_adapter(adapter)
    return items, request


def explain(topic: str, *, model: str | os.PathLike[str] | None = None, device: str = "auto",
            adapter: str | os.PathLike[str] | bool | None = None, **options) -> Explanation:
    """Explain ``topic`` in emoji only.

    ``model``: a preset name (``emogram models``), a ``.gguf`` path, ``hf:OWNER/REPO[:GLOB]``, or
    None for ``$EMOGRAM_MODEL`` or the default. ``device``: one of ``"auto"``, ``"cpu"``, ``"gpu"``.
    ``adapter``: None applies the LoRA adapter emogram ships for the model (the default model has
    one: it names an explanation's stages), False none, a path a GGUF LoRA of your own.
    """
    [text], request = _precheck([topic], options, device=device, adapter=adapter)
    return Explainer(model, device=device, adapter=adapter)._explain(text, request)


def stream(topic: str, *, model: str | os.PathLike[str] | None = None, device: str = "auto",
           adapter: str | os.PathLike[str] | bool | None = None, **options) -> Stream:
    """Like ``explain`` but yields each emoji and operator as it is decoded; the last item is the
    ``Explanation``."""
    [text], request = _precheck([topic], options, device=device, adapter=adapter)
    return Stream(Explainer(model, device=device, adapter=adapter), text, request)


async def aexplain(topic: str, *, model: str | os.PathLike[str] | None = None, device: str = "auto",
                   adapter: str | os.PathLike[str] | bool | None = None, **options) -> Explanation:
    """``explain`` for asyncio (the model loads in a worker thread, decoding runs off the loop)."""
    _precheck([topic], options, device=device, adapter=adapter)
    explainer = await asyncio.to_thread(Explainer, model, device=device, adapter=adapter)
    return await explainer.aexplain(topic, **options)


async def astream(topic: str, *, model: str | os.PathLike[str] | None = None, device: str = "auto",
                  adapter: str | os.PathLike[str] | bool | None = None,
                  **options) -> AsyncIterator[str | Explanation]:
    """``stream`` for asyncio: ``async for piece in astream("tea"): ...``."""
    _precheck([topic], options, device=device, adapter=adapter)
    explainer = await asyncio.to_thread(Explainer, model, device=device, adapter=adapter)
    async for piece in explainer.astream(topic, **options):
        yield piece


def explain_many(topics: Iterable[str], *, model: str | os.PathLike[str] | None = None,
                 device: str = "auto", progress: bool | None = None, batch_size: int | None = None,
                 adapter: str | os.PathLike[str] | bool | None = None, **options) -> list[Explanation]:
    """Explain several topics with one model load, decoded side by side; a progress bar shows on a
    terminal. ``seed``: one int, ``seed + k`` for the k-th topic."""
    items, _ = _precheck(topic_list(topics), options, device=device, adapter=adapter, batch_size=batch_size)
    return Explainer(model, device=device, adapter=adapter).explain_many(
        items, progress=progress, batch_size=batch_size, **options)


def explain_iter(topics: Iterable[str], *, model: str | os.PathLike[str] | None = None,
                 device: str = "auto", adapter: str | os.PathLike[str] | bool | None = None,
                 **options) -> Iterator[tuple[int, Explanation | EmogramError]]:
    """``Explainer.explain_iter`` on the default (or given) model."""
    checked = {k: v for k, v in options.items() if k != "batch_size"}
    items, _ = _precheck(topic_list(topics), checked, device=device, adapter=adapter,
                         batch_size=options.get("batch_size"), clean=False, seed_per_topic=True)
    return Explainer(model, device=device, adapter=adapter).explain_iter(items, **options)


def _with_options(doc: str | None) -> str:
    """``explain``'s docstring with the option list of ``option_table.TABLE`` appended."""
    indent = "    "
    listed = "\n".join(indent + line if line else "" for line in docstring_list().splitlines())
    return (doc or "").rstrip() + "\n\n" + listed + "\n"


explain.__doc__ = _with_options(explain.__doc__)
