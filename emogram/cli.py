"""The ``emogram`` command: a thin layer over the public API, in the spirit of ``ollama run``.

    emogram "transformers"                 stream an explanation
    emogram "black holes" --format gloss   the same, in words
    emogram models                         presets and whether each is installed
    emogram grammar --lines 1-2            the GBNF, for llama-server or any GBNF engine
    emogram doctor                         which sampler, backend and offload are active
    emogram batch topics.txt -o out.jsonl  one JSONL record per topic, resumable
    emogram serve                          keep the model loaded: later commands answer at once

User errors print one line and exit non-zero (1: emogram refused the input or model; 2: bad
command-line usage; 130: interrupted); no tracebacks.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # (typing, argparse and dataclasses cost a served command a third of its start)
if TYPE_CHECKING:
    import argparse
    from typing import Callable, Sequence

from ._version import __version__
from .errors import EmogramError

FORMATS = ("text", "gloss", "json", "mermaid", "html")


def _add_adapter_flags(p: argparse.ArgumentParser, command: str) -> None:
    from .option_table import add_flags
    g = p.add_mutually_exclusive_group()
    g.add_argument("--adapter", metavar="PATH", help="a GGUF LoRA adapter of your own (default: the one "
                   "emogram ships for the model, if any: the default model's names an explanation's stages)")
    g.add_argument("--no-adapter", dest="adapter", action="store_const", const=False,
                   help="the model without any adapter")
    add_flags(p, command, "source")


def _add_answer_flags(p: argparse.ArgumentParser, command: str) -> None:
    """The flags of the options that shape an answer and say how it is made."""
    from .option_table import add_flags
    add_flags(p, command, "shape")
    add_flags(p, command, "made")


def _parser() -> argparse.ArgumentParser:
    import argparse
    from .option_table import EXPLAIN, add_flags, add_model_flags
    p = argparse.ArgumentParser(
        prog="emogram", description="Explain anything in emoji only.",
        epilog="Commands: " + " | ".join(f"emogram {c.name}" for c in COMMANDS if c.name != "explain") +
               ". To explain a word that is also a command: emogram explain models.")
    p.add_argument("topic", nargs="+", help="what to explain")
    p.add_argument("--format", "-f", choices=FORMATS, default="text")
    add_model_flags(p, "preset name, .gguf path, hf:OWNER/REPO[:GLOB], ollama:NAME[:TAG], "
                     "lmstudio:PUBLISHER/REPO[/FILE] or hf-cache:OWNER/REPO[:GLOB] (emogram models lists "
                     "them; default: $EMOGRAM_MODEL or the default preset)")
    _add_adapter_flags(p, EXPLAIN)
    add_flags(p, EXPLAIN, "main")
    p.add_argument("--verbose", "-v", action="store_true", help="print timings to stderr")
    p.add_argument("--llama-log", action="store_true", help="show llama.cpp's own log")
    p.add_argument("--no-stream", action="store_true", help="print the answer only once complete")
    p.add_argument("--version", action="version", version=f"emogram {__version__}")
    _add_answer_flags(p, EXPLAIN)
    return p


def _explain(argv: Sequence[str], served: bool = False) -> int:
    marks = {"main": time.perf_counter()}
    args = _parser().parse_args(argv)
    import threading
    from importlib import import_module

    from .backend import models
    load = dict(device=args.device, verbose=args.llama_log, progress=True, adapter=args.adapter)
    # llama.cpp's model load (0.6 s, with the interpreter's lock released) starts at once, beside
    # the imports, the checks of the input and what the answer needs but no model does; the
    # Explainer below takes the model it loaded (or, had it failed, fails with its error)
    bound = threading.Event()

    def load_model() -> None:
        try:
            import_module(".backend.llama", __package__)  # the bindings' import holds the lock: not shared
        finally:
            bound.set()
        models.load(args.model, **load)
    threading.Thread(target=_quietly, args=(load_model,), name="emogram-load", daemon=True).start()
    bound.wait(5.0)
    from .backend import logs
    logs.set_verbose(args.llama_log)  # also for a model loaded before (emogram serve)
    from .api import Explainer
    from .decoding.engine import prepare
    from .language.explanation import Explanation
    from .options import build_request, clean_topic
    topic = " ".join(args.topic)
    clean_topic(topic)
    from .option_table import EXPLAIN, flag_values
    options = flag_values(args, EXPLAIN)
    _quietly(prepare, build_request(**options))  # the options are checked here, before the answer
    # the context is made in the decode thread while the answer's set-up runs here
    explainer = Explainer(args.model, **load).warm_up()
    marks["loaded"] = time.perf_counter()
    stream_text = args.format == "text" and not args.no_stream
    tty = sys.stderr.isatty()
    explanation = None
    thinking = False
    for event in explainer.events(topic, **options):
        if event.kind == "think":
            if not thinking:
                sys.stderr.write("\x1b[2mThinking...\n" if tty else "Thinking...\n")
                thinking = True
            sys.stderr.write(event.text)
            sys.stderr.flush()
        elif event.kind == "lexeme":
            if thinking:
                sys.stderr.write("\n...done thinking.\x1b[0m\n\n" if tty else "\n...done thinking.\n\n")
                thinking = False
            if stream_text:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        elif event.kind == "done":
            explanation = event.explanation
    assert isinstance(explanation, Explanation)
    if stream_text:
        sys.stdout.write("\n")
    elif args.format == "text":
        print(explanation)
    elif args.format == "gloss":
        print(explanation.gloss())
    elif args.format == "json":
        print(explanation.to_json(stats=args.verbose))
    elif args.format == "mermaid":
        sys.stdout.write(explanation.to_mermaid())
    elif args.format == "html":
        sys.stdout.write(explanation.to_html())
    sys.stdout.flush()
    if args.verbose:
        marks["done"] = time.perf_counter()
        _timings(explanation, marks, served)
    return 0


def _quietly(fn, *args, **kwargs) -> None:
    """Work done ahead of need: a failure here shows again, with its message, where it is needed."""
    try:
        fn(*args, **kwargs)
    except Exception:
        pass


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f}s"
    return f"{seconds * 1000:.3f}ms"


def _process_started() -> float | None:
    """When this process started, on ``time.perf_counter``'s clock (Linux: ``/proc``), or None."""
    try:
        from pathlib import Path
        fields = Path("/proc/self/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.perf_counter() - age


TIMING_WIDTH = 22  # the rows' labels and values line up at this column


def _timings(explanation, marks: dict[str, float], served: bool = False) -> None:
    s = explanation.stats
    rows = [
        ("total duration", _duration(s.total_seconds + (0.0 if served else s.load_seconds))),
        ("load duration", f"0 (the server loaded the model once, in {_duration(s.load_seconds)})"
                          if served else _duration(s.load_seconds)),
        ("prompt eval count", f"{s.prompt_tokens} token(s)"),
        ("prompt eval duration", _duration(s.prompt_seconds)),
        ("prompt eval rate", f"{s.prompt_rate:.2f} tokens/s"),
    ]
    if s.think_tokens:
        rows.append(("think count", f"{s.think_tokens} token(s)"))
        rows.append(("think duration", _duration(s.think_seconds)))
    rows += [
        ("eval count", f"{s.eval_tokens} token(s)"),
        ("eval duration", _duration(s.eval_seconds)),
        ("eval rate", f"{s.eval_rate:.2f} tokens/s"),
        ("constraint per token", f"{s.constraint_median_us:.0f}µs median, {s.constraint_p99_us:.0f}µs p99 "
                                 f"({s.sampler} sampler)"),
        ("time to first emoji", _duration(s.first_emoji_seconds)),
        ("model", explanation.model),
        ("adapter", explanation.adapter or "none"),
    ]
    for source in explanation.sources:  # the bank entries the answer used
        where = "" if source.bank == "emogram" else f" ({source.bank}:{source.line})"
        rows.append((f"source, {source.used}", f"{source.topic}{where}: {source.answer}"))
    if not explanation.sources:
        rows.append(("sources", "none (no bank entry was close enough)"))
    # the whole process, so that what the figures above leave out shows too
    started = _process_started()
    if served:  # the server's process is not the command's: the command adds its own total
        rows.append(("served by", f"emogram serve (pid {os.getpid()})"))
    elif started is not None:
        rows.append(("process so far", _duration(marks["done"] - started)))
        rows.append(("  start, imports", _duration(marks["main"] - started)))
    rows.append(("  model and checks", _duration(marks["loaded"] - marks["main"])))
    rows.append(("  answer and output", _duration(marks["done"] - marks["loaded"])))
    for key, value in rows:
        sys.stderr.write(f"{key + ':':{TIMING_WIDTH}}{value}\n")


def _batch_parser() -> argparse.ArgumentParser:
    import argparse
    p = argparse.ArgumentParser(
        prog="emogram batch", description="Explain every topic of a file; one JSONL record each. "
        "Rerun the same command to resume: topics already in the output are skipped.")
    p.add_argument("input", nargs="?", default="-", help="topics: one per line, .csv or .jsonl (default: stdin)")
    p.add_argument("--output", "-o", default="-", help="JSONL output, appended to (default: stdout, no resume)")
    p.add_argument("--column", help="the CSV column or JSONL field holding the topic (default: topic)")
    p.add_argument("--input-format", choices=("auto", "lines", "csv", "jsonl"), default="auto")
    p.add_argument("--workers", "-w", type=int, help="processes (default 1), or Ray actors with --ray")
    p.add_argument("--threads", type=int, help="llama.cpp threads per worker (default: cores // workers)")
    p.add_argument("--batch-size", type=int, help="sequences decoded together in a worker (default: 1 on "
                   "the CPU, exact and fastest there; 16 with GPU offload)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray: a local cluster, 'auto' or a cluster address")
    from .option_table import BATCH, add_flags, add_model_flags
    add_model_flags(p, "preset name, .gguf path, hf:, ollama:, lmstudio: or hf-cache: model (as for emogram)")
    _add_adapter_flags(p, BATCH)
    add_flags(p, BATCH, "main")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    _add_answer_flags(p, BATCH)
    return p


def _batch(argv: Sequence[str], served: bool = False) -> int:
    args = _batch_parser().parse_args(argv)
    import warnings
    from .jobs.batching import batch
    def show_warning(message: Warning | str, *rest: object, **kw: object) -> None:
        sys.stderr.write(f"emogram: warning: {message}\n")
    warnings.showwarning = show_warning
    from .option_table import BATCH, flag_values
    opts = flag_values(args, BATCH)
    seed = opts.pop("seed", None)
    with batch(args.input, args.output, column=args.column, input_format=args.input_format,
               model=args.model, device=args.device, adapter=args.adapter, workers=args.workers,
               threads=args.threads,
               ray=args.ray, seed=seed, progress=args.progress, batch_size=args.batch_size,
               **opts) as run:
        for _ in run:
            pass
    where = "" if args.output == "-" else f" in {args.output}"
    sys.stderr.write(f"emogram batch: {run.summary()}{where}\n")
    return 0


def _grammar_parser() -> argparse.ArgumentParser:
    import argparse
    p = argparse.ArgumentParser(prog="emogram grammar",
                                description="Print the grammar for the given options.")
    p.add_argument("--lark", action="store_true", help="print the lark grammar instead of GBNF")
    p.add_argument("--stats", action="store_true", help="print sizes to stderr")
    p.add_argument("--write", metavar="DIR", help="regenerate the checked-in grammar files in DIR "
                                                  "(the repository's grammars/) and exit")
    from .option_table import GRAMMAR
    _add_answer_flags(p, GRAMMAR)
    return p


def _grammar(argv: Sequence[str], served: bool = False) -> int:
    args = _grammar_parser().parse_args(argv)
    if args.write:
        from .language.grammar import write_generated
        for path in write_generated(args.write):
            print(f"wrote {path} ({path.stat().st_size} bytes)")
        return 0
    from .options import build_request
    from .option_table import GRAMMAR, flag_values
    grammar = build_request(**flag_values(args, GRAMMAR)).grammar
    sys.stdout.write(grammar.lark if args.lark else grammar.gbnf)
    if args.stats:
        s = grammar.stats
        assert s is not None  # compile_grammar always measures the grammar it makes
        from .language.grammar import describe_version
        sys.stderr.write(f"{describe_version(grammar.emoji_filter)}: {s.emoji} emoji, {s.gbnf_rules} GBNF rules, {s.root_alternatives} root "
                         f"alternatives, {s.gbnf_bytes} bytes GBNF, {s.lark_bytes} bytes lark, "
                         f"{s.seconds * 1000:.1f} ms\n")
    return 0


def _models(argv: Sequence[str], served: bool = False) -> int:
    from . import describe
    return describe.models(argv)


def _doctor(argv: Sequence[str], served: bool = False) -> int:
    from . import describe
    return describe.doctor(argv)


def _serve(argv: Sequence[str], served: bool = False) -> int:
    from .server import serve
    return serve(argv, lambda a: run(a, served=True), _explains)


class Command:
    """One ``emogram`` subcommand: its name, a line of help, and its handler (argv, served)."""

    __slots__ = ("name", "help", "handler")

    def __init__(self, name: str, help: str, handler: Callable[..., int]) -> None:
        self.name, self.help, self.handler = name, help, handler


COMMANDS = (
    Command("explain", "explain a topic (the default: emogram TOPIC)", _explain),
    Command("models", "presets and whether each is installed", _models),
    Command("grammar", "the GBNF, for llama-server or any GBNF engine", _grammar),
    Command("doctor", "which sampler, backend and offload are active", _doctor),
    Command("batch", "one JSONL record per topic, resumable", _batch),
    Command("serve", "keep the model loaded: later commands answer at once", _serve),
)
BY_COMMAND = {c.name: c for c in COMMANDS}
PARSERS = {"explain": _parser, "batch": _batch_parser, "grammar": _grammar_parser}  # those with option flags


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if _explains(args):
        from .serve.client import ask  # a running `emogram serve` answers at once; else, this process
        try:
            answered = ask(args)
        except KeyboardInterrupt:
            sys.stderr.write("\nemogram: interrupted\n")
            return 130
        if answered is not None:
            code, rows = answered
            started = _process_started()
            if rows and started is not None:  # the server wrote the answer's rows; this is ours
                sys.stderr.write(f"{'process so far:':{TIMING_WIDTH}}{_duration(time.perf_counter() - started)}\n")
            return code
    return run(args)


def console() -> None:
    """The ``emogram`` command's entry point: ``main``, then, after an explanation, an immediate
    exit. Python's teardown would free the model piece by piece (0.14 s here) in a process about to
    end; what the command wrote is flushed, and its cache files were complete (written whole, then
    renamed) before the answer was."""
    args = sys.argv[1:]
    code = main(args)
    if _explains(args):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)


def _explains(args: Sequence[str]) -> bool:
    """Is this command an explanation (what ``emogram serve`` answers)?"""
    return not args or args[0] not in BY_COMMAND or args[0] == "explain"


def run(args: Sequence[str], served: bool = False) -> int:
    """The command in this process (``served``: for ``emogram serve``, on behalf of another)."""
    args = list(args)
    try:
        if args and args[0] in BY_COMMAND:
            return BY_COMMAND[args[0]].handler(args[1:], served)
        return _explain(args, served)
    except EmogramError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"emogram: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\nemogram: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file or directory the user named cannot be read or written
        sys.stdout.flush()
        sys.stderr.write(f"emogram: error: {_os_error(exc)}\n")
        return 1


def _os_error(exc: OSError) -> str:
    """``[Errno 13] Permission denied: 'x'`` -> ``permission denied: x``, on one line."""
    what = (exc.strerror or str(exc) or type(exc).__name__).splitlines()[0]
    where = exc.filename if exc.filename is not None else ""
    return f"{what[:1].lower()}{what[1:]}: {where}" if where else what


if __name__ == "__main__":
    console()
