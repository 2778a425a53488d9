"""bench/blind.py on two made-up results files (no model): sheet, key, ratings, counts. The script
runs as a reader runs it, a program of its own: the tests do not import bench/."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

BLIND = Path(__file__).resolve().parent.parent / "bench" / "blind.py"


def blind(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BLIND), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def results(path: Path, texts: dict[str, str], strategy="default") -> Path:
    items = {k: {"set": "annotators", "topic": f"topic {k}", "kind": "topic" if k.startswith("t") else "phrase",
                 "half": "held-out" if int(k[1:]) % 2 else "tune"} for k in texts}
    path.write_text(json.dumps({"model": "m", "items": items, "strategies": {strategy: {"outputs": {
        k: [{"seed": 0, "text": t, "seconds": 0.1, "valid": True}] for k, t in texts.items()}}}}), encoding="utf-8")
    return path


def test_sheet_hides_systems_and_score_counts(tmp_path):
    keys = [f"t{i}" for i in range(1, 21)] + ["p1", "p3"]
    old = results(tmp_path / "old.json", {k: "🌱 ➡️ 🌳" for k in keys})
    new = results(tmp_path / "new.json", {k: "☀️ ➕ 💧\n➡️ 🍬" for k in keys})
    assert blind("sheet", old, new, "--n", "6", "--seed", "3", "--name", "x", "--out", tmp_path).returncode == 0
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
    scored = blind("score", tmp_path / "blind-x-key.json", tmp_path / "r.csv")
    assert scored.returncode == 0, scored.stderr
    assert "| old | m / default | 6 | 0 | 0 | 0.00 |" in scored.stdout
    assert "| new | m / default | 0 | 0 | 6 | 2.00 |" in scored.stdout
    assert "per topic: new better 6, old better 0, tie 0" in scored.stdout


def test_same_seed_same_sheet(tmp_path):
    keys = [f"t{i}" for i in range(1, 21)]
    old = results(tmp_path / "old.json", {k: "🌱" for k in keys})
    new = results(tmp_path / "new.json", {k: "🌳" for k in keys})
    for name in ("a", "b"):
        assert blind("sheet", old, new, "--n", "5", "--name", name, "--out", tmp_path).returncode == 0
    assert (tmp_path / "blind-a-key.json").read_text() == (tmp_path / "blind-b-key.json").read_text()


def test_too_few_held_out_topics_and_bad_ratings(tmp_path):
    old = results(tmp_path / "old.json", {"t1": "🌱", "t2": "🌱"})
    too_few = blind("sheet", old, old, "--n", "2", "--out", tmp_path)
    assert too_few.returncode == 1 and "--half held-out" in too_few.stderr
    (tmp_path / "key.json").write_text(json.dumps({"topics": [{"no": 1, "A": "old", "B": "new"}]}), encoding="utf-8")
    (tmp_path / "bad.csv").write_text("no,topic,A,B\n1,x,3,1\n", encoding="utf-8")
    bad = blind("score", tmp_path / "key.json", tmp_path / "bad.csv")
    assert bad.returncode == 1 and "0, 1 or 2" in bad.stderr
