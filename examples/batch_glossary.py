"""Many topics, one model load: write a Markdown glossary (and an HTML page per topic).

    python examples/batch_glossary.py glossary.md
"""

import sys
from pathlib import Path

from emogram import Explainer

TOPICS = ["photosynthesis", "the internet", "democracy", "baking bread", "the Moon landing"]

out = Path(sys.argv[1] if len(sys.argv) > 1 else "glossary.md")
explainer = Explainer()  # loads the default model once
rows = ["# Emoji glossary", "", "| topic | emoji | in words |", "|---|---|---|"]
for explanation in explainer.explain_many(TOPICS, seed=0):
    emoji_cell = str(explanation).replace("\n", "<br>")
    rows.append(f"| {explanation.topic} | {emoji_cell} | {explanation.gloss()} |")
    page = out.with_name(out.stem + "-" + explanation.topic.replace(" ", "-") + ".html")
    page.write_text(explanation.to_html(), encoding="utf-8")
out.write_text("\n".join(rows) + "\n", encoding="utf-8")
print(f"wrote {out} and {len(TOPICS)} HTML pages")
