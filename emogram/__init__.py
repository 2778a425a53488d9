"""emogram: explain anything in emoji only, guaranteed by a grammar enforced in llama.cpp's sampler.

    >>> from emogram import explain
    >>> print(explain("transformers"))          # doctest: +SKIP
    📄 ➡️ 🔤🔢 ➕ 📍
    ➡️ 👀🔄 🟰 🧠

The data flows one way: ``unicode`` (emoji inventory) -> ``grammar`` (GBNF + lark) -> ``engine``
(constrained decoding on a GGUF model, ``llama`` + ``models``) -> ``language`` (parse, tree) ->
``render`` (words, JSON, Mermaid, HTML).
"""

__version__ = "0.1.0"

from .api import Explainer, explain, explain_many, stream
from .batch import BatchRecord, BatchRun, batch  # the name batch is this function, not the module
from .errors import (DecodingError, EmogramError, GrammarError, InputError, InputTypeError,
                     ModelError, ParseError)
from .grammar import Operator, Shape, compile_grammar
from .language import Emoji, Explanation, Group, Line, parse
from .unicode import EmojiFilter

__all__ = [
    "__version__",
    "explain", "stream", "explain_many", "Explainer", "batch", "BatchRun", "BatchRecord",
    "parse", "Explanation", "Line", "Group", "Emoji", "Operator",
    "Shape", "EmojiFilter", "compile_grammar",
    "EmogramError", "InputError", "InputTypeError", "ModelError", "GrammarError", "ParseError",
    "DecodingError",
]
