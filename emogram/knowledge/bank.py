"""The explanation bank: staged explanations the model reads at answer time (``bank_search.py``
finds them). Knowledge lives here rather than in the weights, so growing or correcting it is a
data change, and an answer can name the entries it used (``Explanation.sources``).

One JSON object a line, the corpus's format:

    {"topic": "how a hot air balloon rises", "answer": "burner: 🔥 -> air heats: ♨️ -> balloon rises: 🎈⬆️"}

``answer`` is parts ``words: emoji`` joined by `` -> `` (leads to), `` + `` (with), `` vs ``
(against) or `` = `` (means). ``kind`` ("explain" or "phrase"), ``domain`` and ``writer`` may
follow. A topic may name its sense in brackets ("transformers (machine learning)"); a bare query
("transformers") then takes the sense listed first, so a bank lists the more-asked sense first.

The shipped bank (``bank.jsonl.gz`` beside this module, built by ``python -m
emogram.training.bank build``) is read on first use, never at import. A user's banks
(``bank=PATH``) come before it; a malformed line of theirs is a ``BankError`` naming the file and
the line.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from ..errors import InputError, InputTypeError

SHIPPED_FILE = "bank.jsonl.gz"
SHIPPED_NAME = "emogram"  # what ``Source.bank`` says for an entry of the shipped bank
MAX_BANK_BYTES = 64 << 20  # one user bank file at most (the shipped one is about 4 MB unpacked)
MAX_PARTS = 6
MAX_WORDS = 4
MAX_TOPIC_CHARS = 300
_SPLIT = re.compile(r" (\+|->|vs|=) ")
_WORDS = re.compile(r"[a-z][a-z'-]*(?: [a-z][a-z'-]*)*")
_SENSE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


class BankError(InputError):
    """A bank file is missing, unreadable, or has a malformed line (the message names both)."""


@dataclass(frozen=True)
class Part:
    op: str | None  # the separator before this part ("->", "+", "vs", "="); None for the first
    words: str
    group: str  # one to three emoji, written together


@dataclass(frozen=True)
class Entry:
    topic: str
    answer: str  # the glossed text, as written in the file
    parts: tuple[Part, ...]
    bank: str  # SHIPPED_NAME, or the path of the user's file
    line: int  # 1-based line in that file
    kind: str = "explain"  # or "phrase" (a picture of a short phrase, not an explanation)

    @property
    def main(self) -> str:
        """The topic without its sense: "transformers (machine learning)" -> "transformers"."""
        return split_sense(self.topic)[0]

    @property
    def sense(self) -> str:
        return split_sense(self.topic)[1]


def split_sense(topic: str) -> tuple[str, str]:
    m = _SENSE.match(topic)
    return (m.group(1), m.group(2).strip()) if m and m.group(1) else (topic, "")


def answer_parts(answer: str) -> Iterator[tuple[int, Part]]:
    """The parts of a glossed answer (``"a: 🅰️ -> b c: 🐝"``), numbered from 1, each checked to be
    ``words: emoji`` as it is reached (``ValueError`` naming the part). The one reader of the
    format: the bank (``parse_answer``) and the training corpus (``corpus.split_glossed``) each
    add their own checks."""
    pieces = _SPLIT.split(answer)
    for k in range(0, len(pieces), 2):
        words, sep, group = pieces[k].partition(": ")
        if not sep or not words or not group or " " in group:
            raise ValueError(f"part {k // 2 + 1} {pieces[k]!r} is not 'words: emoji'")
        yield k // 2 + 1, Part(pieces[k - 1] if k else None, words, group)


def parse_answer(answer: str) -> tuple[Part, ...]:
    """``"a: 🅰️ -> b c: 🐝"`` -> its parts; ``ValueError`` saying what is wrong."""
    from ..language.unicode import lookup, split_emoji

    parts: list[Part] = []
    for n, part in answer_parts(answer):
        words, group = part.words, part.group
        if not _WORDS.fullmatch(words) or len(words.split()) > MAX_WORDS:
            raise ValueError(f"part {n}: {words!r} must be 1 to {MAX_WORDS} lower-case words")
        try:
            chars = split_emoji(group)
        except Exception:  # noqa: BLE001 - any reason: it is not emoji
            raise ValueError(f"part {n}: {group!r} is not emoji") from None
        if not 1 <= len(chars) <= 3 or any(lookup(c) is None for c in chars):
            raise ValueError(f"part {n}: {group!r} must be 1 to 3 emoji of the Unicode list")
        parts.append(part)
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{len(parts)} parts; at most {MAX_PARTS}")
    return tuple(parts)


def parse_line(line: str, bank: str, number: int, *, check: bool = True) -> Entry | None:
    """One line of a bank file (None for a blank one); ``BankError`` naming file and line."""
    if not line.strip():
        return None
    try:
        item = json.loads(line)
        if not isinstance(item, dict):
            raise ValueError("not a JSON object")
        topic, answer = item.get("topic"), item.get("answer")
        if not isinstance(topic, str) or not isinstance(answer, str):
            raise ValueError('"topic" and "answer" must be strings')
        topic = " ".join(topic.split())
        if not topic or len(topic) > MAX_TOPIC_CHARS:
            raise ValueError(f"the topic must have 1 to {MAX_TOPIC_CHARS} characters")
        kind = item.get("kind", "explain")
        if kind not in ("explain", "phrase"):
            raise ValueError('"kind" must be "explain" or "phrase"')
        parts = parse_answer(answer) if check else _parts_unchecked(answer)
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise BankError(f"{bank}:{number}: {exc}") from None
    return Entry(topic, answer, parts, bank, number, kind)


def _parts_unchecked(answer: str) -> tuple[Part, ...]:
    """The shipped bank's parts: checked when it was built (and by a test), so only split here."""
    pieces = _SPLIT.split(answer)
    return tuple(Part(pieces[k - 1] if k else None, *pieces[k].split(": ", 1)) for k in range(0, len(pieces), 2))


def read_text(data: bytes, bank: str, *, check: bool = True) -> list[Entry]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BankError(f"{bank}: not UTF-8 text (byte {exc.start})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = parse_line(line, bank, number, check=check)
        if entry is not None:
            entries.append(entry)
    return entries


def read_file(path: str | os.PathLike[str]) -> list[Entry]:
    """A user's bank file, every line checked (``BankError`` for the first bad one)."""
    from ..files import read_regular
    name = os.fspath(path)
    return read_text(read_regular(name, MAX_BANK_BYTES, "bank file", BankError), name)


_SHIPPED_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def shipped_entries() -> tuple[Entry, ...]:
    import pkgutil
    with _SHIPPED_LOCK:
        data = pkgutil.get_data("emogram.knowledge", SHIPPED_FILE)
        if data is None:  # pragma: no cover - a broken install
            raise BankError(f"the shipped bank {SHIPPED_FILE} is missing from this install of emogram")
        return tuple(read_text(gzip.decompress(data), SHIPPED_NAME, check=False))


def bank_paths(bank: object) -> tuple[str, ...] | None:
    """The ``bank`` option as data: None when off (``False``), else the user's files in order
    (empty: the shipped bank alone). ``InputTypeError``/``BankError`` for what cannot be one."""
    if bank is None or bank is True:
        return ()
    if bank is False:
        return None
    items: Iterable[object] = [bank] if isinstance(bank, (str, os.PathLike)) else bank  # type: ignore[assignment]
    try:
        paths = tuple(os.fspath(p) for p in items)  # type: ignore[call-overload]
    except TypeError:
        raise InputTypeError(f"bank must be a path, a list of paths, or False, not {type(bank).__name__}") from None
    for p in paths:
        if not p or "\x00" in p:
            raise BankError(f"bank path {p!r} is not a usable path")
    return paths


_USER: dict[tuple, tuple[Entry, ...]] = {}
_USER_LOCK = threading.Lock()


def user_entries(paths: Sequence[str]) -> tuple[tuple, tuple[Entry, ...]]:
    """(what identifies the files' contents, the entries of the user's files in order); a file is
    read again only when it changes."""
    out: list[Entry] = []
    keys = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as exc:
            raise BankError(f"bank file {p!r} cannot be read: {exc.strerror or exc}") from None
        key = (os.path.abspath(p), st.st_mtime_ns, st.st_size, st.st_ino)
        keys.append(key)
        with _USER_LOCK:
            found = _USER.get(key)
        if found is None:
            found = tuple(read_file(p))
            with _USER_LOCK:
                if len(_USER) > 64:
                    _USER.clear()
                _USER[key] = found
        out.extend(found)
    return tuple(keys), tuple(out)
