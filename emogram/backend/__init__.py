"""The backend layer: llama.cpp, and no emoji.

``library`` (llama-cpp-python's bindings, loaded once), ``llama`` (a GGUF model: vocabulary,
grammar samplers), ``context`` (forward passes for many sequences), ``head`` (logits of chosen
tokens only), ``gguf`` (file checks), ``models`` (presets and loading), ``prompt_cache`` (saved
prompt prefixes), ``forward_thread``, ``logs``, ``machine``, and ``single_sequence`` (the plain
one-sequence decode loop the benchmarks compare the engine with). The only layer that imports
``llama_cpp`` (docs/architecture.md).
"""
