"""The constraint layer: which tokens may follow, for a vocabulary it sees only as bytes.

``lexeme_dfa`` and ``matcher`` (the grammar as an incremental recogniser over token bytes),
``budget`` (tokens still needed to finish), ``prefilter`` (the tokens that can ever appear) and
``judge`` (a grammar engine's verdicts, remembered). It knows the language layer and no llama.cpp:
a grammar engine and a vocabulary come in through small protocols (docs/architecture.md).
"""
