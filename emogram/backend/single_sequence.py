"""One sequence on a llama.cpp context of its own, one token per forward pass, full logits: the plain
decode loop that the benchmarks compare emogram's engine with (llguidance's, the extra-buffers A/B).

    seq = SingleSequence(model)
    seq.prefill(prompt_tokens)
    while ...:
        token = pick(seq.logits())
        seq.push(token)

It uses emogram's ``Context`` (the same ctypes layer as the engine), with its own KV cache, so it
never touches the engine's scheduler or its contexts.
"""

from __future__ import annotations

import numpy as np


class SingleSequence:
    def __init__(self, model, n_ctx: int = 2048) -> None:
        self.ctx = model.new_context(n_seq=1, n_ctx=n_ctx)
        self.pos = 0
        self.held: list[int] = []  # the tokens the KV cache holds, in order

    def prefill(self, tokens: list[int]) -> None:
        """Make the sequence hold ``tokens``: the cells of the longest prefix it already holds are
        kept (a shared few-shot prefix is evaluated once, as emogram's prompt cache does), the rest
        is evaluated in chunks of at most n_batch."""
        tokens = [int(t) for t in tokens]
        if not tokens:
            raise ValueError("a prompt needs at least one token")
        keep = 0
        while keep < min(len(tokens) - 1, len(self.held)) and tokens[keep] == self.held[keep]:
            keep += 1  # the last prompt token is always evaluated again: its logits are needed
        self.ctx.seq_rm(0, keep, -1)
        step = self.ctx.n_batch
        for start in range(keep, len(tokens), step):
            chunk = tokens[start:start + step]
            last = start + len(chunk) == len(tokens)
            self.ctx.decode(chunk, range(start, start + len(chunk)), [0] * len(chunk),
                            [last and i == len(chunk) - 1 for i in range(len(chunk))], full_logits=last)
        self.pos, self.held = len(tokens), tokens

    def logits(self) -> np.ndarray:
        """The whole vocabulary's logits after the last token (read-only, valid until ``push``)."""
        return self.ctx.logits(0)

    def push(self, token: int) -> None:
        self.ctx.decode([int(token)], [self.pos], [0], [True], full_logits=True)
        self.pos += 1
        self.held.append(int(token))

    def close(self) -> None:
        self.ctx.close()
