"""Scoring emoji answers against reference answers: the measures behind the quality benchmark.

``references`` loads and normalises the reference sets kept in the checkout's ``bench/references``,
``metrics`` scores answers against them, ``baselines`` scores what a model that knows nothing would
write, and ``stages`` checks whether an answer's plan names the parts people name. The scripts in
``bench/`` (``quality.py``, ``corpus_run.py``) run models and call these.
Nothing in the library imports this package.
"""
