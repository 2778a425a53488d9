"""Teaching the model: the corpus of staged explanations, the LoRA training and its GGUF export.

Nothing here is imported by ``import emogram``. ``corpus`` needs only the language layer;
``train`` and ``export`` need the ``train`` extra (torch, transformers, peft, gguf).
"""
