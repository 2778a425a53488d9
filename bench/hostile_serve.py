"""``emogram serve`` under hostile clients, timed: what ``tests/test_serve_hostile.py`` holds without
asserting a speed, measured here.

One real server (the default model); first each well-behaved command alone (its solo time, served),
then 16 of them at once beside 50 silent connections and a client that drips one byte a second.
For each command: its wall time, whether the server answered it or it answered itself, whether its
answer is the one this process computes itself; and the server's memory before and after.

    python bench/hostile_serve.py                  # prints a table
    python bench/hostile_serve.py --out bench/results/hostile-serve-DATE.md
    python bench/hostile_serve.py --distinct --cold  # 16 different topics, nothing kept from solo runs

The default barrage is the test suite's: four commands, four times each. The server keeps the state
of the bank entries a recent topic read (16 prompt prefixes), so a topic asked again skips them; with
``--distinct`` every command is another topic, and with ``--cold`` the server is restarted before each
barrage and a command's solo time is its first, cold run: nothing any command reads was kept.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SHORT = ["--lines", "1", "--steps", "1", "--emoji-per-group", "1", "--no-stream", "-v"]
TOPICS = [("tides", 1), ("bees", 2), ("volcanoes", 3), ("how the heart works", 4)]
DISTINCT = [("tides", 1), ("bees", 2), ("volcanoes", 3), ("how the heart works", 4), ("how rainbows form", 5),
            ("why the sky is blue", 6), ("how a fridge keeps food cold", 7), ("how vaccines work", 8),
            ("how bread rises", 9), ("how a bicycle stays upright", 10), ("why leaves fall in autumn", 11),
            ("how earthquakes happen", 12), ("how the internet sends a message", 13), ("how a rocket reaches orbit", 14),
            ("how coral reefs grow", 15), ("why we dream", 16)]


def main(argv: list[str] | None = None) -> int:
    from emogram import server
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--silent", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3, help="barrages, one after another (default 3)")
    p.add_argument("--distinct", action="store_true", help="16 different topics instead of 4 asked 4 times")
    p.add_argument("--cold", action="store_true",
                   help="restart the server before each barrage; solo time = a command's first, cold run")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    topics = DISTINCT[:args.clients] if args.distinct else TOPICS
    folder = Path(tempfile.mkdtemp(prefix="emogram-hostile-"))
    folder.chmod(0o700)
    neutral = Path(tempfile.mkdtemp(prefix="emogram-neutral-"))
    env = {**{k: v for k, v in os.environ.items() if k != server.ENV_SERVE}, server.ENV_SERVE: str(folder)}
    prompts = tempfile.mkdtemp(prefix="emogram-prompts-")
    env.setdefault("EMOGRAM_PROMPT_CACHE", prompts)

    def command(topic: str, seed: int, where: dict = env) -> tuple[float, bool, int, str]:
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "emogram", topic, "--seed", str(seed), *SHORT], env=where,
                           cwd=neutral, capture_output=True, text=True, timeout=600)
        return time.perf_counter() - start, "served by:" in r.stderr, r.returncode, r.stdout

    def start_server() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "emogram", "serve", "--idle", "10"], env=env, cwd=neutral,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = proc.stderr.readline()
        assert "listening on" in line, line
        return proc

    def stop_server(proc: subprocess.Popen) -> None:
        subprocess.run([sys.executable, "-m", "emogram", "serve", "--stop"], env=env, cwd=neutral,
                       capture_output=True, timeout=60)
        proc.wait(timeout=60)

    proc = start_server()

    def rss() -> float:
        for row in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
        return float("nan")

    try:
        own = {job: command(*job, where={**env, server.ENV_SERVE: "0"})[3] for job in topics}  # in its own process
        solo = {}
        for job in topics:  # each alone, served; the faster of two (--cold: the first)
            runs = [command(*job) for _ in range(1 if args.cold else 2)]
            assert all(r[1] and r[2] == 0 and r[3] == own[job] for r in runs), runs
            solo[job] = min(r[0] for r in runs)
        before = rss()
        rounds, alive = [], True
        for _ in range(args.rounds):
            if args.cold:  # a fresh server: no prompt prefix kept from the solo runs or the last round
                alive = alive and proc.poll() is None
                stop_server(proc)
                proc = start_server()
            rounds.append(barrage_round(args, folder, neutral, env, command, solo, own, server, topics))
        after = rss()
        alive = alive and proc.poll() is None
    finally:
        stop_server(proc)
    uptime = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    lines = [f"# emogram serve under hostile clients ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
             f"load average {' '.join(uptime)} at the end)", "",
             f"Barrage: {'16 different topics' if args.distinct else 'four topics, four times each'}"
             f"{'; the server restarted before each barrage, solo times cold' if args.cold else ''}.", "",
             "Solo served times (each command alone, " + ("its first run" if args.cold else "the faster of two")
             + ", whole process): "
             + ", ".join(f"{j[0]} {t:.2f} s" for j, t in solo.items()), ""]
    for k, r in enumerate(rounds, 1):
        lines.append(f"Round {k}: {r['summary']}")
        lines.append("")
    lines += [f"Server alive after every round: {alive}; RSS {before:.0f} MB before the first round, "
              f"{after:.0f} MB after the last.", "", "The last round, command by command:", "",
              "| # | command | wall | over solo | by | correct |", "|---:|---|---:|---:|---|---|", *rounds[-1]["rows"]]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


def barrage_round(args, folder, neutral, env, command, solo, own, server, topics) -> dict:
    silent = []
    for _ in range(args.silent):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(folder / server.SOCKET_NAME))
        silent.append(conn)
    dripped = {"sent": 0, "cut_after": None}

    def drip() -> None:
        body = json.dumps({"identity": server.identity(), "settings": server.settings(env), "argv": ["tides"],
                           "cwd": str(neutral), "tty": [False, False]}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(folder / server.SOCKET_NAME))
            conn.settimeout(1.0)
            start = time.perf_counter()
            try:
                for byte in body:
                    conn.sendall(bytes([byte]))
                    dripped["sent"] += 1
                    try:
                        conn.recv(4096)
                        break
                    except socket.timeout:
                        continue
            except OSError:
                pass
            dripped["cut_after"] = time.perf_counter() - start
    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    jobs = [topics[k % len(topics)] for k in range(args.clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: command(*job), jobs))
    barrage = time.perf_counter() - start
    dripper.join(timeout=30)
    declined = 0
    for conn in silent:
        conn.settimeout(30)
        try:
            declined += conn.recv(4096).startswith(b'{"declined"')
        except OSError:
            pass
        conn.close()
    rows = [f"| {k + 1} | {job[0]} (seed {job[1]}) | {t:.2f} s | {t - solo[job]:+.2f} s | "
            f"{'served' if served else 'itself'} | {'yes' if code == 0 and out == own[job] else 'NO'} |"
            for k, (job, (t, served, code, out)) in enumerate(zip(jobs, results))]
    worst = max(t - solo[job] for job, (t, *_rest) in zip(jobs, results))
    summary = (f"{args.clients} commands at once beside {args.silent} silent connections and a "
               f"one-byte-a-second drip: all done in {barrage:.1f} s; the slowest {worst:+.2f} s over its solo "
               f"time; {sum(r[1] for r in results)} served, {sum(not r[1] for r in results)} answered themselves; "
               f"{sum(r[2] == 0 and r[3] == own[j] for j, r in zip(jobs, results))}/{len(jobs)} correct; "
               f"silent connections declined {declined}/{args.silent}; the drip cut after "
               f"{dripped['cut_after']:.1f} s, {dripped['sent']} bytes into its request.")
    print(summary, flush=True)
    return {"summary": summary, "rows": rows}


if __name__ == "__main__":
    sys.exit(main())
