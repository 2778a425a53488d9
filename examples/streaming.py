"""Print each emoji the moment it is complete (never half an emoji), like `ollama run`.

    python examples/streaming.py "black holes"
"""

import sys

from emogram import Explanation, stream

topic = " ".join(sys.argv[1:]) or "black holes"
for piece in stream(topic, seed=1):
    if isinstance(piece, Explanation):  # the last item: the parsed answer
        print(f"\n({len(piece.emoji())} emoji in {len(piece.lines)} lines)")
    else:
        print(piece, end="", flush=True)
