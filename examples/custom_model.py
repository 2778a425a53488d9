"""Any GGUF model: give its path (or a preset name, or hf:OWNER/REPO:GLOB).

    python examples/custom_model.py /path/to/model.gguf "volcanoes"

Without arguments it uses the file of the smollm2-135m preset, to show that a plain path works.
Chat models use the chat template stored in the GGUF; base models get a few-shot prompt.
"""

import sys

from emogram import Explainer
from emogram.backend import models

path = sys.argv[1] if len(sys.argv) > 1 else str(models.resolve("smollm2-135m").path)
topic = " ".join(sys.argv[2:]) or "volcanoes"

explainer = Explainer(path)
print(f"model: {explainer.model_name} ({path})")
explanation = explainer.explain(topic, seed=1)
print(explanation)
print(explanation.gloss())
