"""The knowledge layer: what emogram knows and says, apart from any model's weights.

``words`` (how English is read), ``lexicon`` (which emoji an English word or phrase calls for, from
``lexicon.tsv``, which ``lexicon_build`` generates), ``retrieval`` (emoji named by a topic's words)
and ``prompts`` (instructions, few-shot examples, prompt formats). It knows the language layer; a
model is only an object handed in (docs/architecture.md).
"""
