"""Headless Chromium for the browser tests (``language/test_render_browser.py``,
``test_glyphs_browser.py``): found on PATH or through ``EMOGRAM_CHROMIUM``, run with a fresh
profile and no network, killed with its whole process group on a timeout.

``glyph_report`` renders pages of ``to_html()`` answers and asks the browser, emoji by emoji,
whether it drew a glyph (see ``test_glyphs_browser.py`` for what counts as one).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

TIMEOUT_S = 60

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Containers often have a 64 MB /dev/shm, which can crash the renderer; Debian's wrapper
    # means to add this flag itself but its check misfires when findmnt prints two lines.
    "--disable-dev-shm-usage",
    "--enable-logging=stderr", "--v=0",
]


def find_chromium() -> str:
    override = os.environ.get("EMOGRAM_CHROMIUM")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        pytest.skip(f"EMOGRAM_CHROMIUM={override!r} is not an executable file")
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.skip("no Chromium binary found (looked for /usr/bin/chromium, and chromium and "
                "chromium-browser on PATH); install Debian's `chromium` to run this test")


@dataclass
class Run:
    stdout: str
    stderr: str


def run_chromium(binary: str, profile: Path, *args: str, timeout: int = TIMEOUT_S) -> Run:
    """One headless Chromium run with a fresh profile; kills the whole process group on timeout."""
    profile.mkdir(parents=True)
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"Chromium did not finish within {timeout}s: {' '.join(cmd)}")
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    assert proc.returncode == 0, f"Chromium exited {proc.returncode}\n{stderr[-4000:]}"
    return Run(stdout, stderr)


def colour_emoji_font() -> str | None:
    """The file of the colour emoji font fontconfig knows, or None."""
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return None
    try:
        out = subprocess.run([fc_list, ":", "file", "family"], capture_output=True, text=True,
                             timeout=TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return next((line.split(":")[0] for line in out.splitlines() if "color emoji" in line.lower()), None)


# --- did the browser draw each emoji? --------------------------------------------------------------

# Runs in the page after it is laid out. For each emoji of every group and operator (a grapheme
# cluster, Intl.Segmenter's), in the span's own font: its laid-out width (a Range over it), and,
# drawn alone on a canvas, its advance, how many pixels it inked and a hash of them. The same is
# measured for three references: a plain emoji (one glyph's width), a code point no font has (what
# this font draws for a missing glyph) and a flag no country has (the font's unknown-flag picture).
_PROBE = r"""
<pre id="emogram-glyphs"></pre>
<script>
(() => {
  const S = 64, canvas = document.createElement('canvas');
  canvas.width = 4 * S; canvas.height = 2 * S;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (text, family) => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.font = `${S}px ${family}`; ctx.textBaseline = 'top'; ctx.fillStyle = '#000';
    ctx.fillText(text, 8, 8);
    const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0, ink = 0;
    for (let i = 0; i < d.length; i++) hash = (Math.imul(hash, 31) + d[i]) | 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) ink++;
    return {advance: ctx.measureText(text).width / S, ink, hash};
  };
  const seg = new Intl.Segmenter('en', {granularity: 'grapheme'});
  const spans = [...document.querySelectorAll('.emogram span.group, .emogram span.op')];
  const family = spans.length ? getComputedStyle(spans[0]).fontFamily : 'sans-serif';
  const out = {family, reference: {one: draw('\u{1F600}', family), missing: draw('\u{10FFFD}', family),
                                   unknown_flag: draw('\u{1F1E6}\u{1F1E6}', family)}, emoji: []};
  for (const span of spans) {
    const node = span.firstChild, size = parseFloat(getComputedStyle(span).fontSize);
    let at = 0;
    for (const {segment} of seg.segment(node.data)) {
      const range = document.createRange();
      range.setStart(node, at); range.setEnd(node, at + segment.length);
      out.emoji.push({text: segment, answer: +span.closest('section').dataset.answer,
                      width: range.getBoundingClientRect().width / size,
                      ...draw(segment, getComputedStyle(span).fontFamily)});
      at += segment.length;
    }
  }
  document.getElementById('emogram-glyphs').textContent = JSON.stringify(out);
})();
</script>
"""


def glyph_page(pages: list[str]) -> str:
    """One document holding the bodies of several ``to_html()`` pages (the first one's head and
    style), each in a ``<section data-answer=K>``, and the probe."""
    head = pages[0][:pages[0].index("<body>")]
    bodies = [f'<section data-answer="{k}">{p[p.index("<body>") + 6:p.index("</body>")]}</section>'
              for k, p in enumerate(pages)]
    return f"{head}<body>\n{''.join(bodies)}{_PROBE}</body>\n</html>\n"


@dataclass(frozen=True)
class Verdict:
    text: str
    answer: int
    why: str  # "" when the browser drew one glyph for it


def glyph_report(binary: str, root: Path, pages: list[str], name: str = "emogram-glyphs.html"
                 ) -> tuple[list[Verdict], dict]:
    """Render ``pages`` (``to_html()`` output) together in headless Chromium; one verdict per emoji.

    An emoji has a glyph when the browser drew it as one picture: some ink, not the picture of a
    code point no font has (a blank or a box), not the font's unknown-flag picture, and one
    glyph's width, laid out and drawn (a sequence the font lacks falls apart into two or more)."""
    page = root / name
    page.write_text(glyph_page(pages), encoding="utf-8")
    run = run_chromium(binary, root / f"profile-{page.stem}", "--dump-dom", page.as_uri(),
                       timeout=4 * TIMEOUT_S)
    found = re.search(r'<pre id="emogram-glyphs">(.*?)</pre>', run.stdout, re.S)
    assert found and found.group(1), f"the probe wrote nothing; Chromium said:\n{run.stderr[-4000:]}"
    report = json.loads(html.unescape(found.group(1)))
    ref = report["reference"]
    one = ref["one"]["advance"]
    verdicts = []
    for e in report["emoji"]:
        why = ""
        if e["ink"] == 0 or e["hash"] == ref["missing"]["hash"]:
            why = "no glyph (drawn as the font's missing-glyph picture)"
        elif e["hash"] == ref["unknown_flag"]["hash"]:
            why = "no glyph (drawn as the font's unknown flag)"
        elif e["advance"] > 1.5 * one or e["width"] > 1.5 * one:
            why = f"falls apart into {round(e['advance'] / one)} glyphs"
        verdicts.append(Verdict(e["text"], e["answer"], why))
    return verdicts, report
