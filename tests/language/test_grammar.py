"""The grammar compiler: compact GBNF that llama.cpp accepts, lark that agrees, files kept fresh."""

from __future__ import annotations

from pathlib import Path

import lark
import pytest
from hypothesis import given, settings, strategies as st

from emogram import EmojiFilter, GrammarError, InputError, Shape, compile_grammar
from emogram.backend.grammar_sampler import GrammarSampler
from emogram.language.grammar import generated_files, inventory_gbnf, inventory_lark
from emogram.language.unicode import inventory

from oracle import GBNFOracle
from emogram.testing import shapes

REPO = Path(__file__).resolve().parents[2]
UNQUALIFIED_AND_STRAYS = ["❤", "1⃣", "#⃣", "☺", "a", "A", "1", "中", "語", "\U0001F3FD", "\U0001F3FB",
                          "\u200d", "\U0001F1FA", "\U0001F1FA\U0001F1FA", "\ufe0f", "\u20e3", " ", "",
                          "👍\u200d", "\u200d👍", "🏳️\u200d", "👍🏽\U0001F3FD", "\U000E0067"]


def test_checked_in_grammars_are_fresh():
    """Fails when the inventory or the compiler changed without `emogram grammar --write grammars`."""
    for name, expected in generated_files().items():
        path = REPO / "grammars" / name
        assert path.is_file(), f"{path} is missing: run `emogram grammar --write grammars`"
        assert path.read_text(encoding="utf-8") == expected, \
            f"{path} is stale: run `emogram grammar --write grammars` and commit"


def test_default_grammar_is_at_least_as_compact_as_the_reference_trie():
    """Reference: a minimised code-point trie measured at 227 rules, 54 root alternatives, 19 KB."""
    s = compile_grammar().stats
    trie_rules = s.gbnf_rules - 4  # root, line, group, op
    assert trie_rules <= 227
    assert s.root_alternatives <= 54
    assert s.gbnf_bytes <= 19_000
    assert s.emoji == 3963 - 4  # the four operators are not content


def test_every_inventory_emoji_is_accepted_by_lark():
    parser = lark.Lark(inventory_lark(), parser="lalr")
    for info in inventory():
        parser.parse(info.char)


@pytest.mark.parametrize("text", UNQUALIFIED_AND_STRAYS)
def test_lark_rejects_unqualified_forms_and_strays(text):
    parser = lark.Lark(inventory_lark(), parser="lalr")
    with pytest.raises(lark.exceptions.LarkError):
        parser.parse(text)


@pytest.mark.parametrize("which", ["smol", "gemma"])
def test_every_inventory_emoji_is_accepted_by_llama_cpp(which, request):
    model = request.getfixturevalue(which)
    oracle = GBNFOracle(model, inventory_gbnf())
    refused = [i.char for i in inventory() if not oracle.accepts(i.char)]
    assert refused == []


@pytest.mark.parametrize("text", UNQUALIFIED_AND_STRAYS)
def test_llama_cpp_rejects_unqualified_forms_and_strays(text, smol):
    assert not GBNFOracle(smol, inventory_gbnf()).accepts(text)


@settings(max_examples=25)
@given(shape=shapes(), version=st.sampled_from([None, "1.0", "12.0", "15.1"]),
       flags=st.booleans(), skin=st.booleans(), zwj=st.booleans())
def test_every_generated_grammar_compiles_in_llama_cpp(smol, shape, version, flags, skin, zwj):
    g = compile_grammar(shape, EmojiFilter.make(emoji_version=version, flags=flags, skin_tones=skin, zwj=zwj))
    GrammarSampler(smol, g.gbnf).close()  # raises GrammarError if llama.cpp refuses it
    lark.Lark(g.lark, parser="lalr")


@pytest.mark.parametrize("filt", [EmojiFilter(), EmojiFilter.make(emoji_version="12.0"),
                                  EmojiFilter(flags=False, skin_tones=False, zwj=False),
                                  EmojiFilter.make(palette="🍎🍌🍇")])
def test_filtered_inventory_grammar_admits_exactly_the_filter(filt, smol):
    oracle = GBNFOracle(smol, inventory_gbnf(filt))
    chosen = set(filt.select())
    sample = [i.char for i in inventory()][::37] + list(chosen)[:20]
    for e in sample:
        assert oracle.accepts(e) == (e in chosen), e


@pytest.mark.parametrize("bad, detail", [
    ('root ::= "a" | b', "Undefined rule identifier 'b'"),
    ('root ::= [a', "unexpected end of input"),
    ('foo ::= "a"', "does not contain a 'root' symbol"),
    ('root ::= root "a"', "left recursion"),
    ('root ::= "a"{5000}', "repetitions"),
    ("root ::= \"\\q\"", "unknown escape"),
    ("", "no rules"),
    ("# only a comment", "no rules"),
])
def test_llama_cpp_grammar_errors_become_grammar_error(smol, bad, detail):
    with pytest.raises(GrammarError) as info:
        GrammarSampler(smol, bad)
    assert detail in str(info.value)


def test_empty_selection_is_a_clear_error():
    with pytest.raises(InputError, match="no emoji are left"):
        compile_grammar(Shape(), EmojiFilter.make(palette=["➡️", "➕"]))


def test_grammar_shape_bounds_are_checked():
    with pytest.raises(InputError, match="maximum is"):
        Shape(lines=(1, 99))
    with pytest.raises(InputError, match="above the maximum"):
        Shape(steps=(3, 2))
    with pytest.raises(InputError, match="operators is empty"):
        Shape(steps=(1, 2), operators=())
