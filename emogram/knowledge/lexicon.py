"""The emoji lexicon: which emoji are relevant to an English word or short phrase.

    >>> related("volcanoes")[0]
    ('🌋', 2.5)

The data, ``lexicon.tsv`` next to this module, holds for each emoji of the inventory its CLDR name,
CLDR's English keywords and emojilib's keywords. It is generated from the vendored sources in
``data/lexicon-sources/`` and the inventory (``language/unicode.py``) by ``lexicon_build.py``::

    python -m emogram.knowledge.lexicon --write

Skin-tone variants are not listed: 👍🏽 is known by the words of 👍.

How a phrase scores against an emoji (``relevance``), all from the data, nothing per topic:

- each word weighs its idf, ln(N / number of emoji known by it): "coffee" (2 of 1,923 emoji) says
  far more than "flag" (276) or "face" (206);
- *coverage*: the share of the phrase's weight that the emoji matches, a word counting fully when it
  is in the emoji's name, 0.75 in a CLDR keyword, 0.5 in an emojilib keyword;
- *name precision* (up to 0.5): the share of the name's weight the phrase covers, times the share of
  the phrase's weight the name explains, so "sun" prefers ☀️ (sun) to 🌞 (sun with face) while
  "coffee man" still prefers ☕ to 👨 (man). A flag's name is its place ("flag: France": France);
- *phrase* bonuses: the phrase is the whole name (+1), holds the whole name of two words or more
  (+0.5), or is a run of two words or more inside the name (+0.25); half as much for multi-word
  keywords.
"""

from __future__ import annotations

import functools
import math
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import InputError, InputTypeError
from ..language.unicode import SKIN_TONES, VS16, lookup, qualified, split_emoji
from .words import base_form, stem, tokens, words

DATA_FILE = "lexicon.tsv"

NAME, CLDR, EMOJILIB = 1.0, 0.75, 0.5  # how much a word counts by where the emoji has it
DERIVED = 0.5  # a data word's -ing/-ed base is a guess ("stocking" -> stock): it counts half
PRECISION = 0.5
EXACT_NAME, NAME_IN_PHRASE, PHRASE_IN_NAME = 1.0, 0.5, 0.25
KEYWORD_PHRASE = 0.5  # multi-word keywords get this share of the name's phrase bonuses

@functools.lru_cache(maxsize=None)
def _keys(word: str) -> tuple[tuple[str, float], ...]:
    """The keys one word of the data is indexed under, with how much each counts: its stem, and
    its -ing/-ed base at ``DERIVED`` ("running" -> running, run)."""
    s = stem(word)
    b = base_form(s)
    return ((s, 1.0),) if b is None or b == s else ((s, 1.0), (b, DERIVED))


# ----------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class _Entry:
    char: str
    name: str
    cldr: tuple[str, ...]
    emojilib: tuple[str, ...]


def _core(name: str) -> str:
    """The part of a name that says what the emoji is: a flag's place, else the whole name."""
    return name[len("flag:"):] if name.lower().startswith("flag:") else name


class _Lexicon:
    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self.row = {e.char: i for i, e in enumerate(entries)}
        self.index: dict[str, dict[int, float]] = {}
        self.names: list[tuple[tuple[str, ...], ...]] = []  # whole name, core name (stems)
        self.name_words: list[list[tuple[tuple[str, float], ...]]] = []  # keys of core name words
        self.phrases: list[tuple[tuple[str, ...], ...]] = []  # multi-word keywords (stems)
        for i, e in enumerate(entries):
            self._add(i, tokens(e.name), NAME)
            phrases = []
            for texts, weight in ((e.cldr, CLDR), (e.emojilib, EMOJILIB)):
                for toks in map(tokens, texts):
                    self._add(i, toks, weight)
                    if len(toks) > 1:
                        phrases.append(tuple(map(stem, toks)))
            core = tokens(_core(e.name))
            self.names.append((tuple(words(e.name)), tuple(map(stem, core))))
            self.name_words.append(list(dict.fromkeys(map(_keys, core))))
            self.phrases.append(tuple(phrases))
        n = len(entries)
        self.idf = {k: math.log(n / len(rows)) for k, rows in self.index.items()}
        self.unknown_idf = math.log(n)

    def _add(self, i: int, tokens: list[str], weight: float) -> None:
        for w in tokens:
            for k, factor in _keys(w):
                rows = self.index.setdefault(k, {})
                rows[i] = max(rows.get(i, 0.0), weight * factor)

    def resolve(self, word: str) -> str | None:
        """The key a word of a phrase matches: its stem when the data knows it, else the first
        known of its other forms (buses -> bus, viruses -> virus, voting -> vote, dancer -> dance);
        None when the data knows none."""
        s = stem(word)
        forms = [s, word]
        if word.endswith("s"):
            forms += [word[:-1], word[:-2]]
        b = base_form(s) or (s[:-2] if s.endswith("er") and len(s) > 5 else None)
        if b:
            forms += [b, b + "e"]
            if len(b) >= 4 and b[-1] == b[-2]:
                forms.append(b[:-1])
        return next((f for f in forms if f in self.index), None)


@functools.lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    data = pkgutil.get_data(__package__, DATA_FILE)
    if data is None:  # pragma: no cover - only a broken installation
        raise FileNotFoundError(f"emogram/knowledge/{DATA_FILE} is missing from the installation")
    entries = []
    for line in data.decode("utf-8").splitlines():
        if line and line != "#" and not line.startswith("# "):  # "#️⃣" is a row
            char, name, cldr, lib = line.split("\t")
            entries.append(_Entry(char, name, _split(cldr), _split(lib)))
    return _Lexicon(entries)


def _split(field: str) -> tuple[str, ...]:
    return tuple(field.split("|")) if field else ()


@functools.lru_cache(maxsize=4096)
def _row_of(char: str) -> int | None:
    """The lexicon row of an emoji; a skin-tone variant's is its base emoji's."""
    lex = _lexicon()
    if char in lex.row:
        return lex.row[char]
    if lookup(char) is None or not any(c in SKIN_TONES for c in char):
        return None
    base = "".join(c for c in char if c not in SKIN_TONES and c != VS16)
    return lex.row.get(qualified().get(base, ""))


# -------------------------------------------------------------------------------------- scoring

@dataclass(frozen=True)
class _Query:
    seq: tuple[str, ...]  # the words' keys (or stems) in order, for phrase matches
    weights: dict[str, float]  # resolved key -> idf
    total: float  # idf of all words, unknown ones included

    @classmethod
    def of(cls, lex: _Lexicon, phrase: str) -> "_Query":
        if not isinstance(phrase, str):
            raise InputTypeError(f"phrase must be a string, not {type(phrase).__name__}")
        toks = tokens(phrase)
        keys = [lex.resolve(w) for w in toks]
        weights: dict[str, float] = {}
        total = 0.0
        for w, key in dict(zip(toks, keys)).items():
            if key is None:
                total += lex.unknown_idf
            elif key not in weights:
                weights[key] = lex.idf[key]
                total += weights[key]
        return cls(tuple(k or stem(w) for w, k in zip(toks, keys)), weights, total)


def _contains(seq: tuple[str, ...], part: tuple[str, ...]) -> bool:
    n = len(part)
    return any(seq[i:i + n] == part for i in range(len(seq) - n + 1))


def _phrase_bonus(q: tuple[str, ...], name: tuple[str, ...]) -> float:
    if not name or not q:
        return 0.0
    if q == name:
        return EXACT_NAME
    if len(name) > 1 and _contains(q, name):
        return NAME_IN_PHRASE
    if len(q) > 1 and _contains(name, q):
        return PHRASE_IN_NAME
    return 0.0


def _score(lex: _Lexicon, q: _Query, row: int) -> float:
    matched = sum(idf * lex.index[k].get(row, 0.0) for k, idf in q.weights.items())
    if matched <= 0.0:
        return 0.0
    score = matched / q.total
    name_words = lex.name_words[row]
    if name_words:  # each name word weighs its stem's idf; matched through its base, half of it
        weight = [lex.idf[keys[0][0]] for keys in name_words]
        found = {k: f for keys in name_words for k, f in keys if k in q.weights}
        hit = sum(wt * max((found.get(k, 0.0) for k, _ in keys), default=0.0)
                  for keys, wt in zip(name_words, weight))
        explained = sum(q.weights[k] * f for k, f in found.items()) / q.total
        score += PRECISION * hit / sum(weight) * explained if sum(weight) else 0.0
    score += max(_phrase_bonus(q.seq, name) for name in lex.names[row])
    score += KEYWORD_PHRASE * max((_phrase_bonus(q.seq, p) for p in lex.phrases[row]), default=0.0)
    return round(score, 4)


# ----------------------------------------------------------------------------------------- API

def related(phrase: str, allowed: str | Iterable[str] | None = None,
            limit: int | None = 24) -> list[tuple[str, float]]:
    """Emoji relevant to ``phrase``, best first, with their scores (see the module's docstring);
    ties in inventory order. ``allowed`` (a string of emoji or an iterable) restricts the answer to
    those emoji, skin-tone variants included. Words the lexicon does not know give ``[]``."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InputError(f"limit must be None or a whole number >= 0, not {limit!r}")
    lex = _lexicon()
    q = _Query.of(lex, phrase)
    rows = set().union(*(lex.index[k] for k in q.weights)) if q.weights else set()
    if allowed is None:
        chars = {row: [lex.entries[row].char] for row in rows}
    else:
        by_row = _allowed_by_row(frozenset(split_emoji(allowed) if isinstance(allowed, str) else allowed))
        chars = {row: by_row[row] for row in rows if row in by_row}
    out = [(c, s) for row, cs in chars.items() if (s := _score(lex, q, row)) > 0 for c in cs]
    out.sort(key=lambda item: (-item[1], item[0]))
    return out if limit is None else out[:limit]


@functools.lru_cache(maxsize=8)
def _allowed_by_row(allowed: frozenset[str]) -> dict[int, list[str]]:
    """The allowed emoji of each lexicon row, in code point order: made once per set, not once
    per phrase (a glossed answer asks for every part's words with the whole inventory)."""
    by_row: dict[int, list[str]] = {}
    for char in sorted(allowed):
        if (row := _row_of(char)) is not None:
            by_row.setdefault(row, []).append(char)
    return by_row


def relevance(phrase: str, emoji: str) -> float:
    """How well one emoji matches ``phrase``, on ``related``'s scale; 0.0 for no match or a
    string that is not an emoji of the inventory."""
    lex = _lexicon()
    row = _row_of(emoji)
    return 0.0 if row is None else _score(lex, _Query.of(lex, phrase), row)


def keywords(emoji: str) -> tuple[str, ...]:
    """The words and phrases an emoji is known by: its name's words, then CLDR's keywords, then
    emojilib's, lower-case and without repeats. ``()`` for what is not an emoji of the inventory."""
    row = _row_of(emoji)
    if row is None:
        return ()
    e = _lexicon().entries[row]
    own = lookup(emoji)
    name = own.name if own is not None and emoji != e.char else e.name
    items = name.lower().replace(":", " ").replace(",", " ").split() + list(e.cldr + e.emojilib)
    return tuple(dict.fromkeys(items))


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m emogram.knowledge.lexicon", description=(
        "Regenerate or query emogram's emoji lexicon. With a phrase: print its related emoji."))
    p.add_argument("phrase", nargs="*", help="a word or phrase to look up")
    p.add_argument("--write", action="store_true", help=f"regenerate emogram/knowledge/{DATA_FILE}")
    from .lexicon_build import _EMOJILIB, SOURCES, generate
    p.add_argument("--sources", default=str(SOURCES), help="vendored sources (default: %(default)s)")
    p.add_argument("--limit", type=int, default=12)
    args = p.parse_args(argv)
    if args.write:
        if not Path(args.sources, _EMOJILIB[0]).is_dir():
            p.error(f"no sources in {args.sources}: run from a source checkout or pass --sources")
        target = Path(__file__).with_name(DATA_FILE)
        target.write_text(generate(args.sources), encoding="utf-8")
        print(f"wrote {target}")
    if args.phrase:
        for char, score in related(" ".join(args.phrase), limit=args.limit):
            row = _row_of(char)  # (every emoji the lexicon relates has its row)
            print(f"{score:6.3f}  {char}  {_lexicon().entries[row].name if row is not None else ''}")
    elif not args.write:
        p.print_usage()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
