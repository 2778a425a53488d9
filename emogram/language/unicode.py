"""The emoji inventory: every fully-qualified emoji from the ``emoji`` package, and filters over it.

No emoji table is written by hand here. The ``emoji`` package (2.16: Unicode Emoji 18.0) carries
``emoji-test.txt`` as data; we keep the entries whose status is *fully-qualified*, which is the
form a phone renders as an emoji (``❤️`` with U+FE0F, not the text-style ``❤``). Components
(lone skin tones, hair) are not in it: they are never an emoji on their own.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Iterable

import emoji as _emoji_data

from .. import checks
from ..errors import InputError, InputTypeError

ZWJ = "\u200d"
VS16 = "\ufe0f"
KEYCAP = "\u20e3"
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))
REGIONAL_INDICATORS = frozenset(chr(c) for c in range(0x1F1E6, 0x1F200))
TAGS = frozenset(chr(c) for c in range(0xE0020, 0xE0080))


@dataclass(frozen=True)
class EmojiInfo:
    """One fully-qualified emoji and the facts filters need about it."""

    char: str
    name: str  # CLDR short name in English, e.g. "page facing up"
    version: float  # Emoji version that introduced it, e.g. 0.6, 15.1

    @property
    def has_skin_tone(self) -> bool:
        return any(c in SKIN_TONES for c in self.char)

    @property
    def is_zwj(self) -> bool:
        return ZWJ in self.char

    @property
    def is_flag(self) -> bool:
        """Country flags (two regional indicators) and subdivision flags (tag sequences)."""
        return self.char[0] in REGIONAL_INDICATORS or any(c in TAGS for c in self.char)

    @property
    def is_keycap(self) -> bool:
        return KEYCAP in self.char

    @property
    def is_geometric(self) -> bool:
        """Plain coloured shapes (``🟨 🔵 ▪️ 🔶``), told by their CLDR names alone: words of colour,
        size and shape only. Small models fall back on them as filler; the engine pulls away."""
        return set(self.name.lower().replace("-", " ").split()) <= _GEOMETRIC_WORDS

    @property
    def kind(self) -> str:
        """One label per emoji, for counting: single, zwj, skin-tone, flag, tag-flag, keycap, vs16."""
        if len(self.char) == 1:
            return "single"
        if self.is_zwj:
            return "zwj"
        if self.has_skin_tone:
            return "skin-tone"
        if any(c in TAGS for c in self.char):
            return "tag-flag"
        if self.is_flag:
            return "flag"
        if self.is_keycap:
            return "keycap"
        return "vs16"


_GEOMETRIC_WORDS = frozenset(
    "black white red orange yellow green blue purple brown large medium small square circle "
    "diamond triangle pointed up down button".split())


def _cldr_name(char: str, short: str) -> str:
    name = short.strip(":").replace("_", " ")
    if char[0] in REGIONAL_INDICATORS or any(c in TAGS for c in char):
        return f"flag: {name}"
    return name


@functools.lru_cache(maxsize=1)
def inventory() -> tuple[EmojiInfo, ...]:
    """All fully-qualified emoji, sorted by code points (stable across runs)."""
    fully_qualified = _emoji_data.STATUS["fully_qualified"]
    return tuple(
        EmojiInfo(char, _cldr_name(char, data["en"]), float(data["E"]))
        for char, data in sorted(_emoji_data.EMOJI_DATA.items())
        if data["status"] == fully_qualified
    )


@functools.lru_cache(maxsize=1)
def _by_char() -> dict[str, EmojiInfo]:
    return {info.char: info for info in inventory()}


@functools.lru_cache(maxsize=1)
def _longest() -> int:
    return max(len(c) for c in _by_char())


@functools.lru_cache(maxsize=1)
def qualified() -> dict[str, str]:
    """Every inventory emoji under its form without U+FE0F: how keys lacking it are qualified."""
    return {info.char.replace(VS16, ""): info.char for info in inventory()}


def lookup(char: str) -> EmojiInfo | None:
    """The inventory entry for one emoji, or None when ``char`` is not a fully-qualified emoji."""
    return _by_char().get(char)


def name(char: str) -> str:
    """CLDR name of an emoji ("page facing up"); the character itself when it is unknown."""
    info = lookup(char)
    return info.name if info else char


def split_emoji(text: str) -> list[str]:
    """Split a run of emoji into fully-qualified emoji, longest match first.

    Whitespace and commas between them are ignored. Anything else raises ``InputError`` naming the
    offending character, with a hint when only U+FE0F is missing.
    """
    table = _by_char()
    longest = _longest()
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i].isspace() or text[i] == ",":
            i += 1
            continue
        for size in range(min(longest, len(text) - i), 0, -1):
            if text[i:i + size] in table:
                out.append(text[i:i + size])
                i += size
                break
        else:
            raise InputError(_not_emoji_message(text, i))
    return out


def _not_emoji_message(text: str, i: int) -> str:
    bad = text[i]
    hint = ""
    if bad + VS16 in _by_char():
        hint = f"; did you mean {bad + VS16!r} (with U+FE0F)?"
    return f"{bad!r} (U+{ord(bad):04X}) at position {i} is not a fully-qualified emoji{hint}"


@functools.lru_cache(maxsize=1)
def versions() -> tuple[float, ...]:
    """Every Emoji version that introduced an emoji of the inventory, oldest first (0.6 ... 18.0)."""
    return tuple(sorted({info.version for info in inventory()}))


_VERSION_TEXT = re.compile(r"E?(\d{1,3})(?:\.(\d{1,2}))?")

# The newest Emoji version that the common platforms draw in full today (Apple since iOS 17.4,
# Google's Noto since 2.042, Samsung since One UI 6.0, Windows 11 since its 2025 emoji update, and
# Debian 12's fonts-noto-color-emoji, measured: every emoji up to 15.1, none of 16.0). docs/emoji.md's
# "Which emoji a reader can see" has the evidence. Answers keep to it unless ``emoji_version`` says
# otherwise; ``LATEST`` (or None) is the whole inventory.
DEFAULT_EMOJI_VERSION = 15.1
LATEST = "latest"


def parse_version(version: str | float | int | None) -> float | None:
    """Accept "15.0", "15", 15, 15.0 or "E15.0": a version number from the first Emoji version
    (0.6) to the newest one the inventory knows (18.0). A number between two versions means the
    older one ("6.0": Emoji 5.0; Emoji went from 5.0 to 11.0). NaN, infinity and versions newer
    than the ``emoji`` package's data are refused. ``"latest"`` and None mean no limit (None)."""
    if version is None:
        return None
    if isinstance(version, str) and version.strip().lower() == LATEST:
        return None
    if isinstance(version, bool) or not isinstance(version, (str, int, float)):
        raise InputTypeError(f"emoji_version must be a string or number, not {type(version).__name__}")
    if isinstance(version, str):
        match = _VERSION_TEXT.fullmatch(version.strip().upper())
        if match is None:
            raise InputError(f"emoji_version {version!r} is not a version number like '15.0' "
                             f"(or 'latest')")
        value = float(f"{match[1]}.{match[2] or 0}")
    else:
        value = float(version)
    if not math.isfinite(value):
        raise InputError(f"emoji_version must be a finite version number like '15.0', got {version!r}")
    known = versions()
    if value < known[0]:
        raise InputError(f"emoji_version {version!r} is older than the first emoji version ({known[0]})")
    if value > known[-1]:
        raise InputError(f"emoji_version {version!r} is newer than the newest Emoji version this "
                         f"inventory knows ({known[-1]}); upgrade emogram for newer emoji")
    return value


@dataclass(frozen=True)
class EmojiFilter:
    """Which emoji may appear as content. The default admits the whole inventory (``explain``'s
    default keeps to ``DEFAULT_EMOJI_VERSION``: ``grammar.DEFAULT_FILTER``).

    ``palette`` (when given) is the whole allowed set; ``include`` adds emoji back after the other
    filters; ``exclude`` always wins.
    """

    max_version: float | None = None
    flags: bool = True
    skin_tones: bool = True
    zwj: bool = True
    palette: frozenset[str] | None = None
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Every field checked (and sets or lists of emoji made frozensets), however the filter was
        built: it decides what llama.cpp is allowed to write."""
        object.__setattr__(self, "max_version", parse_version(self.max_version))
        for name in ("flags", "skin_tones", "zwj"):
            checks.flag(getattr(self, name), name)
        if self.palette is not None:
            object.__setattr__(self, "palette", _emoji_set(self.palette, "palette"))
        object.__setattr__(self, "include", _emoji_set(self.include, "include"))
        object.__setattr__(self, "exclude", _emoji_set(self.exclude, "exclude"))

    @classmethod
    def make(cls, *, emoji_version: str | float | None = None, flags: bool = True,
             skin_tones: bool = True, zwj: bool = True,
             palette: str | Iterable[str] | None = None,
             include: str | Iterable[str] = (), exclude: str | Iterable[str] = ()) -> "EmojiFilter":
        """Build a filter from user-facing arguments, checking each emoji is real. ``palette``,
        ``include`` and ``exclude`` take a string of emoji or any iterable of single emoji (a list,
        a set, a frozenset, a generator)."""
        # (the fields' types are what ``__post_init__`` makes of these arguments)
        return cls(max_version=emoji_version, flags=flags, skin_tones=skin_tones, zwj=zwj,  # type: ignore[arg-type]
                   palette=palette, include=include, exclude=exclude)  # type: ignore[arg-type]

    def admits(self, info: EmojiInfo) -> bool:
        if info.char in self.exclude:
            return False
        if info.char in self.include:
            return True
        if self.palette is not None and info.char not in self.palette:
            return False
        if self.max_version is not None and info.version > self.max_version:
            return False
        if not self.flags and info.is_flag:
            return False
        if not self.skin_tones and info.has_skin_tone:
            return False
        if not self.zwj and info.is_zwj:
            return False
        return True

    def select(self) -> tuple[str, ...]:
        """The admitted emoji, in inventory order."""
        return tuple(info.char for info in inventory() if self.admits(info))


def _emoji_set(value: object, what: str) -> frozenset[str]:
    if isinstance(value, frozenset) and all(isinstance(e, str) and e in _by_char() for e in value):
        return value  # already checked (the common case: a filter copied or made twice)
    return frozenset(_emoji_list(value, what))


def _emoji_list(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        return split_emoji(value)
    if isinstance(value, (bytes, bytearray)):
        raise InputTypeError(f"{what} must be a str of emoji or an iterable of them, not bytes")
    try:
        items = iter(value)  # type: ignore[call-overload]
    except TypeError:
        raise InputTypeError(f"{what} must be a str of emoji or an iterable of them (a list or a "
                             f"set), not {type(value).__name__}") from None
    out = []
    for item in items:
        if not isinstance(item, str):
            raise InputTypeError(f"{what} must hold strings, not {type(item).__name__}")
        if lookup(item) is None:
            parts = split_emoji(item)  # raises with the offending character
            if not parts:
                raise InputError(f"{what}: {item!r} is no emoji; give one emoji per item")
            raise InputError(f"{what}: {item!r} is {len(parts)} emoji; give one emoji per item")
        out.append(item)
    return out
