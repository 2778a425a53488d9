"""The option fuzz (``fuzz_options.py``), run in a child process: every public keyword of
``explain`` with wild values gives a valid answer or one ``EmogramError``, and never an abort.

A crash in llama.cpp (an abort, a segfault) would kill the child, not this test run: the test then
fails with the signal and the child's last line names the call that did it. The example count is
kept small so the fuzz costs CI a few tens of seconds; ``EMOGRAM_FUZZ_EXAMPLES=2000 pytest
tests/test_option_fuzz.py`` (or ``python tests/fuzz_options.py 2000``) for a long run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent / "fuzz_options.py"
EXAMPLES = int(os.environ.get("EMOGRAM_FUZZ_EXAMPLES", "60"))


def test_wild_options_give_answers_or_typed_errors_never_an_abort():
    out = subprocess.run([sys.executable, str(FUZZ), str(EXAMPLES)], capture_output=True, text=True,
                         timeout=900)
    tail = f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    assert out.returncode >= 0, f"the fuzz child was killed by signal {-out.returncode}:\n{tail}"
    assert out.returncode == 0, tail
    outcomes = [line for line in out.stdout.splitlines() if line.startswith("outcomes:")]
    assert outcomes and "answer x" in outcomes[-1] and "refused:" in outcomes[-1], tail
