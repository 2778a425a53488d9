"""Screenshot the golden example's ``to_html()`` page in headless Chromium: writes docs/render.png.

Run from the repository root:  python docs/render_screenshot.py  [--out PATH] [--chromium BINARY]
Uses the same flags as tests/language/test_render_browser.py; nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # use the source tree's emogram

from emogram import parse  # noqa: E402

GOLDEN = "📄 ➡️ 🔤🔢 ➕ 📍\n➡️ 👀🔄 🟰 🧠\n➡️ 🧱🧱🧱\n➡️ ⚡ 🆚 🐢"
TITLE = "transformers in emoji"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "render.png")
    ap.add_argument("--chromium", default=shutil.which("/usr/bin/chromium") or shutil.which("chromium")
                    or shutil.which("chromium-browser"))
    args = ap.parse_args()
    if not args.chromium:
        print("no Chromium binary found; install Debian's `chromium` or pass --chromium", file=sys.stderr)
        return 2
    version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True,
                             timeout=60).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="emogram-shot-") as tmp:
        page = Path(tmp) / "render.html"
        page.write_text(parse(GOLDEN).to_html(title=TITLE), encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([args.chromium, *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
                        f"--screenshot={args.out.resolve()}", "--window-size=1000,700", page.as_uri()],
                       check=True, timeout=60, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) with {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
