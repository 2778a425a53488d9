"""Defaults that more than one layer needs, declared once (the engine's ``Request``, the option
table in ``option_table.py``, the CLI and the API all read them here)."""

from __future__ import annotations

import os
from pathlib import Path

DEVICES = ("auto", "cpu", "gpu")  # where a model runs; "auto" offloads when a GPU build finds one
DEFAULT_MAX_TOKENS = 96  # an answer's token budget, and the thinking's
MAX_TOKENS_CEILING = 1024  # the largest budget either may be given
DEFAULT_LEXICON = 2.0  # logits added to the lexicon's emoji for a part (bench/quality.py, tune half)
# A glossed answer's group is one emoji or two: a byte piece that starts a character is then more
# often the start of an odd, rare one. Tune half, seeds 0-2, penalty 4 against 6: precision against
# ELCo .464/.458, against topics to explain .488/.509 (bench/quality.py; 2 is the direct answer's).
GLOSS_PARTIAL_PENALTY = 6.0
MAX_CANDIDATES = 64  # answers decoded side by side for one topic
DEFAULT_BATCH_SIZE = 1  # explain_many on the CPU: fastest of 1, 4 and 16 on 2 cores, interleaved
#                        (bench/batching.py --sizes: 4 and 16 took 1.2-1.3x as long; a glossed answer's
#                        word steps need the whole vocabulary's logits per row, which batching does
#                        not amortise here), and exact: its texts are explain's
GPU_BATCH_SIZE = 16  # with GPU offload, where wide decodes are cheap (not measured on these machines)
MAX_BATCH_SIZE = 256  # sequences decoded together
ENV_CACHE = "EMOGRAM_CACHE"


def cache_dir() -> Path:
    """Where emogram keeps its files (assembled models, caches, the server's socket):
    ``$EMOGRAM_CACHE`` or ``~/.cache/emogram``."""
    base = os.environ.get(ENV_CACHE) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "emogram")
    return Path(base)
