"""Renderings of the golden example: words, JSON, Mermaid, HTML."""

from __future__ import annotations

import json

from emogram import Explanation, parse
from emogram.language.render import gloss, to_dict, to_html, to_mermaid

GOLDEN = "📄 ➡️ 🔤🔢 ➕ 📍\n➡️ 👀🔄 🟰 🧠\n➡️ 🧱🧱🧱\n➡️ ⚡ 🆚 🐢"


def test_gloss_reads_the_golden_example_in_words():
    assert gloss(parse(GOLDEN)) == (
        "Page facing up, leads to, input latin letters and input numbers, combined with, round pushpin. "
        "Then, leads to, eyes and counterclockwise arrows button, means, brain. "
        "Then, leads to, three times brick. "
        "Then, leads to, high voltage, versus, turtle.")


def test_json_carries_text_names_and_meanings():
    data = json.loads(parse(GOLDEN).to_json())
    assert data["text"] == GOLDEN
    assert data["lines"][0]["groups"][1] == [{"emoji": "🔤", "name": "input latin letters"},
                                              {"emoji": "🔢", "name": "input numbers"}]
    assert data["lines"][0]["operators"] == [{"emoji": "➡️", "meaning": "leads to"},
                                             {"emoji": "➕", "meaning": "combined with"}]
    assert to_dict(parse(GOLDEN))["gloss"].startswith("Page facing up")


def test_mermaid_flowchart_links_groups_and_lines():
    chart = to_mermaid(parse(GOLDEN))
    assert chart.splitlines()[0] == "flowchart LR"
    assert '    g1["📄"]' in chart and '    g2["🔤🔢"]' in chart
    assert "    g1 -->|leads to| g2" in chart
    assert "    g2 ---|combined with| g3" in chart
    assert "    g3 -->|leads to| g4" in chart  # the second line's ➡️ continues the first
    assert "    g7 ---|versus| g8" in chart


def test_html_is_self_contained_and_labelled():
    page = to_html(parse(GOLDEN), title="transformers <in> emoji")
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert 'role="img"' in page and 'aria-label="Page facing up, leads to' in page
    assert "transformers &lt;in&gt; emoji" in page
    assert 'title="three times brick"' in page


def test_html_heading_from_the_topic_is_escaped():
    """No ``title=``: the heading and the window title come from the topic, escaped."""
    page = Explanation(parse(GOLDEN).tree, topic="a <b> & c").to_html()
    assert "<title>a &lt;b&gt; &amp; c in emoji</title>" in page
    assert "<h1>a &lt;b&gt; &amp; c in emoji</h1>" in page
    assert "<b>" not in page and "& c" not in page
    assert "<h1>emogram</h1>" in parse(GOLDEN).to_html()  # no topic, no title: the name
