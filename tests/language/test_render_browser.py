"""``to_html()`` in a real browser: headless Chromium loads the page, and we check the DOM it built,
a screenshot of it, and its console log.

Skipped (with the reason) when no Chromium binary is found, so the suite still passes without one.
Set ``EMOGRAM_CHROMIUM`` to a browser binary to use that one instead of looking on PATH.
Self-contained: the page is a local file, nothing is fetched, and each run has a fresh profile.
"""

from __future__ import annotations

import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chromium import colour_emoji_font, find_chromium as _find_chromium, run_chromium as _run_chromium
from emogram import Explanation, parse
from emogram.language.grammar import Operator
from emogram.language.render import gloss, gloss_group

GOLDEN = "📄 ➡️ 🔤🔢 ➕ 📍\n➡️ 👀🔄 🟰 🧠\n➡️ 🧱🧱🧱\n➡️ ⚡ 🆚 🐢"
TITLE = "transformers in emoji"
HOSTILE_TOPIC = "a <b> & c"  # a topic with markup in it
PAGE_NAME = "emogram-render-check.html"  # distinctive, so log lines about the page are easy to find
WINDOW = (1000, 700)


def _console_problems(stderr: str, page_name: str) -> list[str]:
    """Log lines about the page from its console or an uncaught exception.

    Chromium logs every console message at INFO level whatever its level (``INFO:CONSOLE:2]`` in
    Chromium 156, ``INFO:CONSOLE(2)]`` in older ones), so ``console.error`` cannot be told from
    ``console.log`` by level; the page has no scripts, so any console line about it is a problem.
    """
    return [line for line in stderr.splitlines()
            if page_name in line and ("CONSOLE" in line or "Uncaught" in line)]


class _DomFacts(HTMLParser):
    """Collects the parts of the dumped DOM that the checks need."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.img_labels: list[str | None] = []
        self.groups: list[tuple[str | None, str]] = []  # (title, text) of each span.group
        self.ops: list[tuple[str | None, str]] = []
        self.h1 = ""
        self.title = ""
        self.gloss_text = ""
        self.tags: list[str] = []  # every element, in order
        self._stack: list[str | None] = []  # what the text inside each open element feeds

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        classes = (a.get("class") or "").split()
        if a.get("role") == "img":
            self.img_labels.append(a.get("aria-label"))
        target = None
        if tag == "span" and "group" in classes:
            self.groups.append((a.get("title"), ""))
            target = "group"
        elif tag == "span" and "op" in classes:
            self.ops.append((a.get("title"), ""))
            target = "op"
        elif tag in ("h1", "title"):
            target = tag
        elif tag == "p" and "gloss" in classes:
            target = "gloss"
        if tag not in ("meta", "link", "br", "img", "input", "hr"):  # void elements never close
            self._stack.append(target)

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        target = next((t for t in reversed(self._stack) if t), None)
        if target in ("group", "op"):
            items = self.groups if target == "group" else self.ops
            title, text = items[-1]
            items[-1] = (title, text + data)
        elif target == "h1":
            self.h1 += data
        elif target == "title":
            self.title += data
        elif target == "gloss":
            self.gloss_text += data


def _png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG with the standard library only.

    Returns (width, height, bytes per pixel, rows of raw pixel bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace:
        pytest.skip(f"PNG layout not handled by this small decoder: depth {depth}, "
                    f"colour type {colour_type}, interlace {interlace}")
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"bad PNG filter type {kind} in row {y}"
        rows.append(bytes(row))
        prev = row
    return width, height, bpp, rows


def _has_colour_emoji_font() -> bool:
    return colour_emoji_font() is not None


@pytest.fixture(scope="module")
def explanation():
    return parse(GOLDEN)


@pytest.fixture(scope="module")
def browser(explanation, tmp_path_factory):
    """Load the golden page twice in headless Chromium: once dumping the DOM, once a screenshot."""
    binary = _find_chromium()
    root = tmp_path_factory.mktemp("browser")
    page = root / PAGE_NAME
    page.write_text(explanation.to_html(title=TITLE), encoding="utf-8")
    url = page.as_uri()
    dom = _run_chromium(binary, root / "profile-dom", "--dump-dom", url)
    shot = root / "render.png"
    screenshot = _run_chromium(binary, root / "profile-shot", f"--screenshot={shot}",
                               f"--window-size={WINDOW[0]},{WINDOW[1]}", url)
    return {"binary": binary, "root": root, "dom": dom, "screenshot_run": screenshot, "png": shot}


def test_dom_has_the_label_the_groups_and_the_gloss(browser, explanation):
    facts = _DomFacts()
    facts.feed(browser["dom"].stdout)
    facts.close()
    expected_gloss = gloss(explanation)
    assert facts.img_labels == [expected_gloss], "one role=img element labelled with the gloss"
    groups = [g for line in explanation.lines for g in line.groups]
    assert [text for _, text in facts.groups] == [str(g) for g in groups]
    assert [title for title, _ in facts.groups] == [gloss_group(g) for g in groups]
    # Each line after the first starts with its ➡️, then the line's own operators.
    ops = [op for i, line in enumerate(explanation.lines)
           for op in ([Operator.LEADS_TO] if i else []) + list(line.operators)]
    assert [text for _, text in facts.ops] == [op.symbol for op in ops]
    assert [title for title, _ in facts.ops] == [op.gloss for op in ops]
    assert facts.h1.strip() == TITLE
    assert facts.gloss_text.strip() == expected_gloss


def test_screenshot_is_a_non_blank_png(browser):
    png: Path = browser["png"]
    said = browser["screenshot_run"].stderr[-2000:]
    assert png.is_file(), f"no screenshot written; Chromium said:\n{said}"
    data = png.read_bytes()
    assert len(data) > 8 * 1024, f"screenshot suspiciously small ({len(data)} bytes)"
    width, height, bpp, rows = _png_pixels(data)
    assert (width, height) == WINDOW
    colours = {row[i:i + 3] for row in rows for i in range(0, len(row), bpp)}
    assert len(colours) > 1, "screenshot is a single flat colour"


def test_emoji_render_as_colour_pictures(browser):
    """With a colour emoji font the emoji are pictures: many strongly coloured pixels. Without
    one (or with tofu boxes) the page is near-greyscale (#fdfcf8 background, grey text)."""
    if not _has_colour_emoji_font():
        pytest.skip("no colour emoji font (e.g. Debian's fonts-noto-color-emoji) per fc-list")
    _, _, bpp, rows = _png_pixels(browser["png"].read_bytes())
    saturated = sum(1 for row in rows for i in range(0, len(row), bpp)
                    if max(row[i:i + 3]) - min(row[i:i + 3]) > 60)
    assert saturated > 5000, f"only {saturated} strongly coloured pixels: emoji not drawn in colour?"


def test_no_console_errors_or_uncaught_exceptions(browser):
    problems = (_console_problems(browser["dom"].stderr, PAGE_NAME)
                + _console_problems(browser["screenshot_run"].stderr, PAGE_NAME))
    assert not problems, "Chromium logged about the page:\n" + "\n".join(problems)


def test_console_check_catches_a_broken_page(browser):
    """Control: the console check above is not vacuous; this Chromium does log page errors."""
    root: Path = browser["root"]
    bad_name = "emogram-broken-control.html"
    bad = root / bad_name
    bad.write_text('<!doctype html><meta charset="utf-8"><title>x</title>'
                   '<script>console.error("deliberate")</script>'
                   '<script>throw new Error("deliberate")</script>', encoding="utf-8")
    run = _run_chromium(browser["binary"], root / "profile-control", "--dump-dom", bad.as_uri())
    problems = _console_problems(run.stderr, bad_name)
    assert any("Uncaught" in p for p in problems), run.stderr[-4000:]
    assert any('"deliberate"' in p for p in problems), run.stderr[-4000:]


def test_a_heading_made_from_the_topic_stays_text(browser):
    """Without ``title=`` the heading is made from the topic: markup in a topic is shown as text,
    never built into the page (no <b> element, the heading and the window title read as given)."""
    root: Path = browser["root"]
    name = "emogram-topic-heading.html"
    page = root / name
    page.write_text(Explanation(parse(GOLDEN).tree, topic=HOSTILE_TOPIC).to_html(), encoding="utf-8")
    run = _run_chromium(browser["binary"], root / "profile-topic", "--dump-dom", page.as_uri())
    facts = _DomFacts()
    facts.feed(run.stdout)
    facts.close()
    assert facts.h1.strip() == f"{HOSTILE_TOPIC} in emoji"
    assert facts.title.strip() == f"{HOSTILE_TOPIC} in emoji"
    assert "b" not in facts.tags and "h1" in facts.tags
    assert not _console_problems(run.stderr, name)
