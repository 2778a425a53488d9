"""The grammar oracle: llama.cpp's own grammar engine, with a real vocabulary, as a yes/no judge.

A text is tokenised by the model; each token is first offered to the grammar sampler
(``llama_sampler_apply`` on that one token) and only accepted (``llama_sampler_accept``) if it was
allowed: accepting a rejected token would abort the process. The text is in the language when
every token was allowed and an end-of-generation token is allowed at the end.
"""

from __future__ import annotations

from emogram.backend.grammar_sampler import GrammarSampler
from emogram.backend.llama import Model


class GBNFOracle:
    def __init__(self, model: Model, gbnf: str) -> None:
        self.model = model
        self.base = GrammarSampler(model, gbnf)
        self.eog = model.eog_tokens()[0]

    def _walk(self, text: str | bytes) -> tuple[bool, GrammarSampler]:
        g = self.base.clone()
        for tok in self._tokens(text):
            if not g.allows(tok):
                return False, g
            g.accept(tok, approved=True)
        return True, g

    def _tokens(self, text: str | bytes) -> list[int]:
        """The model's tokens for ``text``; for bytes that end inside a character, the whole
        characters as the model tokenizes them and then one single-byte token per byte left."""
        if isinstance(text, str):
            return self.model.tokenize(text, add_special=False, parse_special=False)
        k = len(text)
        while k and 0x80 <= text[k - 1] <= 0xBF:
            k -= 1
        if k and text[k - 1] >= 0xC0:  # a lead byte: its character is cut too
            k -= 1
        try:
            head = text[:k].decode("utf-8")
        except UnicodeDecodeError:
            head, k = "", 0
        return self._tokens(head) + [self._byte_token(b) for b in text[k:]]

    def _byte_token(self, b: int) -> int:
        if not hasattr(self, "_bytes"):
            self._bytes = {}
            for tok, piece in enumerate(self.model.pieces()):
                if len(piece) == 1 and not self.model.is_control(tok):
                    self._bytes.setdefault(piece[0], tok)
        return self._bytes[b]

    def accepts(self, text: str) -> bool:
        """Is ``text`` a complete sentence of the grammar?"""
        ok, g = self._walk(text)
        try:
            return ok and g.allows(self.eog)
        finally:
            g.close()

    def accepts_prefix(self, text: str | bytes) -> bool:
        """Can ``text`` be continued into a sentence of the grammar? (Bytes may end inside a
        character: llama.cpp then judges the partial character against what may follow.)"""
        ok, g = self._walk(text)
        g.close()
        return ok
