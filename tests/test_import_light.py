"""``import emogram``, ``emogram.parse``, the renderers and ``emogram grammar`` never load llama.cpp.

Checked in a fresh interpreter (this test process may already hold a model): no ``llama_cpp``
module imported, and no libllama / libggml mapped into the process (``/proc/self/maps``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import contextlib, io, json, runpy, sys

import emogram
from emogram.language import render

e = emogram.parse("🐝 ➡️ 🌸🌼 ➡️ 💧\n➡️ 🏠 ➕ 🐝🐝🐝 ➡️ 🍯")
out = {"text": str(e), "lines": len(e.lines)}
out["json"] = json.loads(render.to_json(e))["lines"] is not None
out["html"] = "<" in render.to_html(e)
out["mermaid"] = render.to_mermaid(e).startswith(("flowchart", "graph"))
out["gloss"] = bool(render.gloss(e))
out["lazy_names"] = "explain" in dir(emogram)  # listed, not yet imported

buf = io.StringIO()
sys.argv = ["emogram", "grammar", "--palette", "🐝🌸🍯"]
with contextlib.redirect_stdout(buf):
    try:
        runpy.run_module("emogram", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        out["grammar_rc"] = exc.code
out["grammar"] = buf.getvalue()

out["modules"] = sorted(m for m in sys.modules if "llama" in m.lower() or "ggml" in m.lower())
with open("/proc/self/maps", encoding="utf-8") as f:
    out["mapped"] = sorted({line.split()[-1] for line in f
                            if "libllama" in line or "libggml" in line})
print(json.dumps(out))
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
def test_import_parse_render_and_grammar_cli_do_not_load_llama_cpp():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["text"] == "🐝 ➡️ 🌸🌼 ➡️ 💧\n➡️ 🏠 ➕ 🐝🐝🐝 ➡️ 🍯" and out["lines"] == 2
    assert out["json"] and out["html"] and out["mermaid"] and out["gloss"] and out["lazy_names"]
    assert out["grammar_rc"] in (0, None)
    assert "root" in out["grammar"] and "🍯" in out["grammar"]
    assert out["modules"] == [], out["modules"]
    assert out["mapped"] == [], out["mapped"]


def test_the_probe_would_see_llama_cpp_if_it_were_loaded():
    """The check itself works: importing the model layer does map libllama into the process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    code = ("import sys, emogram.backend.llama\n"
            "maps = open('/proc/self/maps').read()\n"
            "print('llama_cpp' in sys.modules, 'libllama' in maps)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["True", "True"]
