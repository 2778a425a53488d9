"""Reference answers for the quality benchmark: loading, emoji normalisation, tune/held-out split.

An *answer* (reference or model) is held as lines of groups of content emoji:
``[[["☀️", "💧"], ["🌱"]]]`` is one line of two groups. Operators (➡️ ➕ 🆚 🟰) are structure, not
content: they are dropped here, on both sides, and only separate groups.

Normalisation (the same for people, annotators, baselines and the model):
  * each emoji is found with the ``emoji`` package's tokenizer (ZWJ sequences, flags, keycaps whole);
  * skin-tone modifiers (U+1F3FB..U+1F3FF) are removed: 👍🏽 counts as 👍 (a tone says who, not what);
  * the result is matched to emogram's inventory (fully-qualified emoji) ignoring U+FE0F, so a form
    missing U+FE0F (🌡, 🤵‍♂) becomes the fully-qualified one (🌡️, 🤵‍♂️);
  * what is still not in the inventory (a lone hair component 🦱, stray U+FE0F, commas) is dropped
    and counted in ``Normaliser.dropped``.

Split: ``half_of(topic)`` is "tune" when the sha256 of the topic text (lower-cased, whitespace
collapsed) is even, else "held-out". Stable across runs, machines and Python versions.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import emoji as emoji_data

from ..language.grammar import compile_grammar
from ..training.evaluation import BENCH

REFERENCES = BENCH / "references"
ANNOTATORS = REFERENCES / "annotators.json"
EMOJILIB = REFERENCES / "emojilib" / "emoji-en-US.json"
ELCO_URL = "https://github.com/WING-NUS/ELCo (file ELCo.csv, CC BY 4.0)"

OPERATORS = ("➡️", "➕", "🆚", "🟰")
VS16 = "\ufe0f"
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))

Answer = list  # list[list[list[str]]]: lines -> groups -> content emoji


def half_of(topic: str) -> str:
    key = " ".join(topic.lower().split())
    return "tune" if int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "held-out"


def _strip(s: str) -> str:
    return s.replace(VS16, "")


class Normaliser:
    """Maps any emoji spelling onto the inventory's fully-qualified, tone-less form."""

    def __init__(self, inventory) -> None:
        self.inventory = frozenset(inventory)
        table: dict[str, str] = {}
        for e in sorted(self.inventory, key=lambda c: (-len(c), c)):  # prefer the longest (qualified)
            table.setdefault(_strip(e), e)
        self._table = table
        self.operators = {_strip(o): o for o in OPERATORS}
        self.dropped: Counter = Counter()

    def one(self, token: str) -> str | None:
        """The normal form of one emoji token (an operator stays an operator), or None."""
        bare = _strip("".join(c for c in token if c not in SKIN_TONES))
        if bare in self.operators:
            return self.operators[bare]
        return self._table.get(bare)

    def tokens(self, text: str) -> list[str]:
        """Emoji and operators of ``text`` in order, normalised; ``" "`` for each whitespace run
        (a group boundary); anything else is dropped and counted."""
        out: list[str] = []
        pos = 0
        for m in emoji_data.emoji_list(text):
            self._gap(text[pos:m["match_start"]], out)
            norm = self.one(m["emoji"])
            if norm is None:
                self.dropped[m["emoji"]] += 1
            else:
                out.append(norm)
            pos = m["match_end"]
        self._gap(text[pos:], out)
        return out

    def _gap(self, gap: str, out: list[str]) -> None:
        if any(c.isspace() for c in gap):
            out.append(" ")
        for c in gap:
            if not c.isspace() and c != VS16:
                self.dropped[c] += 1

    def answer(self, text: str) -> Answer:
        """A free-form answer (one person's emoji string) as lines of groups. Newlines start a line;
        spaces and operators separate groups."""
        lines = []
        for raw in text.splitlines() or [""]:
            groups: list[list[str]] = []
            cur: list[str] = []
            for t in self.tokens(raw):
                if t == " " or t in OPERATORS:
                    if cur:
                        groups.append(cur)
                    cur = []
                else:
                    cur.append(t)
            if cur:
                groups.append(cur)
            if groups:
                lines.append(groups)
        return lines

    def explanation(self, explanation) -> Answer:
        """An ``emogram.Explanation`` (its public tree) as lines of groups, normalised the same way."""
        return [[[n for e in g.emoji if (n := self.one(e.char))] for g in line.groups]
                for line in explanation.lines]


@functools.lru_cache(maxsize=1)
def inventory() -> tuple[str, ...]:
    return tuple(compile_grammar().emoji)


@functools.lru_cache(maxsize=1)
def normaliser() -> Normaliser:
    return Normaliser(inventory())


@dataclass
class Item:
    """One topic of a reference set and its reference answers."""

    key: str  # unique across sets: "ann:t001", "elco:big business"
    topic: str  # what the model is asked
    kind: str  # "phrase" or "topic"
    half: str
    refs: list[Answer] = field(default_factory=list)  # normalised
    writers: list[str] = field(default_factory=list)  # who wrote each ref ("" when unknown)
    raw: list[str] = field(default_factory=list)


@dataclass
class RefSet:
    name: str  # "annotators" or "elco"
    title: str
    items: list[Item]
    note: str = ""


def load_annotators(path: Path = ANNOTATORS, norm: Normaliser | None = None) -> RefSet:
    norm = norm or normaliser()
    data = json.loads(path.read_text(encoding="utf-8"))
    items = []
    for it in data["items"]:
        ws = sorted(it["answers"], key=int)
        items.append(Item(f"ann:{it['id']}", it["topic"], it["kind"], half_of(it["topic"]),
                          [norm.answer(it["answers"][w]) for w in ws], ws,
                          [it["answers"][w] for w in ws]))
    return RefSet("annotators", "AI annotators (6 Claude sub-agents with personas, not people)", items,
                  "answers by AI helpers, not people: see bench/references/annotators.json")


def elco_path(arg: str | os.PathLike | None = None) -> Path | None:
    p = arg or os.environ.get("EMOGRAM_ELCO")
    return Path(p) if p else None


def load_elco(path: Path, norm: Normaliser | None = None) -> RefSet:
    """ELCo (Yang, Zhang & Miao, LREC-COLING 2024): English phrases (column EN) and people's emoji
    answers (column EM), 7-9 per phrase. Not shipped: read from ``path``."""
    norm = norm or normaliser()
    answers: dict[str, list[str]] = defaultdict(list)
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            phrase = re.sub(r"\s+", " ", row["EN"]).strip()
            if phrase and row["EM"].strip():
                answers[phrase].append(row["EM"])
    items = [Item(f"elco:{p}", p, "phrase", half_of(p), [norm.answer(a) for a in raw], [""] * len(raw), raw)
             for p, raw in answers.items()]
    return RefSet("elco", "ELCo (people; Yang, Zhang & Miao 2024, CC BY 4.0)", items,
                  "7-9 answers per phrase by people; writer identity not given")


def select(items: list[Item], half: str) -> list[Item]:
    return [it for it in items if half == "both" or it.half == half]
