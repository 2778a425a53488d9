"""llama.cpp's GBNF grammar engine, as the judge of single tokens and of candidate lists
(``constraint/judge.py`` asks it through the ``GrammarJudge`` protocol; ``llama.Model.grammar``
makes one).

Under the same rule as ``llama.py``: llama.cpp must never see input that makes it throw or abort,
since ctypes can catch neither. So grammars are compiled with their errors captured and turned into
``GrammarError``, token ids are checked before any sampler call, a token is accepted only after the
sampler said yes, and a closed sampler or model refuses every call.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from ..errors import GrammarError, InputError
from . import logs
from .library import C, Freed


class GrammarSampler(Freed):
    """llama.cpp's GBNF engine as a judge of single tokens and of candidate lists.

    Never accepts a token that ``allows`` did not approve first: llama.cpp throws on that, and a
    C++ exception through ctypes aborts the process. It keeps a pointer into the model's
    vocabulary, so every call checks that the model is still open.
    """

    def __init__(self, model: Any, gbnf: str, root: str = "root", *, _ptr: int | None = None) -> None:
        # ``model``: the ``llama.Model`` whose vocabulary it reads (Any: llama.py imports this module)
        self.model = model
        self.gbnf = gbnf
        self._ptr = None
        if _ptr is None:
            if "::=" not in gbnf:  # llama.cpp turns an empty grammar into a sampler that allows all
                raise GrammarError("llama.cpp rejected the grammar", "the grammar has no rules")
            with model.lock:
                model._live()
                logs.clear()
                with logs.captured_stderr() as err:
                    ptr = C.llama_sampler_init_grammar(model._vocab, gbnf.encode("utf-8"),
                                                       root.encode("utf-8"))
            if not ptr:
                detail = (err[0] if err else "").strip() or logs.recent()
                detail = detail.split("\n\n")[0]  # llama.cpp appends the whole grammar: drop it
                raise GrammarError("llama.cpp rejected the grammar", detail)
            self._ptr = ptr
        else:
            self._ptr = _ptr
        self._one_data = (C.llama_token_data * 1)()
        self._one = C.llama_token_data_array(self._one_data, 1, -1, False)
        self._one_ref = ctypes.byref(self._one)
        self._many_data: ctypes.Array | None = None
        self._many_view: np.ndarray | None = None

    def _live(self) -> None:
        if not self._ptr:
            raise GrammarError("this grammar sampler is closed")
        self.model._live()

    def clone(self) -> "GrammarSampler":
        """An independent copy in the same state (cheap: no re-parse)."""
        self._live()
        ptr = C.llama_sampler_clone(self._ptr)
        if not ptr:
            raise GrammarError("llama.cpp could not clone the grammar sampler")
        return GrammarSampler(self.model, self.gbnf, _ptr=ptr)

    def allows(self, token: int) -> bool:
        """Would the grammar accept ``token`` next? (An end-of-generation token means: may it end?)"""
        token = self.model.check_token(token)
        self._live()
        d = self._one_data[0]
        d.id = token  # type: ignore[assignment]  # (ctypes converts the int)
        d.logit = 0.0
        self._one.size = 1
        self._one.selected = -1
        self._one.sorted = False
        C.llama_sampler_apply(self._ptr, self._one_ref)
        return self._one_data[0].logit != float("-inf")

    def allowed(self, tokens: np.ndarray) -> np.ndarray:
        """Boolean mask over ``tokens`` (int32): which ones the grammar would accept next."""
        self._live()
        try:
            wide = np.asarray(tokens)
        except (OverflowError, ValueError, TypeError):
            wide = None
        if wide is None or wide.ndim != 1 or (wide.size and wide.dtype.kind not in "iu"):
            raise InputError("the grammar takes a 1-d array of int token ids")
        if wide.size and (wide.min() < 0 or wide.max() >= self.model.n_vocab):
            raise InputError("token ids outside the vocabulary were offered to the grammar")
        tokens = wide.astype(np.int32)
        n = len(tokens)
        if self._many_data is None or len(self._many_data) < n:
            self._many_data = (C.llama_token_data * max(n, 1))()
            dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
            self._many_view = np.frombuffer(self._many_data, dtype=dtype)  # type: ignore[call-overload]
        view = self._many_view
        assert view is not None
        view["id"][:n] = tokens
        view["logit"][:n] = 0.0
        arr = C.llama_token_data_array(self._many_data, n, -1, False)
        C.llama_sampler_apply(self._ptr, ctypes.byref(arr))
        if ctypes.addressof(arr.data.contents) != ctypes.addressof(self._many_data):  # type: ignore[attr-defined]
            raise GrammarError("llama.cpp replaced the candidate array; cannot read its verdicts")
        return view["logit"][:n] != -np.inf

    def accept(self, token: int, *, approved: bool = False) -> None:
        """Advance past ``token``. llama.cpp aborts the process on a token its grammar refuses
        here, so ``allows(token)`` is asked first and a refused token raises ``InputError``, unless
        the caller vouches for it (``approved=True``: it holds this grammar's yes for this token
        in this state, as the engine's judge does; asking again would double the cost)."""
        token = self.model.check_token(token)
        self._live()
        if not approved and not self.allows(token):
            raise InputError(f"token {token} is not allowed by the grammar here; nothing was accepted")
        C.llama_sampler_accept(self._ptr, token)

    def close(self) -> None:
        if getattr(self, "_ptr", None):
            C.llama_sampler_free(self._ptr)
            self._ptr = None
