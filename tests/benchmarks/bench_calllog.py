"""Call log start-up at scale: a synthetic 2-million-call ``calls.jsonl`` (a full SWE-bench
Verified run makes about that many relevance calls), opened the old way and the new way.

- old: the loader as it was (every record parsed into a dict held in memory by request
  hash, then the whole log read again to replay the spend against the caps);
- new: ``CallLog`` through its on-disk index (``calls.index.sqlite``). ``index_build_s`` is
  the one-time build on the first open of a log without an index; ``startup_s_new`` is
  every later start (the index is current, or catches up with the few lines a killed
  invocation appended).

Each start-up runs in a fresh subprocess so its RSS (``ru_maxrss``) is honest; each also
looks up a few thousand calls, to show the answers come back. Also measured: the prompt log
(``prompts.jsonl.gz``), old (gzip level 9 through ``gzip.open`` under the file lock) vs new
(a fast-level member compressed before the lock), for 1,200 calls of a realistic prompt;
and finding one problem's lines (what a Ray driver ships with a retried problem), by a scan
of the log as before against the index.

    uv run python tests/benchmarks/bench_calllog.py [--calls 2000000]

Targets: startup_s_new < 2 and rss_mb_new < 300. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LOOKUPS = 2000


def write_log(path: Path, n: int, seed: int = 0) -> None:
    """``n`` records shaped like relevance calls (answer text ~300 characters); with
    another ``seed`` the request hashes differ."""
    rng = random.Random(seed)
    words = [
        "the",
        "file",
        "defines",
        "helpers",
        "for",
        "parsing",
        "dates",
        "and",
        "is",
        "not",
        "relevant",
        "to",
        "the",
        "issue",
    ]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            h = hashlib.sha256(
                f"req-{i}".encode() if seed == 0 else f"req-{seed}-{i}".encode()
            ).hexdigest()
            text = " ".join(rng.choice(words) for _ in range(50)) + "\nDECISION: NOT RELEVANT"
            rec = {
                "ts": 1.7e9 + i,
                "problem": f"sympy__sympy-{i // 1000}",
                "stage": "relevance",
                "model": "openai/qwen2.5-coder-32b",
                "temperature": 0.0,
                "max_tokens": 1024,
                "key": "",
                "request_hash": h,
                "replay_hash": hashlib.sha256(f"replay-{i}".encode()).hexdigest(),
                "usage": {
                    "input_tokens": 900 + i % 500,
                    "output_tokens": 80,
                    "cache_write_tokens": 0,
                    "cache_read_tokens": 0,
                },
                "cost_usd": 0.0002,
                "seconds": 0.4,
                "text": text,
            }
            f.write(json.dumps(rec) + "\n")


OLD_LOADER = """
import json, sys
from collections import defaultdict
from pathlib import Path
from codemonkeys.store import read_jsonl

def old_open(run_dir):
    # codemonkeys.llm.recording.CallLog.__init__ + replay_costs before the index
    path = run_dir / "calls.jsonl"
    by_hash = {}
    for rec in read_jsonl(path):
        if "request_hash" in rec and "text" in rec and not rec.get("error"):
            by_hash.setdefault(rec["request_hash"], rec)
    spend = defaultdict(float)
    for rec in list(read_jsonl(path)):
        spend[(rec.get("problem", ""), rec.get("stage", ""))] += float(rec.get("cost_usd", 0.0))
    return by_hash.get, sum(spend.values())
"""

NEW_LOADER = """
from codemonkeys.llm.recording import CallLog, CostTracker, replay_costs
from codemonkeys.store import RunStore

def new_open(run_dir):
    calls = CallLog(RunStore(run_dir))
    costs = CostTracker()
    replay_costs(calls, costs)
    return calls.lookup, costs.total
"""

CHILD = """
import hashlib, json, resource, sys, time
sys.path.insert(0, {root!r})
{loader}
from pathlib import Path
run_dir = Path({run_dir!r})
t0 = time.perf_counter()
lookup, total = {fn}(run_dir)
startup = time.perf_counter() - t0
t1 = time.perf_counter()
found = 0
for i in range(0, {n}, max(1, {n} // {lookups})):
    rec = lookup(hashlib.sha256(f"req-{{i}}".encode()).hexdigest())
    found += rec is not None and rec["text"].endswith("NOT RELEVANT")
lookup_s = time.perf_counter() - t1
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"startup_s": startup, "rss_mb": rss_mb, "found": found,
                  "lookup_us": lookup_s / max(1, found) * 1e6, "spend": total}}))
"""


def measure(run_dir: Path, loader: str, fn: str, n: int) -> dict:
    code = CHILD.format(
        root=str(ROOT), loader=loader, run_dir=str(run_dir), fn=fn, n=n, lookups=LOOKUPS
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{fn} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def prompt_records(calls: int) -> list[dict]:
    """One problem's prompts: relevance prompts of ~20 KB (the issue and one file) and, one
    call in twelve, a generation prompt carrying a ~400 KB context. Real source text (this
    repository's), so the compressor sees code, not repetition."""
    code = "".join(p.read_text() for p in sorted((ROOT / "codemonkeys").rglob("*.py")))
    records = []
    for i in range(calls):
        size = 400_000 if i % 12 == 11 else 20_000
        start = (i * 7919) % max(1, len(code) - size)
        records.append(
            {
                "request_hash": f"h{i}",
                "stage": "relevance",
                "messages": [code[start : start + size]],
            }
        )
    return records


def bench_prompts(tmp: Path, calls: int = 1200) -> dict[str, float]:
    """Thread CPU seconds for ``calls`` prompt appends: old (level 9 under the lock) and new."""
    from codemonkeys.store import RunStore

    records = prompt_records(calls)
    lock = threading.Lock()
    old_path = tmp / "old-prompts.jsonl.gz"
    t0 = time.thread_time()
    for record in records:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with lock, gzip.open(old_path, "ab") as f:  # the old append_prompt
            f.write(line)
    old = time.thread_time() - t0
    store = RunStore(tmp / "new")
    t0 = time.thread_time()
    for record in records:
        store.append_prompt("p", record)
    new = time.thread_time() - t0
    assert len(store.read_prompts("p")) == calls
    return {
        "prompt_calls": calls,
        "prompts_thread_s_old": round(old, 2),
        "prompts_thread_s_new": round(new, 2),
        "prompts_mb_old": round(old_path.stat().st_size / 1e6, 2),
        "prompts_mb_new": round(
            (store.problem_dir("p") / "prompts.jsonl.gz").stat().st_size / 1e6, 2
        ),
    }


def seed_old(log_path: Path, problem: str) -> bytes:
    """One problem's lines as the Ray driver found them before the index listed them
    (``distributed.driver.CallSeeds`` until 2026-11-30: a scan of the whole log, reading
    each line's ``problem``, at every driver start)."""
    key, out = b'"problem": ', []
    with log_path.open("rb") as f:
        for line in f:
            at = line.find(key)
            if at >= 0 and line.endswith(b"\n"):
                value, _ = json.JSONDecoder().raw_decode(line[at + len(key) :].decode())
                if value == problem:
                    out.append(line)
    return b"".join(out)


def bench_seeding(run_dir: Path) -> dict[str, float]:
    """Seconds to find one problem's lines (what a Ray driver ships with a retried
    problem): the old scan against the index's ``problem_lines``; the same bytes."""
    from codemonkeys.llm.callindex import CallIndex

    problem = "sympy__sympy-7"
    t0 = time.perf_counter()
    old = seed_old(run_dir / "calls.jsonl", problem)
    scan_s = time.perf_counter() - t0
    index = CallIndex(run_dir / "calls.jsonl")
    t1 = time.perf_counter()
    new = index.problem_lines(problem)
    index_s = time.perf_counter() - t1
    index.close()
    assert old == new and old.count(b"\n") == 1000, (len(old), len(new))
    return {"seed_problem_s_scan": round(scan_s, 2), "seed_problem_s_index": round(index_s, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2_000_000)
    args = ap.parse_args()
    n = args.calls
    with tempfile.TemporaryDirectory(prefix="bench-calllog-") as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        t0 = time.perf_counter()
        write_log(run_dir / "calls.jsonl", n)
        log_mb = (run_dir / "calls.jsonl").stat().st_size / 1e6
        print(f"wrote {n:,} calls ({log_mb:.0f} MB) in {time.perf_counter() - t0:.0f}s", flush=True)

        old = measure(run_dir, OLD_LOADER, "old_open", n)
        print(f"old: {old}", flush=True)
        build = measure(run_dir, NEW_LOADER, "new_open", n)  # no index yet: builds it
        print(f"new, first open (builds the index): {build}", flush=True)
        new = measure(run_dir, NEW_LOADER, "new_open", n)
        print(f"new: {new}", flush=True)
        # a killed invocation appended 1,000 calls the index has not seen
        write_log(run_dir / "extra.jsonl", 1000, seed=1)
        with (run_dir / "calls.jsonl").open("a") as f:
            f.write((run_dir / "extra.jsonl").read_text())
        (run_dir / "extra.jsonl").unlink()
        catch_up = measure(run_dir, NEW_LOADER, "new_open", n)
        print(f"new, catching up 1,000 appended lines: {catch_up}", flush=True)
        assert old["found"] == new["found"] > 0, (old, new)
        assert abs(old["spend"] - new["spend"]) < 1e-6 * max(1.0, old["spend"]), (old, new)
        index_mb = (run_dir / "calls.index.sqlite").stat().st_size / 1e6
        seeding = bench_seeding(run_dir)
        print(f"seeding one problem: {seeding}", flush=True)
        prompts = bench_prompts(Path(tmp))
    figures = {
        "calls": n,
        "log_mb": round(log_mb),
        "index_mb": round(index_mb),
        "startup_s_old": round(old["startup_s"], 2),
        "startup_s_new": round(new["startup_s"], 3),
        "startup_s_new_catch_up_1000": round(catch_up["startup_s"], 3),
        "index_build_s": round(build["startup_s"], 1),
        "rss_mb_old": round(old["rss_mb"]),
        "rss_mb_new": round(new["rss_mb"]),
        "rss_mb_index_build": round(build["rss_mb"]),
        "lookup_us_old": round(old["lookup_us"], 1),
        "lookup_us_new": round(new["lookup_us"], 1),
        **seeding,
        **prompts,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
