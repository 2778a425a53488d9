"""bench/blind.py on two made-up results files (no model): sheet, key, ratings, counts."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import blind  # noqa: E402


def results(path: Path, texts: dict[str, str], strategy="default") -> Path:
    items = {k: {"set": "annotators", "topic": f"topic {k}", "kind": "topic" if k.startswith("t") else "phrase",
                 "half": "held-out" if int(k[1:]) % 2 else "tune"} for k in texts}
    path.write_text(json.dumps({"model": "m", "items": items, "strategies": {strategy: {"outputs": {
        k: [{"seed": 0, "text": t, "seconds": 0.1, "valid": True}] for k, t in texts.items()}}}}), encoding="utf-8")
    return path


def test_sheet_hides_systems_and_score_counts(tmp_path, capsys):
    keys = [f"t{i}" for i in range(1, 21)] + ["p1", "p3"]
    old = results(tmp_path / "old.json", {k: "🌱 ➡️ 🌳" for k in keys})
    new = results(tmp_path / "new.json", {k: "☀️ ➕ 💧\n➡️ 🍬" for k in keys})
    assert blind.main(["sheet", str(old), str(new), "--n", "6", "--seed", "3", "--name", "x",
                       "--out", str(tmp_path)]) == 0
    sheet = (tmp_path / "blind-x-sheet.md").read_text(encoding="utf-8")
    key = json.loads((tmp_path / "blind-x-key.json").read_text(encoding="utf-8"))
    assert len(key["topics"]) == 6
    assert all(t["key"].startswith("t") and int(t["key"][1:]) % 2 for t in key["topics"])  # held-out topics
    assert {(t["A"], t["B"]) for t in key["topics"]} == {("old", "new"), ("new", "old")}  # both orders occur
    assert "old" not in sheet and "new" not in sheet.replace("(no answer)", "")
    assert "Seedling, leads to, deciduous tree" in sheet  # the gloss
    # rate: new gets 2, old gets 0
    rows = list(csv.DictReader(open(tmp_path / "blind-x-ratings.csv", encoding="utf-8")))
    for r, t in zip(rows, key["topics"]):
        r["A"], r["B"] = ("0", "2") if t["A"] == "old" else ("2", "0")
    with open(tmp_path / "r.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["no", "topic", "A", "B"])
        w.writeheader()
        w.writerows(rows)
    t = blind.tally(key, rows)
    assert t["old"] == {"0": 6, "1": 0, "2": 0, "n": 6, "mean": 0.0}
    assert t["new"]["2"] == 6 and t["wins"] == {"new": 6}
    assert blind.main(["score", str(tmp_path / "blind-x-key.json"), str(tmp_path / "r.csv")]) == 0
    assert "new better 6" in capsys.readouterr().out


def test_same_seed_same_sheet(tmp_path):
    keys = [f"t{i}" for i in range(1, 21)]
    old = results(tmp_path / "old.json", {k: "🌱" for k in keys})
    new = results(tmp_path / "new.json", {k: "🌳" for k in keys})
    for name in ("a", "b"):
        blind.main(["sheet", str(old), str(new), "--n", "5", "--name", name, "--out", str(tmp_path)])
    assert (tmp_path / "blind-a-key.json").read_text() == (tmp_path / "blind-b-key.json").read_text()


def test_too_few_held_out_topics_and_bad_ratings(tmp_path):
    old = results(tmp_path / "old.json", {"t1": "🌱", "t2": "🌱"})
    with pytest.raises(SystemExit, match="--half held-out"):
        blind.main(["sheet", str(old), str(old), "--n", "2", "--out", str(tmp_path)])
    key = {"topics": [{"no": 1, "A": "old", "B": "new"}]}
    with pytest.raises(SystemExit, match="0, 1 or 2"):
        blind.tally(key, [{"no": "1", "A": "3", "B": "1"}])
