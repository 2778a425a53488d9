"""The language layer: what an emogram answer is, and nothing about models.

``unicode`` (the emoji inventory and its filters), ``ebnf`` (the rules as data), ``grammar`` (the
rules written out as GBNF and lark), ``tree`` (the typed tree and its parser), ``explanation`` (the
tree with the run's metadata beside it) and ``render`` (words, JSON, Mermaid, HTML).
It imports only ``emogram.errors`` from outside (docs/architecture.md).
"""
