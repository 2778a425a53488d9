"""Check an `emogram batch` output against its input: every topic once, every record valid.

    python bench/check_batch.py OUT.jsonl[.gz] TOPICS.txt [--prefix EARLIER.jsonl]

Prints: whether the file ends with a complete line; records, distinct keys and topics against the
input; how many texts parse back to themselves (emogram's grammar), error records, invalid ones and
input topics missing; with --prefix, whether the output still starts with that earlier file byte for
byte (a run killed with kill -9, then resumed, must not have touched its records). Exits 1 on any
failure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emogram import EmogramError, parse  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output", type=Path)
    ap.add_argument("topics", type=Path)
    ap.add_argument("--prefix", type=Path)
    args = ap.parse_args(argv)
    opener = gzip.open if args.output.suffix == ".gz" else open
    with opener(args.output, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    lines = lines[:-1] if complete else lines
    keys, topics, valid, errors, invalid = set(), set(), 0, 0, 0
    for line in lines:
        record = json.loads(line)
        keys.add(record["key"])
        topics.add(record["topic"])
        if record.get("error"):
            errors += 1
            continue
        try:
            valid += str(parse(record["text"])) == record["text"]
        except EmogramError:
            invalid += 1
    wanted = {t.strip() for t in args.topics.read_text(encoding="utf-8").splitlines() if t.strip()}
    missing = wanted - topics
    print(f"last line complete: {complete}")
    print(f"records {len(lines)}, distinct keys {len(keys)}, distinct topics {len(topics)}; "
          f"input topics {len(wanted)}, missing {len(missing)}")
    print(f"valid {valid}, error records {errors}, invalid {invalid}")
    ok = complete and len(lines) == len(keys) == len(topics) == len(wanted) and not missing
    ok = ok and valid == len(lines)
    if args.prefix:
        earlier = args.prefix.read_bytes()
        kept = raw.startswith(earlier)
        n = earlier.count(b"\n")
        print(f"starts with {args.prefix.name} ({n} records) byte for byte: {kept}")
        ok = ok and kept
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
