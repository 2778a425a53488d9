"""Restrict the answer to a palette of emoji, and to emoji old phones can show.

    python examples/palette.py
"""

from emogram import explain
from emogram.language.unicode import lookup, split_emoji

fruit = "🍎🍐🍊🍋🍌🍉🍇🍓🫐🍒🍑🥭🍍🥥🥝🔪🥣🧊🍯"
salad = explain("a fruit salad", palette=fruit, seed=3)
print("palette:     ", str(salad).replace("\n", " / "))
assert {e.char for e in salad.emoji()} <= set(split_emoji(fruit))

old_phones = explain("the weather", emoji_version="6.0", seed=3)
print("emoji <= 6.0:", str(old_phones).replace("\n", " / "))
assert all(lookup(e.char).version <= 6.0 for e in old_phones.emoji())
