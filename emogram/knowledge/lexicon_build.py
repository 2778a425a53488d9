"""Builds ``lexicon.tsv`` (the data ``lexicon.py`` reads) from the vendored CLDR and emojilib
sources and the current emoji inventory. Run it through ``python -m emogram.knowledge.lexicon --write``;
``tests/test_lexicon.py`` fails when the checked-in file differs from what this writes."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from ..language.unicode import VS16, inventory, qualified
from .words import words

SOURCES = Path(__file__).resolve().parents[2] / "data" / "lexicon-sources"
_CLDR = ("cldr-annotations-full", "annotations/en/annotations.json", "annotations")
_CLDR_DERIVED = ("cldr-annotations-derived-full", "annotationsDerived/en/annotations.json",
                 "annotationsDerived")
_EMOJILIB = ("emojilib", "dist/emoji-en-US.json")


def generate(sources: Path | str = SOURCES) -> str:
    """The text of ``lexicon.tsv`` from the vendored sources and the current inventory."""
    sources = Path(sources)

    def load(package: str, path: str):
        return json.loads((sources / package / path).read_text(encoding="utf-8"))

    def version(package: str) -> str:
        return load(package, "package.json")["version"]

    forms = qualified()
    kept = [info for info in inventory() if not info.has_skin_tone]
    wanted = {info.char for info in kept}
    cldr: dict[str, tuple[str, list[str]]] = {}
    for package, path, top in (_CLDR, _CLDR_DERIVED):
        for key, value in load(package, path)[top]["annotations"].items():
            char = forms.get(key.replace(VS16, ""))
            if char in wanted:
                cldr[char] = (value["tts"][0], value.get("default", []))
    lib = {}
    for key, value in load(*_EMOJILIB).items():
        char = forms.get(key.replace(VS16, ""))
        if char in wanted:
            lib[char] = [kw.replace("_", " ") for kw in value]
    lines = [
        "# emogram's emoji lexicon: the words each emoji is known by. Generated: do not edit.",
        "# Regenerate with `python -m emogram.knowledge.lexicon --write` (sources in data/lexicon-sources/).",
        f"# Sources: cldr-annotations-full {version(_CLDR[0])} and cldr-annotations-derived-full "
        f"{version(_CLDR_DERIVED[0])} (English; Unicode License v3), emojilib "
        f"{version(_EMOJILIB[0])} (MIT);",
        f"# inventory: the emoji package {metadata.version('emoji')}, {len(kept)} fully-qualified "
        "emoji without skin tones (variants are looked up through their base).",
        "# Columns (tab-separated): emoji, CLDR name, CLDR keywords, emojilib keywords not already "
        "given (|-separated).",
    ]
    for package in (_CLDR[0], _EMOJILIB[0]):
        lines.append(f"# Licence of {package} (and of the data taken from it):")
        text = (sources / package / "LICENSE").read_text(encoding="utf-8").strip()
        lines += [f"#   {line}".rstrip() for line in text.splitlines()]
    for info in kept:
        name, cldr_kws = cldr.get(info.char, (info.name, []))
        seen = {" ".join(words(name))}
        fields = []
        for kws in (cldr_kws, lib.get(info.char, [])):
            out = []
            for kw in kws:
                kw = " ".join(kw.lower().split())
                key = " ".join(words(kw))
                if key and key not in seen:
                    if "|" in kw or "\t" in kw:
                        raise ValueError(f"keyword {kw!r} of {info.char} holds a separator")
                    seen.add(key)
                    out.append(kw)
            fields.append("|".join(out))
        lines.append("\t".join([info.char, name, *fields]))
    return "\n".join(lines) + "\n"
