"""One error hierarchy, so callers can catch ``EmogramError`` and know it came from here.

Errors that describe bad input also derive from the matching built-in (``ValueError``,
``TypeError``) so generic code that expects those still works.
"""

from __future__ import annotations


class EmogramError(Exception):
    """Root of every error emogram raises on purpose."""


class InputError(EmogramError, ValueError):
    """An argument has a wrong value: blank topic, contradictory options, a non-emoji palette."""


class InputTypeError(InputError, TypeError):
    """An argument has the wrong type (for example a topic that is not a ``str``)."""


class ModelError(EmogramError):
    """A model could not be found, verified or loaded. The message names the path or preset."""


class ModelNotFoundError(ModelError, LookupError):
    """No store holds a model of that name (``ollama:``, ``lmstudio:``, ``hf-cache:``), or the name
    is ambiguous. ``nearest`` holds the closest names that were found, best first."""

    def __init__(self, message: str, nearest: tuple[str, ...] = ()) -> None:
        self.nearest = tuple(nearest)
        super().__init__(message)


class ModelStoreError(ModelError):
    """A store has the model's entry, but emogram cannot use it (a split GGUF, for example). The
    subclasses name the common cases."""


class BlobMissingError(ModelStoreError):
    """An ollama manifest is present, but the blob it names is not in the store."""


class NotGGUFError(ModelStoreError):
    """A store's model is not a GGUF file (an ollama layer of another kind, safetensors)."""


class DigestMismatchError(ModelStoreError):
    """A blob's sha256 (or size) differs from what its manifest says: the file is damaged."""


class GrammarError(EmogramError):
    """llama.cpp refused a grammar. ``detail`` carries llama.cpp's own message."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message if not detail else f"{message}: {detail}")
        self.detail = detail


class ParseError(EmogramError, ValueError):
    """Text is not in the emogram language. Carries the 1-based line and column."""

    def __init__(self, message: str, *, line: int, column: int, char: str | None,
                 text: str = "") -> None:
        self.line = line
        self.column = column
        self.char = char
        self.text = text
        super().__init__(f"{message} at line {line}, column {column}" + self._context())

    def _context(self) -> str:
        if not self.text:
            return ""
        lines = self.text.split("\n")
        if not 1 <= self.line <= len(lines):
            return ""
        row = lines[self.line - 1]
        return f"\n  {row}\n  {' ' * (self.column - 1)}^"


class DecodingError(EmogramError):
    """Constrained decoding could not continue: no token the grammar allows was available."""
