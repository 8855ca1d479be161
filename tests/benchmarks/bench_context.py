"""Benchmark: enumerate a large tree and count its tokens, as the context stage does.

Tree: the project's own virtualenv site-packages (a real tree of ~12k files, ~10k of them
Python, plus .so/.pyi/data files), or ``--tree PATH``. Compared in the same run with a
naive baseline: read and decode every file at once, no name-based pre-filter, and count
tokens with a pure-Python pre-tokeniser loop (a GPT-style split, one cost per piece).

Each side runs in its own child process (so neither warms the other's page cache more than
the first run does, and peak memory is that process's max RSS).

Figures: files_per_s (tracked paths processed per second), peak_mb (max RSS of the child),
relevance_prompt_tokens (what the relevance scan would
send for one problem: per file the system prompt with a real SWE-bench issue plus the file
prompt, files capped at relevance_max_file_tokens), and the baseline ratios.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import site
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.config import ContextConfig  # noqa: E402
from codemonkeys.context.files import enumerate_files  # noqa: E402
from codemonkeys.context.tokens import count_tokens  # noqa: E402
from codemonkeys.prompts import render  # noqa: E402

_PRETOKEN = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
)


def list_tree(tree: Path) -> list[str]:
    return sorted(
        str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file() and not p.is_symlink()
    )


def naive(tree: Path, paths: list[str]) -> tuple[int, int]:
    """Read every file under the size limit that has no NUL byte, keep them all in memory,
    count piece by piece in Python."""
    texts = []
    limit = ContextConfig().max_file_bytes
    for p in paths:
        try:
            data = (tree / p).read_bytes()
        except OSError:
            continue
        if len(data) > limit or b"\x00" in data[:8192]:
            continue
        texts.append(data.decode("utf-8", errors="replace"))
    total = 0
    for t in texts:
        for m in _PRETOKEN.finditer(t):
            total += 1 + len(m.group()) // 8
    return len(texts), total


def ours(tree: Path, paths: list[str], cfg: ContextConfig):
    return enumerate_files(tree, paths, cfg)


def run_phase(phase: str, tree: Path) -> dict:
    """Run one side in a child process; returns its seconds, max RSS and result."""
    proc = subprocess.run(
        [sys.executable, __file__, "--tree", str(tree), "--phase", phase],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(phase: str, tree: Path) -> None:
    paths = list_tree(tree)
    start = time.perf_counter()
    if phase == "ours":
        enum = enumerate_files(tree, paths, ContextConfig())
        result = {
            "files": enum.model_dump(mode="json")["files"],
            "excluded": enum.excluded_counts(),
        }
    else:
        n, tokens = naive(tree, paths)
        result = {"files_read": n, "tokens": tokens}
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "paths": len(paths), **result}))


def sample_issue() -> str:
    data = ROOT.parent / "shared" / "data" / "swe-bench-verified.partial.jsonl"
    if data.is_file():
        with data.open() as f:
            return json.loads(f.readline())["problem_statement"]
    return "Calling foo() with an empty list raises IndexError instead of returning None."


def main() -> None:
    ap = argparse.ArgumentParser()
    default = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    ap.add_argument("--tree", type=Path, default=default)
    ap.add_argument("--phase", choices=["ours", "naive"], default=None)
    args = ap.parse_args()
    tree = args.tree.resolve()
    if args.phase:
        child(args.phase, tree)
        return
    cfg = ContextConfig()
    o = run_phase("ours", tree)
    n = run_phase("naive", tree)

    issue = sample_issue()
    system_tokens = count_tokens(render("relevance/system", issue=issue))
    user_overhead = count_tokens(render("relevance/user", path="x/y.py", content="", note=""))
    limit = cfg.relevance_max_file_tokens
    distinct = {f["sha256"]: f["tokens"] for f in o["files"]}
    prompt_tokens = sum(system_tokens + user_overhead + min(t, limit) for t in distinct.values())

    result = {
        "tree": str(tree),
        "paths": o["paths"],
        "source_files": len(o["files"]),
        "distinct_contents": len(distinct),
        "excluded": o["excluded"],
        "source_tokens": sum(f["tokens"] for f in o["files"]),
        "seconds": round(o["seconds"], 2),
        "files_per_s": round(o["paths"] / o["seconds"], 1),
        "peak_mb": round(o["peak_mb"], 1),
        "relevance_prompt_tokens": prompt_tokens,
        "relevance_calls": len(distinct),
        "baseline_seconds": round(n["seconds"], 2),
        "baseline_files_per_s": round(n["paths"] / n["seconds"], 1),
        "baseline_peak_mb": round(n["peak_mb"], 1),
        "baseline_files_read": n["files_read"],
        "baseline_tokens": n["tokens"],
        "speedup_vs_baseline": round(n["seconds"] / o["seconds"], 2),
        "memory_ratio_vs_baseline": round(o["peak_mb"] / n["peak_mb"], 3),
    }
    for k, v in result.items():
        if k != "excluded":
            print(f"{k:28s} {v}")
    print(f"{'excluded':28s} {result['excluded']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
