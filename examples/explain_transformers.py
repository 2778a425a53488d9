"""The seed's request, end to end: "Explain transformers with emoji" -- and only emoji.

    python examples/explain_transformers.py
"""

from emogram import explain

explanation = explain("transformers (machine learning)", lines=(3, 4), seed=7)

print(explanation)                 # the emoji, one line per step
print()
print(explanation.gloss())         # the same in words, for screen readers
print()
print(explanation.to_mermaid())    # a flowchart for docs
print()
print("plan:", ", ".join(explanation.plan))  # the stages in words
for source in explanation.sources:  # the bank entry it followed
    print(f"source ({source.used}): {source.topic}")
s = explanation.stats
print(f"{s.eval_tokens} tokens at {s.eval_rate:.1f} tokens/s on {explanation.model}")
