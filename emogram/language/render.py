"""Renderings of an explanation: words (for screen readers), JSON, a Mermaid flowchart, HTML.

Functions over the typed tree (``language.Tree``), never the text, so each is exact about what
is a group and what is an operator. Each also takes an ``Explanation`` (the tree and its run's
metadata) and then includes the topic, model and reasoning where the format has room for them.
Names are the emoji's CLDR short names as the ``emoji`` package has them.
"""

from __future__ import annotations

import html
import json
from itertools import groupby
from typing import Any

from .grammar import Operator
from .tree import Group, Tree

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def gloss_group(group: Group) -> str:
    """``🧱🧱🧱`` -> "three times brick"; ``🔤🔢`` -> "input latin letters and input numbers"."""
    parts = []
    for _, run in groupby(group.emoji, key=lambda e: e.char):
        same = list(run)
        count, name = len(same), same[0].name
        parts.append(name if count == 1 else f"{_NUMBERS.get(count, str(count))} times {name}")
    return " and ".join(parts)


def _tree(explanation: Any) -> Tree:
    return explanation if isinstance(explanation, Tree) else explanation.tree


def gloss(explanation: Any) -> str:
    """The explanation in words, one sentence per line.

    ``📄 ➡️ 🔤🔢`` -> "page facing up, leads to, input latin letters and input numbers."
    Lines after the first begin "Then, leads to, ...", as their ``➡️`` continues the line before.
    """
    sentences = []
    for i, line in enumerate(_tree(explanation).lines):
        words = ["Then, leads to"] if i else []
        for op, group in line.steps():
            if op is not None:
                words.append(op.gloss)
            words.append(gloss_group(group))
        sentence = ", ".join(words)
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(sentences)


def to_dict(explanation: Any, *, stats: bool = False) -> dict[str, Any]:
    """Plain data: text, gloss, and lines of groups and operators with names and meanings."""
    tree = _tree(explanation)
    data: dict[str, Any] = {
        "text": str(tree),
        "gloss": gloss(tree),
        "lines": [
            {
                "groups": [[{"emoji": e.char, "name": e.name} for e in g.emoji] for g in line.groups],
                "operators": [{"emoji": op.symbol, "meaning": op.gloss} for op in line.operators],
            }
            for line in tree.lines
        ],
    }
    for key in ("topic", "model", "adapter", "reasoning"):
        if getattr(explanation, key, ""):
            data[key] = getattr(explanation, key)
    if getattr(explanation, "plan", ()):
        data["plan"] = list(explanation.plan)
    if getattr(explanation, "sources", ()):
        data["sources"] = [source.to_dict() for source in explanation.sources]
    if stats and getattr(explanation, "stats", None) is not None:
        s = explanation.stats
        data["stats"] = {
            "load_seconds": round(s.load_seconds, 4), "prompt_tokens": s.prompt_tokens,
            "prompt_seconds": round(s.prompt_seconds, 4), "eval_tokens": s.eval_tokens,
            "eval_seconds": round(s.eval_seconds, 4), "eval_rate": round(s.eval_rate, 2),
            "think_tokens": s.think_tokens, "constraint_median_us": round(s.constraint_median_us, 1),
            "sampler": s.sampler, "stopped_by": s.stopped_by,
        }
    return data


def to_json(explanation: Any, *, indent: int | None = 2, stats: bool = False) -> str:
    return json.dumps(to_dict(explanation, stats=stats), ensure_ascii=False, indent=indent)


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(explanation: Any) -> str:
    """A left-to-right flowchart: one node per group, one labelled edge per operator; each new
    line's ``➡️`` joins the last group of the line before to the first group of the new one."""
    out = ["flowchart LR"]
    node = 0
    previous_last: str | None = None
    for line in _tree(explanation).lines:
        ids = []
        for group in line.groups:
            node += 1
            ident = f"g{node}"
            ids.append(ident)
            out.append(f'    {ident}["{_mermaid_label(str(group))}"]')
        if previous_last is not None:
            out.append(f"    {previous_last} -->|{Operator.LEADS_TO.gloss}| {ids[0]}")
        for op, (a, b) in zip(line.operators, zip(ids, ids[1:])):
            arrow = "-->" if op is Operator.LEADS_TO else "---"
            out.append(f"    {a} {arrow}|{op.gloss}| {b}")
        previous_last = ids[-1]
    return "\n".join(out) + "\n"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #fdfcf8; color: #222; }}
  h1 {{ font-size: 1.2rem; font-weight: 600; }}
  .emogram {{ font-size: clamp(2rem, 7vw, 3.5rem); line-height: 1.4; margin: 1rem 0;
             font-family: "Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", sans-serif; }}
  .line {{ display: flex; flex-wrap: wrap; align-items: center; gap: 0.05em 0.3em; }}
  .group {{ padding: 0 0.08em; border-radius: 0.2em; white-space: nowrap; }}
  .group:hover {{ background: #f0ead6; }}
  .op {{ opacity: 0.7; font-size: 0.8em; }}
  .gloss {{ font-size: 1rem; max-width: 45rem; color: #444; }}
</style>
</head>
<body>
<h1>{title}</h1>
<div class="emogram" role="img" aria-label="{gloss}">
{lines}
</div>
<p class="gloss" aria-hidden="true">{gloss}</p>
</body>
</html>
"""


def to_html(explanation: Any, *, title: str | None = None) -> str:
    """A self-contained page: large emoji, each group and operator titled with its meaning, and the
    whole gloss as the accessible label (``role="img"``, ``aria-label``) and as visible text (hidden
    from screen readers, which already read the label). Lines wrap on narrow screens."""
    rows = []
    tree = _tree(explanation)
    for i, line in enumerate(tree.lines):
        cells = []
        if i:
            cells.append(_html_op(Operator.LEADS_TO))
        for op, group in line.steps():
            if op is not None:
                cells.append(_html_op(op))
            label = html.escape(gloss_group(group), quote=True)
            cells.append(f'<span class="group" title="{label}" aria-hidden="true">'
                         f"{html.escape(str(group))}</span>")
        rows.append(f'<div class="line">{"".join(cells)}</div>')
    topic = getattr(explanation, "topic", "")
    heading = title or (f"{topic} in emoji" if topic else "emogram")
    return _PAGE.format(title=html.escape(heading), gloss=html.escape(gloss(tree), quote=True),
                        lines="\n".join(rows))


def _html_op(op: Operator) -> str:
    return f'<span class="op" title="{html.escape(op.gloss)}" aria-hidden="true">{op.symbol}</span>'
