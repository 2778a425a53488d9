"""Write N distinct, deterministic topics for large batch runs (the 10,000-topic run of issue 16).

    python bench/make_topics.py 10000 > /tmp/topics-10k.txt

Topics are built from the emoji keywords of the lexicon (CLDR and emojilib words, not from any
evaluation set) in a few everyday templates, so they read like what people send ("how a kite
works", "a lost umbrella"); the order is shuffled with a fixed seed.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEMPLATES = ("{w}", "how a {w} works", "the history of the {w}", "a lost {w}", "{w} for beginners",
             "why people love the {w}", "a tiny {w}", "drawing a {w}")


def topics(n: int, seed: int = 10_000) -> list[str]:
    from emogram.knowledge.lexicon import _lexicon
    words = sorted({w for entry in _lexicon().entries for w in entry.cldr
                    if w.isalpha() and w.islower() and 3 <= len(w) <= 12})
    out = [t.format(w=w) for w in words for t in TEMPLATES]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} topics can be made")
    random.Random(seed).shuffle(out)
    return out[:n]


if __name__ == "__main__":
    sys.stdout.write("".join(t + "\n" for t in topics(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
