"""How the lexicon reads English: lower-case words, stop words out, plurals made singular.

    >>> words("Making volcanoes")
    ['making', 'volcano']

Shared by the lexicon (``lexicon.py``), the generator of its data (``lexicon_build.py``), the
retrieval of emoji by name (``retrieval.py``) and the decoding layer, which reads a topic's words
and a glossed answer's (``decoding/gloss.py``, ``decoding/choose.py``).
"""

from __future__ import annotations

import re
import unicodedata

_STOP = frozenset(
    "a an the of and or in on at to for with by from as into onto is are was were be been being "
    "s it its this that these those how what why when where which who whom do does did i me you he "
    "she we they them his her their our your my".split())
_IRREGULAR = {"men": "man", "women": "woman", "children": "child", "feet": "foot",
              "teeth": "tooth", "mice": "mouse", "geese": "goose", "leaves": "leaf",
              "knives": "knife", "wolves": "wolf"}
_TOKEN = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """Plural to singular by rule: volcanoes -> volcano, boxes -> box, glasses -> glass,
    houses -> house, women -> woman; -ie and -ies become -y (movie, movies -> movy; berries ->
    berry). Words of three letters or fewer and words ending in -ss, -us, -is stay. Nothing else
    changes (-ing and -ed are handled when matching)."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) <= 3 or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("ie"):
        return w[:-2] + "y"
    if w.endswith(("sses", "ches", "shes", "xes")) or (w.endswith("oes") and len(w) > 5):
        return w[:-2]
    return w[:-1] if w.endswith("s") else w


def base_form(word: str) -> str | None:
    """running -> run, building -> build, voted -> vot: the word without -ing or -ed (a doubled
    consonant undone), or None when it has neither or too little would be left."""
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and not word.endswith("eed"):
            b = word[: -len(suffix)]
            if len(b) >= 3 and any(v in b for v in "aeiouy"):
                if len(b) >= 4 and b[-1] == b[-2] and b[-1] not in "lsz":
                    b = b[:-1]
                return b
    return None


def tokens(text: str) -> list[str]:
    """Lower-case words without accents or apostrophes ("Côte d’Ivoire" -> cote, divoire), stop
    words left out."""
    text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c) and c != "’")
    text = text.replace("'", "")
    return [w for w in _TOKEN.findall(text) if w not in _STOP]


def words(text: str) -> list[str]:
    """The text's words as the lexicon matches them: lower-case, stop words out, plurals made
    singular (``stem``), in order. ``words("Making volcanoes") == ["making", "volcano"]``."""
    return [stem(w) for w in tokens(text)]
