"""The emoji inventory and its filters."""

from __future__ import annotations

import collections

import emoji as emoji_package
import pytest
from hypothesis import given, strategies as st

from emogram import EmojiFilter, InputError, InputTypeError
from emogram.language.unicode import inventory, lookup, name, parse_version, split_emoji


def test_inventory_is_every_fully_qualified_emoji_of_emoji_18():
    inv = inventory()
    assert len(inv) == 3963
    assert len({i.char for i in inv}) == 3963
    fq = {e for e, d in emoji_package.EMOJI_DATA.items() if d["status"] == emoji_package.STATUS["fully_qualified"]}
    assert {i.char for i in inv} == fq
    assert max(i.version for i in inv) == 18.0


def test_inventory_kinds_match_the_published_counts():
    kinds = collections.Counter(i.kind for i in inventory())
    assert kinds == {"single": 1193, "zwj": 1614, "skin-tone": 675, "flag": 259, "vs16": 207,
                     "keycap": 12, "tag-flag": 3}
    singles = sorted(ord(i.char) for i in inventory() if len(i.char) == 1)
    ranges = 1 + sum(1 for a, b in zip(singles, singles[1:]) if b != a + 1)
    assert ranges == 81


def test_no_emoji_is_a_concatenation_of_others():
    """Why a group of emoji written together parses one way only."""
    table = {i.char for i in inventory()}
    for e in table:
        reachable = {0}
        for start in range(len(e)):
            if start in reachable:
                reachable |= {end for end in range(start + 1, len(e) + 1)
                              if e[start:end] in table and not (start == 0 and end == len(e))}
        assert len(e) not in reachable, e


def test_components_and_unqualified_forms_are_not_in_the_inventory():
    for text in ["\U0001F3FD", "\U0001F9B0", "❤", "1⃣", "🇺", "\u200d", "\ufe0f", "a"]:
        assert lookup(text) is None


def test_names_come_from_cldr():
    assert name("📄") == "page facing up"
    assert name("🇺🇸") == "flag: United States"
    assert name("👍🏽") == "thumbs up medium skin tone"


ENGLAND, SCOTLAND, WALES = ("\U0001F3F4" + "".join(chr(0xE0000 + ord(c)) for c in code) + "\U000E007F"
                             for code in ("gbeng", "gbsct", "gbwls"))


def _flag_by_code_points(char: str) -> bool:
    """A country flag (two regional indicators) or a subdivision flag (🏴 and tag characters),
    told from the code points alone: the reference for ``flags=False``, independent of is_flag."""
    cps = [ord(c) for c in char]
    if len(cps) == 2 and all(0x1F1E6 <= cp <= 0x1F1FF for cp in cps):
        return True
    return len(cps) > 2 and cps[0] == 0x1F3F4 and all(0xE0020 <= cp <= 0xE007F for cp in cps[1:])


def test_no_flags_drops_country_and_subdivision_flags_and_nothing_else():
    kept = set(EmojiFilter(flags=False).select())
    for flag, place in ((ENGLAND, "England"), (SCOTLAND, "Scotland"), (WALES, "Wales")):
        assert name(flag) == f"flag: {place}"
        assert flag not in kept, place
    dropped = {i.char for i in inventory()} - kept
    assert dropped == {i.char for i in inventory() if _flag_by_code_points(i.char)}
    assert len(dropped) == 262  # Emoji 18.0: 259 countries and regions, 3 subdivisions
    for other in ("🏴", "🏁", "🏳️", "🏳️‍🌈", "🏴‍☠️", "🚩", "🎌"):  # flags, but no country's
        assert other in kept


@given(st.sampled_from(["0.6", "1.0", "5", 11, 13.1, "E15.0", "18.0"]))
def test_version_filter_admits_exactly_the_older_emoji(version):
    limit = parse_version(version)
    chosen = set(EmojiFilter.make(emoji_version=version).select())
    assert chosen == {i.char for i in inventory() if i.version <= limit}


@given(st.booleans(), st.booleans(), st.booleans())
def test_kind_filters_drop_exactly_their_kind(flags, skin_tones, zwj):
    chosen = set(EmojiFilter(flags=flags, skin_tones=skin_tones, zwj=zwj).select())
    for info in inventory():
        dropped = (not flags and info.is_flag) or (not skin_tones and info.has_skin_tone) or (not zwj and info.is_zwj)
        assert (info.char in chosen) == (not dropped)


@given(st.lists(st.sampled_from([i.char for i in inventory()]), min_size=1, max_size=20, unique=True),
       st.lists(st.sampled_from([i.char for i in inventory()]), max_size=5, unique=True))
def test_palette_and_exclude(palette, exclude):
    chosen = EmojiFilter.make(palette=palette, exclude=exclude).select()
    assert set(chosen) == set(palette) - set(exclude)
    assert EmojiFilter.make(palette="".join(palette)).select() == EmojiFilter.make(palette=palette).select()


def test_include_adds_back_after_the_other_filters():
    f = EmojiFilter.make(zwj=False, include=["❤️‍🔥"])
    assert "❤️‍🔥" in f.select() and "🧑‍🚀" not in f.select()


def test_split_emoji_and_its_errors():
    assert split_emoji("🍎 🍌,🇺🇸👍🏽") == ["🍎", "🍌", "🇺🇸", "👍🏽"]
    with pytest.raises(InputError, match="did you mean '❤️'"):
        split_emoji("❤")
    with pytest.raises(InputError, match="'a'"):
        split_emoji("🍎a")


@pytest.mark.parametrize("bad", ["fifteen", "0.1", "", True, [15]])
def test_bad_versions_are_refused(bad):
    with pytest.raises((InputError, InputTypeError)):
        parse_version(bad)


def test_palette_items_must_be_single_emoji():
    with pytest.raises(InputError, match="one emoji per item"):
        EmojiFilter.make(palette=["🍎🍌"])
    with pytest.raises(InputTypeError):
        EmojiFilter.make(palette=[1, 2])
