"""What the decoding layer may ask of a model and of its contexts: the backend contract as code.

``llama.Model`` and ``context.Context`` (``backend/``) are one implementation; another inference
library needs a model object with these members and nothing more. The engine, its set-ups and the
scheduler are typed against these protocols, and the type check (``tests/test_types.py``) proves
llama.cpp's model keeps to them (``_llama_keeps_the_contract`` below).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np

from ..constraint.judge import GrammarJudge
from ..constraint.prefilter import Vocabulary


class LoadInfo(Protocol):
    """How the model was loaded, as far as the engine reads it."""

    @property
    def seconds(self) -> float: ...  # reported in every result's stats

    @property
    def n_ctx_train(self) -> int: ...  # the longest sequence the model was trained on (0: unknown)


class ArrayCache(Protocol):
    """Arrays the same on every run for one model file (``backend/setup_cache.py``)."""

    def arrays(self, name: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]: ...


class OutputHead(Protocol):
    """Logits of chosen tokens only (``backend/head.py``)."""

    def positions(self, tokens: np.ndarray) -> np.ndarray: ...  # where each token's logit will be


class BackendContext(Protocol):
    """A KV cache of ``n_seq`` sequences and its forward passes, used by one thread at a time."""

    n_batch: int  # rows one decode takes at most
    head_ok: bool  # ``candidate_logits`` agrees with ``logits`` (else the engine reads full logits)

    @property
    def head(self) -> OutputHead | None: ...

    def decode(self, tokens: Sequence[int], positions: Sequence[int], seqs: Sequence[int],
               outputs: Sequence[bool], *, full_logits: bool = False) -> None: ...

    def logits(self, k: int) -> np.ndarray: ...  # over the whole vocabulary, output row k

    def candidate_logits(self, k: int) -> np.ndarray: ...  # at the head's positions, output row k

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> bool: ...

    def state_get(self, seq: int) -> bytes: ...  # one sequence's saved state, for the prompt cache

    def state_set(self, seq: int, payload: bytes) -> bool: ...  # False: refused (nothing loaded)

    def close(self) -> None: ...


class BackendModel(Vocabulary, Protocol):
    """A loaded model: its vocabulary, prompt formats, grammar judge and contexts."""

    @property
    def path(self) -> Path: ...  # its file (named in messages and cache keys)

    @property
    def load_info(self) -> LoadInfo: ...

    @property
    def setup_cache(self) -> ArrayCache | None: ...  # None: compute set-ups on every run

    @property
    def chat_template(self) -> str | None: ...

    @property
    def bos(self) -> int | None: ...

    @property
    def add_bos(self) -> bool: ...

    def tokenize(self, text: str | bytes, *, add_special: bool = False,
                 parse_special: bool = False) -> list[int]: ...

    def token_text(self, token: int | None) -> str: ...

    def control_mask(self) -> np.ndarray: ...  # bool per token

    def render_chat(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = True,
                    **kwargs: Any) -> str: ...

    def grammar(self, gbnf: str, root: str = "root") -> GrammarJudge: ...  # GrammarError if refused

    def new_context(self, *, n_seq: int, n_ctx: int) -> BackendContext: ...

    def on_close(self, closer: Callable[[], None]) -> None: ...  # run before the weights are freed


if TYPE_CHECKING:  # checked by mypy, never run
    from ..backend import llama

    def _llama_keeps_the_contract(model: llama.Model) -> BackendModel:
        return model
