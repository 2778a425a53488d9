"""Every topic emogram is evaluated on, so that nothing taught to the model is one of them.

The sets live in the repository's ``bench/`` folder (not in the wheel): the annotators' topics
(both halves), ELCo's phrases, ``bench/topics.json``, and the stage references (``bench/references/
stages.json``) whose topics the blind readings use.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

def checkout(part: str) -> Path:
    """A folder of the emogram checkout (``data/corpus``, ``bench``): beside the package in a
    checkout or an editable install, else under the current folder (an installed package run from
    a checkout, as CI does)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / part).is_dir():
            return root / part
    return Path(__file__).resolve().parents[2] / part


BENCH = checkout("bench")


def evaluation_topics(bench: Path = BENCH) -> list[str]:
    refs = bench / "references"
    if not (refs / "annotators.json").is_file():
        raise InputError(f"the evaluation sets are not here ({refs}); run from a checkout of emogram")
    topics = [it["topic"] for it in json.loads((refs / "annotators.json").read_text(encoding="utf-8"))["items"]]
    topics += [t["topic"] for t in json.loads((bench / "topics.json").read_text(encoding="utf-8"))["topics"]]
    topics += [line.strip() for line in (refs / "elco_phrases.txt").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    for name in ("stages.json", "ceiling.json"):  # the stage references; the ceiling set (#29)
        path = refs / name
        if path.is_file():
            topics += [it["topic"] for it in json.loads(path.read_text(encoding="utf-8"))["items"]]
    return list(dict.fromkeys(topics))
