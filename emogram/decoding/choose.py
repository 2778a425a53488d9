"""Best of N: which of several candidate answers to keep.

The choice must not use what the quality benchmark measures (people's answers), so it uses what
emogram knows without them: how well the answer's emoji cover the topic's words in the lexicon
(``lexicon.relevance``), then the model's own confidence in its choices. On the tune half of the
references, keeping the candidate that covers the topic best raised precision against people's
answers by about 4 points on ELCo over keeping the first; the model's likelihood alone did not help
(``bench/quality.py --strategy best-of-4``).
"""

from __future__ import annotations

from ..stats import Result


def coverage(topic: str, text: str) -> float:
    """Mean over the topic's words of the best lexicon relevance of any emoji of the answer."""
    from ..knowledge.lexicon import relevance
    from ..knowledge.words import words
    from ..language.unicode import split_emoji
    topic_words = words(topic)
    emoji = set(split_emoji(text.replace("\n", " ").replace(" ", ""))) - OPERATOR_EMOJI
    if not topic_words or not emoji:
        return 0.0
    return sum(max(relevance(w, e) for e in emoji) for w in topic_words) / len(topic_words)


def confidence(result: Result) -> float:
    """The mean log-probability of the model's choices (0 when it was not recorded)."""
    tokens = result.stats.eval_tokens + result.stats.plan_tokens
    return result.stats.log_likelihood / tokens if tokens else 0.0


def best(topic: str, results: list[Result]) -> Result:
    """The candidate covering the topic best; the more confident one on a tie; else the first."""
    return max(results, key=lambda r: (round(coverage(topic, r.text), 6), confidence(r)))


OPERATOR_EMOJI = frozenset({"➡️", "➕", "🆚", "🟰"})
