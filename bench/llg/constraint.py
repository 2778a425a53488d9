"""llguidance as a constraint over emogram's llama.cpp vocabulary, for the speed benchmark.

It constrains decoding with the SAME grammar (emogram's lark text, see
``emogram.language.grammar``) on the SAME llama.cpp vocabulary as emogram's own engine, so the two
can be timed side by side:

* the tokenizer is llguidance's llama.cpp bridge, ``llguidance.llamacpp.lltokenizer_from_vocab``,
  given the ``llama_vocab*`` that emogram's ``Model`` already holds (``model._vocab``, an int
  address in llama-cpp-python 0.3.x, which the bridge passes straight to llama.cpp); token bytes
  are ``llama_token_to_piece(..., special=True)``, exactly what ``Model.pieces()`` returns, with
  control tokens prefixed by 0xFF (llguidance's mark for "special, never matched by grammar text");
* the end tokens are all of the model's end-of-generation tokens (``model.eog_tokens()``), not only
  ``llama_vocab_eos``;
* the grammar is ``convert_lark(lark_text)`` (``lark_grammar.py``) compiled by ``LLMatcher.grammar_from_lark`` and
  checked by ``LLMatcher.validate_grammar_with_warnings``; one ``LLMatcher`` per constraint. Two of
  the conversion's rules change llguidance's behaviour, not only its spelling, and both are needed
  for the mask to be exactly the grammar's (checked token by token against emogram's matcher):
  runs of emoji are fused into one lexeme (llguidance's greedy byte lexer would refuse ``👍👍``),
  and llguidance's byte forcing is turned off (it would allow only the canonical token of forced
  bytes: after ``❤`` the token ``\xef\xb8\x8f`` but not ``\xef``). See ``convert_lark``;
* the mask is computed by ``LLMatcher.unsafe_compute_mask_ptr`` into a preallocated int32 bitmask
  (what ``llguidance.numpy.fill_next_token_bitmask`` does, less its Python asserts), then unpacked
  to one bool per token (``mask()``), or used as is (``bitmask()``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

import llguidance
import llguidance.llamacpp
import llguidance.numpy
from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper

from lark_grammar import convert_lark

__all__ = ["LLGuidanceConstraint", "convert_lark", "make_tokenizer"]


# --- tokenizer ----------------------------------------------------------------------------------

_TOKENIZERS: dict[tuple[int, tuple[int, ...], str], tuple[LLTokenizer, float]] = {}


class _PiecesTokenizer:
    """A ``TokenizerWrapper`` source built from ``Model.pieces()`` (fallback for the bridge)."""

    def __init__(self, model: Any, eos: Sequence[int]) -> None:
        self._model = model
        self.eos_token_id = int(eos[0])
        self.bos_token_id = int(model.bos) if model.bos >= 0 else None
        self.special_token_ids = [t for t in range(model.n_vocab) if model.is_control(t)]
        special = set(self.special_token_ids)
        self.tokens = [(b"\xff" + p) if t in special else p for t, p in enumerate(model.pieces())]

    def __call__(self, data: bytes | str) -> list[int]:
        return self._model.tokenize(data, add_special=False, parse_special=False)


def make_tokenizer(model: Any, eos_tokens: Sequence[int] | None = None,
                   bridge: str = "llamacpp") -> tuple[LLTokenizer, float]:
    """llguidance's tokenizer for a loaded emogram model (cached per vocabulary): (tokenizer, seconds
    it took to build). ``bridge="llamacpp"`` uses llguidance's llama.cpp integration (the
    ``llama_vocab*`` and ``llama_tokenize``); ``bridge="pieces"`` builds it from ``Model.pieces()``
    through ``TokenizerWrapper`` (the same bytes, no raw pointers handed to llguidance)."""
    eos = tuple(int(t) for t in (eos_tokens if eos_tokens is not None else model.eog_tokens()))
    if not eos:
        eos = (int(model.eos),)
    key = (int(model._vocab), eos, bridge)
    hit = _TOKENIZERS.get(key)
    if hit is not None:
        return hit[0], 0.0
    t0 = time.perf_counter()
    if bridge == "llamacpp":
        tok = llguidance.llamacpp.lltokenizer_from_vocab(model._vocab, eos_token=list(eos))
    elif bridge == "pieces":
        tok = LLTokenizer(TokenizerWrapper(_PiecesTokenizer(model, eos)), n_vocab=model.n_vocab,
                          eos_token=list(eos))
    else:
        raise ValueError(f"unknown bridge {bridge!r}")
    seconds = time.perf_counter() - t0
    if tok.vocab_size != model.n_vocab:
        raise RuntimeError(f"llguidance sees {tok.vocab_size} tokens, llama.cpp {model.n_vocab}")
    _TOKENIZERS[key] = (tok, seconds)
    return tok, seconds


# --- the constraint -----------------------------------------------------------------------------

class LLGuidanceConstraint:
    """llguidance masking over a llama.cpp vocabulary for an emogram lark grammar."""

    def __init__(self, model: Any, lark_text: str, *, convert: bool = True, fuse_runs: bool = True,
                 forcing: bool = False, eos_tokens: Sequence[int] | None = None,
                 bridge: str = "llamacpp", log_level: int = 0) -> None:
        self.model = model
        self.n_vocab = int(model.n_vocab)
        self.tokenizer, self.tokenizer_seconds = make_tokenizer(model, eos_tokens, bridge)
        self.eos_tokens = np.array(self.tokenizer.eos_tokens, dtype=np.int64)
        self._eos_set = frozenset(int(t) for t in self.eos_tokens)
        t0 = time.perf_counter()
        self.lark = convert_lark(lark_text, fuse_runs=fuse_runs, forcing=forcing) if convert \
            else lark_text
        self.grammar = LLMatcher.grammar_from_lark(self.lark)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(self.grammar, self.tokenizer)
        if is_error:
            raise ValueError(f"llguidance rejected the grammar: {messages[0]}")
        self.warnings = list(messages)
        self.matcher = LLMatcher(self.tokenizer, self.grammar, log_level=log_level)
        if self.matcher.is_error():
            raise ValueError(f"llguidance could not build a matcher: {self.matcher.get_error()}")
        self.compile_seconds = time.perf_counter() - t0
        self._bits = llguidance.numpy.allocate_token_bitmask(1, self.n_vocab)
        self._row = self._bits[0]
        self._ptr = int(self._row.ctypes.data)
        self._nbytes = int(self._row.size * self._row.itemsize)
        self._bool: np.ndarray | None = None
        self._fresh = False  # the bitmask is that of the current state
        t0 = time.perf_counter()
        self.bitmask()
        self.first_mask_seconds = time.perf_counter() - t0

    def reset(self) -> None:
        """Back to the start state for a new answer."""
        if not self.matcher.reset():
            raise RuntimeError(f"llguidance could not reset: {self.matcher.get_error()}")
        self._fresh = False

    def bitmask(self) -> np.ndarray:
        """The allowed next tokens as llguidance's int32 bitmask (bit t%32 of word t//32); a view,
        valid until the next ``accept``/``reset``."""
        if not self._fresh:
            self.matcher.unsafe_compute_mask_ptr(self._ptr, self._nbytes)
            self._bool = None
            self._fresh = True
        return self._row

    def mask(self) -> np.ndarray:
        """The allowed next tokens, one bool per token (length ``n_vocab``)."""
        bits = self.bitmask()
        if self._bool is None:
            self._bool = np.unpackbits(bits.view(np.uint8), bitorder="little")[:self.n_vocab].view(bool)
        return self._bool

    def allowed(self, token: int) -> bool:
        if not 0 <= token < self.n_vocab:
            return False
        return bool((int(self.bitmask()[token >> 5]) >> (token & 31)) & 1)

    def accept(self, token: int) -> None:
        """Advance past ``token``; it must be allowed (checked: a refused token raises)."""
        if not self.allowed(token):
            raise ValueError(f"token {token} is not allowed here")
        ok = self.matcher.consume_token(int(token))
        self._fresh = False
        if not ok:
            raise RuntimeError(f"llguidance refused token {token}: {self.matcher.get_error()}")

    def is_accepting(self) -> bool:
        """The text may end here (the grammar is satisfied)."""
        return bool(self.matcher.is_accepting())

    def eos_allowed(self) -> bool:
        bits = self.bitmask()
        return any((int(bits[t >> 5]) >> (t & 31)) & 1 for t in self._eos_set)

    def only_eos_allowed(self) -> bool:
        """Nothing but an end token may follow (the structure is full)."""
        m = self.mask()
        return int(np.count_nonzero(m)) == int(np.count_nonzero(m[self.eos_tokens]))

    def is_eos(self, token: int) -> bool:
        return int(token) in self._eos_set

