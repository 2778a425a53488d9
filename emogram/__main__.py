"""``python -m emogram``: the same as the ``emogram`` command."""

from .cli import console

console()
