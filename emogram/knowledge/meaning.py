"""Sentences as vectors, so that retrieval finds a topic worded with other words ("how do fish get
oxygen in water" and "how fish breathe underwater" share only "fish").

The vectors are WordLlama's (``wordllama`` on the package index, MIT): a table of 32,000 token
vectors of 256 numbers, distilled from a large model's input embeddings, that ships inside its
wheel (16 MB) with its tokenizer. A sentence's vector is the mean of its tokens' vectors, scaled to
length 1, and two sentences are as close as the cosine of their vectors. No model runs and nothing
is downloaded: the two files are read from the installed package, which is never imported
(WordLlama's own loader looks for its tokenizer in the wrong folder and then goes to the network,
and its import sets up the root logger), and
a sentence costs a tokenizer call and a mean. Tokens are encoded one sentence at a time and the
products are numpy's without BLAS, so no thread pool is left spinning beside llama.cpp's threads.

Measured on the paraphrase set (``bench/bank_recall.py``): the vectors alone put the meant entry
first for 86% of the paraphrases, the lexical index for 78%; together they follow 53% of the
held-out ones to the right entry, where the words alone followed 37% (docs/bank.md, "Retrieval").

``available()`` is False where the package or its files are missing: retrieval is then lexical
alone, as it was before.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

WEIGHTS = ("weights", "l2_supercat_256.safetensors")
TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _table():
    """(tokenizer, token vectors) from the installed ``wordllama`` package, or None."""
    import importlib.util
    try:  # the package's folder, without importing it: its import takes 0.26 s and configures
        #   the root logger (logging.basicConfig at INFO), which is the application's to set
        spec = importlib.util.find_spec("wordllama")
        from safetensors import safe_open
        from tokenizers import Tokenizer
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    weights, tokenizer = root.joinpath(*WEIGHTS), root.joinpath(*TOKENIZER)
    if not weights.is_file() or not tokenizer.is_file():
        return None
    tok = Tokenizer.from_file(str(tokenizer))
    tok.no_padding()
    tok.no_truncation()
    with safe_open(str(weights), framework="np", device="cpu") as f:
        table = np.ascontiguousarray(f.get_tensor("embedding.weight"), dtype=np.float32)
    return tok, table


def available() -> bool:
    return _table() is not None


def vectors(texts: Sequence[str]) -> np.ndarray:
    """One unit vector per text (rows), float32; a text with no token gets zeros."""
    found = _table()
    if found is None:
        raise RuntimeError("sentence vectors need the wordllama package")
    tok, table = found
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    with _LOCK:  # one tokenizer, any thread
        ids = [tok.encode(text, add_special_tokens=False).ids for text in texts]
    lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(ids))
    for n in np.unique(lengths[lengths > 0]):  # the texts of one length at once (the bank: 0.2 s)
        rows = np.flatnonzero(lengths == n)
        tokens = np.clip(np.array([ids[r] for r in rows], dtype=np.int64), 0, len(table) - 1)
        out[rows] = table[tokens].sum(axis=1) / n
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    np.divide(out, norms[:, None], out=out, where=norms[:, None] > 0)
    return out


def cosines(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` for unit rows, on this thread (no BLAS pool)."""
    return np.einsum("ij,j->i", matrix, vector)
