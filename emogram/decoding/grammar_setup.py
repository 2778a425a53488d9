"""What one (model, grammar, end texts) needs, made once and shared by every answer under that
grammar: the pre-filtered candidates, the grammar judge in its start state, its remembered
verdicts, and where each candidate's logit lies in each output head. The engine keeps these in a
bounded LRU (``Engine.setup``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..constraint.judge import GrammarJudge, VerdictCache
from ..constraint.prefilter import Candidates, PieceIndex
from .model_protocol import BackendContext


@dataclass
class Setup:
    """What one (model, grammar, end texts) needs, made once."""

    candidates: Candidates
    pristine: GrammarJudge  # the grammar judge in its start state (llama.cpp's GrammarSampler)
    verdicts: VerdictCache = field(default_factory=VerdictCache)
    positions: dict[int, np.ndarray] = field(default_factory=dict)  # per output head
    _piece_index: PieceIndex | None = None

    def piece_index(self, joiners: tuple[bytes, ...]) -> PieceIndex:
        """The candidates' pieces by their bytes, for glossed answers (made once: every caller
        passes the same ``joiners``, ``gloss.JOINERS``)."""
        if self._piece_index is None:
            self._piece_index = PieceIndex(self.candidates.pieces, self.candidates.n_content, joiners)
        return self._piece_index

    def positions_for(self, ctx: BackendContext) -> np.ndarray:
        """Where each candidate's logit is in what the scheduler hands a sequence."""
        if not ctx.head_ok or ctx.head is None:
            return self.candidates.tokens
        key = id(ctx.head)
        if key not in self.positions:
            self.positions[key] = ctx.head.positions(self.candidates.tokens)
        return self.positions[key]
