"""The grammar oracle: llama.cpp's own grammar engine, with a real vocabulary, as a yes/no judge.

A text is tokenised by the model; each token is first offered to the grammar sampler
(``llama_sampler_apply`` on that one token) and only accepted (``llama_sampler_accept``) if it was
allowed: accepting a rejected token would abort the process. The text is in the language when
every token was allowed and an end-of-generation token is allowed at the end.
"""

from __future__ import annotations

from emogram.llama import GrammarSampler, Model


class GBNFOracle:
    def __init__(self, model: Model, gbnf: str) -> None:
        self.model = model
        self.base = GrammarSampler(model, gbnf)
        self.eog = model.eog_tokens()[0]

    def _walk(self, text: str) -> tuple[bool, GrammarSampler]:
        g = self.base.clone()
        for tok in self.model.tokenize(text, add_special=False, parse_special=False):
            if not g.allows(tok):
                return False, g
            g.accept(tok)
        return True, g

    def accepts(self, text: str) -> bool:
        """Is ``text`` a complete sentence of the grammar?"""
        ok, g = self._walk(text)
        try:
            return ok and g.allows(self.eog)
        finally:
            g.close()

    def accepts_prefix(self, text: str) -> bool:
        """Can ``text`` be continued into a sentence of the grammar?"""
        ok, g = self._walk(text)
        g.close()
        return ok
