"""Every emoji of a default answer has a glyph on a reader's screen: answers rendered with
``to_html()`` in headless Chromium with the installed colour emoji font (Debian's
``fonts-noto-color-emoji``), and the browser asked, emoji by emoji, what it drew.

What counts as a glyph (``chromium.glyph_report``): the emoji, drawn alone on a canvas in the page's
own font stack, inks some pixels; its pixels are neither those of a code point no font has (Noto
draws a blank there, other fonts a box) nor the font's unknown-flag picture (Noto's white flag with
a "?"); and it is one glyph wide, laid out in the page and on the canvas (a ZWJ or skin-tone
sequence the font lacks falls apart into its parts). The rendered result is judged rather than the
font file, so no font library is needed and a browser's own fallback is part of the test.

Skipped, with the reason, without Chromium or a colour emoji font (``.ci/run`` installs both,
best effort). The planted-character control fails only while no installed font draws Emoji 18.0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import emogram
from chromium import colour_emoji_font, find_chromium, glyph_report
from emogram import parse
from emogram.language.grammar import DEFAULT_FILTER, OPERATOR_SYMBOLS, content_emoji
from emogram.language.unicode import DEFAULT_EMOJI_VERSION, lookup

TOPICS = Path(__file__).parent.parent / "bench" / "topics.json"
N_TOPICS = 50
SEED = 1
LIGHTHOUSE = "\U0001F6D9"  # 🛙, new in Emoji 18.0 (2026)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = find_chromium()
    if colour_emoji_font() is None:
        pytest.skip("no colour emoji font (e.g. Debian's fonts-noto-color-emoji) per fc-list")
    return binary, tmp_path_factory.mktemp("glyphs")


@pytest.fixture(scope="module")
def answers(browser):
    """Default answers (the default model and options, seed 1 + k) for the first 50 topics."""
    topics = [t["topic"] for t in json.loads(TOPICS.read_text(encoding="utf-8"))["topics"][:N_TOPICS]]
    return emogram.explain_many(topics, seed=SEED, progress=False)


def _missing(verdicts) -> list[tuple[str, int, str]]:
    return [(v.text, v.answer, v.why) for v in verdicts if v.why]


def test_answers_for_50_topics_have_a_glyph_for_every_emoji(browser, answers):
    binary, root = browser
    assert len(answers) == N_TOPICS
    verdicts, report = glyph_report(binary, root, [e.to_html() for e in answers], "answers.html")
    assert "Noto Color Emoji" in report["family"]
    emoji = [e.char for a in answers for line in a.tree.lines for group in line.groups for e in group.emoji]
    assert len([v for v in verdicts if v.text not in OPERATOR_SYMBOLS]) == len(emoji) >= N_TOPICS
    assert all(lookup(e).version <= DEFAULT_EMOJI_VERSION for e in emoji)
    assert not _missing(verdicts), _missing(verdicts)


def test_a_planted_emoji_18_character_fails_the_check(browser, answers):
    """Control: the same answers with 🛙 (Emoji 18.0) in the first answer's first group, and a
    Emoji 17.0 sequence (🧑‍🩰, ballet dancer) the font lacks in the second's."""
    binary, root = browser
    dancer = "\U0001F9D1\u200d\U0001FA70"
    texts = [str(a) for a in answers]
    first = answers[0].tree.lines[0].groups[0]
    texts[0] = texts[0].replace(str(first), LIGHTHOUSE, 1)
    second = answers[1].tree.lines[0].groups[0]
    texts[1] = texts[1].replace(str(second), dancer, 1)
    pages = [parse(t).to_html() for t in texts]  # parse() reads every Emoji version
    verdicts, _ = glyph_report(binary, root, pages, "planted.html")
    missing = _missing(verdicts)
    assert [(text, answer) for text, answer, _ in missing] == [(LIGHTHOUSE, 0), (dancer, 1)], missing
    assert "no glyph" in missing[0][2] and "falls apart into 2 glyphs" in missing[1][2]


def test_every_emoji_of_the_default_version_has_a_glyph(browser):
    """The whole default inventory (Emoji 15.1 and older, 3,769 content emoji and the four
    operators), not only what the answers happened to use; Emoji 18.0 has none."""
    binary, root = browser
    chars = list(content_emoji(DEFAULT_FILTER))
    verdicts, _ = glyph_report(binary, root, _pages(chars), "inventory.html")
    assert {v.text for v in verdicts} == set(chars) | OPERATOR_SYMBOLS | {"😀"}
    assert not _missing(verdicts), _missing(verdicts)[:20]
    newest = [info.char for info in map(lookup, content_emoji(emogram.EmojiFilter()))
              if info.version == 18.0]
    verdicts, _ = glyph_report(binary, root, _pages(newest), "newest.html")
    assert {v.text for v in verdicts if v.why} == set(newest)


def _pages(chars: list[str]) -> list[str]:
    """Pages of answers holding ``chars``: groups of three, three to a line, eleven lines and one
    with the operators the other lines lack."""
    groups = ["".join(chars[k:k + 3]) for k in range(0, len(chars), 3)]
    lines = [" ➕ ".join(groups[k:k + 3]) for k in range(0, len(groups), 3)]
    ops = "😀 🆚 😀 🟰 😀"
    return [parse("\n➡️ ".join(lines[k:k + 11] + [ops])).to_html() for k in range(0, len(lines), 11)]
