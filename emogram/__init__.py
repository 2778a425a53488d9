"""emogram: explain anything in emoji only, guaranteed by a grammar enforced in llama.cpp's sampler.

    >>> from emogram import explain
    >>> print(explain("transformers"))          # doctest: +SKIP
    📄 ➡️ 🔤🔢 ➕ 📍
    ➡️ 👀🔄 🟰 🧠

One package per layer, imports flowing one way (docs/architecture.md): ``language`` (the emoji
inventory, the grammar, the tree, the renderers), ``constraint`` (which tokens may follow),
``knowledge`` (the lexicon, the prompts), ``backend`` (llama.cpp), ``decoding`` (the sequences and
their scheduler), then ``api`` and ``options`` (the public functions), ``jobs`` (batch jobs) and
``cli``.

``import emogram`` loads nothing but the errors: every other name is imported on first use, so
``emogram.parse`` and the renderers never load llama.cpp, and the ``emogram`` command can hand its
topic to a running ``emogram serve`` before it imports anything heavy (about 30 ms, not 140).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing costs a served command 5 ms of its 30
if TYPE_CHECKING:
    from typing import Any

from ._version import __version__
from .errors import (DecodingError, EmogramError, GrammarError, InputError, InputTypeError,
                     ModelError, ModelNotFoundError, ModelStoreError, ParseError)

_LAZY = {name: "api" for name in ("explain", "stream", "explain_many", "explain_iter", "aexplain",
                                  "astream", "Explainer")}
_LAZY.update({name: "jobs.batching" for name in ("batch", "BatchRun", "BatchRecord")})
_LAZY.update({name: "language.explanation" for name in ("Explanation", "parse")})
_LAZY.update({name: "language.grammar" for name in ("Operator", "Shape", "compile_grammar")})
_LAZY.update({name: "language.tree" for name in ("Emoji", "Group", "Line", "Tree")})
_LAZY["EmojiFilter"] = "language.unicode"

__all__ = [
    "__version__",
    "explain", "stream", "explain_many", "explain_iter", "aexplain", "astream", "Explainer",
    "batch", "BatchRun", "BatchRecord",
    "parse", "Explanation", "Tree", "Line", "Group", "Emoji", "Operator",
    "Shape", "EmojiFilter", "compile_grammar",
    "EmogramError", "InputError", "InputTypeError", "ModelError", "ModelNotFoundError",
    "ModelStoreError", "GrammarError", "ParseError", "DecodingError",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
