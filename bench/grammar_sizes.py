"""Inventory counts and grammar sizes for each filter: the table in docs/language.md.

    python bench/grammar_sizes.py

For each filter: content emoji, minimised trie nodes, GBNF rules (named), alternatives at the emoji
root (llama.cpp keeps one stack per alternative there), GBNF and lark bytes, and generation time
(median of 5 cold compiles).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram import EmojiFilter, Shape, compile_grammar  # noqa: E402
from emogram.language.unicode import inventory  # noqa: E402

FILTERS = {
    "emoji_version=15.1 (default)": EmojiFilter.make(emoji_version="15.1"),
    "all (emoji_version='latest')": EmojiFilter(),
    "emoji_version=15.0": EmojiFilter.make(emoji_version="15.0"),
    "emoji_version=12.0": EmojiFilter.make(emoji_version="12.0"),
    "no flags": EmojiFilter(flags=False),
    "no skin tones": EmojiFilter(skin_tones=False),
    "no ZWJ sequences": EmojiFilter(zwj=False),
    "no flags, skin tones or ZWJ": EmojiFilter(flags=False, skin_tones=False, zwj=False),
    "palette of 20 fruit": EmojiFilter.make(palette="🍎🍐🍊🍋🍌🍉🍇🍓🫐🍒🍑🥭🍍🥥🥝🍅🫒🥑🍈🫚"),
}


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    kinds = collections.Counter(i.kind for i in inventory())
    print(f"inventory: {len(inventory())} fully-qualified emoji: " +
          ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
    print()
    print("| filter | content emoji | trie nodes | GBNF rules | root alternatives | GBNF bytes | lark bytes | generation ms |")
    print("|---|---|---|---|---|---|---|---|")
    for label, flt in FILTERS.items():
        times = []
        for _ in range(5):
            compile_grammar.cache_clear()
            t0 = time.perf_counter()
            g = compile_grammar(Shape(), flt)
            times.append((time.perf_counter() - t0) * 1e3)
        s = g.stats
        print(f"| {label} | {s.emoji} | {s.trie_nodes} | {s.gbnf_rules} | {s.root_alternatives} | "
              f"{s.gbnf_bytes:,} | {s.lark_bytes:,} | {statistics.median(times):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
