"""The argument checks every layer shares: an int in a range, a number, a flag, a seed, a choice.

One typed error each, naming the argument: ``InputTypeError`` (a ``TypeError``) for the wrong kind,
``InputError`` (a ``ValueError``) for a value out of range. The option table (``option_table.py``),
the API's own arguments (``batch_size``), batch jobs (``workers``, ``seed``) and the sampler's knobs
all check through these, so one kind of mistake reads the same wherever it is made.
"""

from __future__ import annotations

import math
from typing import Sequence

from .errors import InputError, InputTypeError


def whole(value: object, name: str, lo: int | None = None, hi: int | None = None, *,
          what: str = "") -> int:
    """``value`` as an int (never a bool) from ``lo`` to ``hi`` (either may be open: None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an int{what}, not {type(value).__name__}")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise InputError(f"{name} must be between {lo} and {hi}, got {value}")
    if lo is not None and value < lo:
        raise InputError(f"{name} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise InputError(f"{name} must be at most {hi}, got {value}")
    return value


def number(value: object, name: str, lo: float | None = None) -> float:
    """``value`` as a finite float (an int or float, never a bool), at least ``lo`` if given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value}")
    if lo is not None and value < lo:
        raise InputError(f"{name} must be >= {lo:g}, got {value}")
    return float(value)


def flag(value: object, name: str) -> bool:
    """``value`` is True or False (not 1, not "yes")."""
    if not isinstance(value, bool):
        raise InputTypeError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def seed(value: object, name: str = "seed", *, what: str = "") -> int | None:
    """``value`` is None (a random seed) or an int (any int: it is taken modulo 2**64)."""
    return None if value is None else whole(value, name, what=what)


def choice(value: object, name: str, choices: Sequence[str]) -> str:
    """``value`` is one of ``choices`` (strings)."""
    listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
    if not isinstance(value, str):
        raise InputTypeError(f"{name} must be {listed}, not {type(value).__name__}")
    if value not in choices:
        raise InputError(f"{name} must be {listed}, not {value!r}")
    return value
