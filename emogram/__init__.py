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

``import emogram`` does not load llama.cpp: the names that need a model (``explain`` and the rest
of ``emogram.api``) are imported on first use, so ``emogram.parse`` and the renderers stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import (DecodingError, EmogramError, GrammarError, InputError, InputTypeError,
                     ModelError, ModelNotFoundError, ModelStoreError, ParseError)
from .language.explanation import Explanation, parse
from .language.grammar import Operator, Shape, compile_grammar
from .language.tree import Emoji, Group, Line, Tree
from .language.unicode import EmojiFilter

_LAZY = {name: "api" for name in ("explain", "stream", "explain_many", "explain_iter", "aexplain",
                                  "astream", "Explainer")}
_LAZY.update({name: "jobs.batching" for name in ("batch", "BatchRun", "BatchRecord")})

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
