"""The decoding layer: per-sequence decoding state, and one loop that advances every sequence.

``engine`` (a topic and a request in, jobs out), ``job``, ``scheduler`` (one forward pass per step
for every open sequence), ``sequence`` (phases: thinking, constrained emoji), ``gloss`` (glossed
answers: a word, then its emoji), ``sampling`` (the cheap distribution) and ``choose`` (best of N).
It brings the constraint, knowledge and backend layers together (docs/architecture.md).
"""
