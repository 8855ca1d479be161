"""Benchmark: enumerate a large tree and count its tokens, as the context stage does.

Tree: the project's own virtualenv site-packages (a real tree of ~12k files, ~10k of them
Python, plus .so/.pyi/data files), or ``--tree PATH``. Compared in the same run with a
naive baseline that does the same work on the same files: it reads every tracked file into
memory first, then applies the same exclusion rules (path, size, binary/generated content,
empty), hashes and counts tokens with the same functions. Ours decides on the path and the
size before reading, and keeps one file in memory at a time. Both must produce identical
records (path, size, sha256, tokens): the bench fails otherwise.

Each side runs in its own child process (so neither warms the other's page cache more than
the first run does, and peak memory is that process's max RSS); the order alternates over
--repeat rounds and the median is reported.

Figures: files_per_s (tracked paths processed per second), peak_mb (max RSS of the child),
relevance_prompt_tokens (what the relevance scan would send for one problem: per file the
system prompt with a real SWE-bench issue plus the file prompt, files capped at
relevance_max_file_tokens), and the baseline ratios. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import site
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.config import ContextConfig  # noqa: E402
from codemonkeys.context.files import (  # noqa: E402
    content_exclusion,
    content_hash,
    decode,
    enumerate_files,
    path_exclusion,
)
from codemonkeys.llm.tokens import count_tokens  # noqa: E402
from codemonkeys.prompts import templates_for  # noqa: E402

render = templates_for(None).render  # the packaged prompts


def list_tree(tree: Path) -> list[str]:
    return sorted(
        str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file() and not p.is_symlink()
    )


def naive(tree: Path, paths: list[str], cfg: ContextConfig) -> list[dict]:
    """The same records as enumerate_files, the straightforward way: read every tracked
    file into memory, then filter and count."""
    contents: dict[str, bytes | None] = {}
    for p in sorted(set(paths)):
        full = tree / p
        try:
            contents[p] = None if full.is_symlink() else full.read_bytes()
        except OSError:
            contents[p] = None
    records = []
    for path, data in contents.items():
        if data is None or path_exclusion(path, cfg) is not None:
            continue
        if len(data) > cfg.max_file_bytes or content_exclusion(data, cfg) is not None:
            continue
        if not data.strip():
            continue
        records.append(
            {
                "path": path,
                "size": len(data),
                "sha256": content_hash(data),
                "tokens": count_tokens(decode(data)),
            }
        )
    return records


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
        result = {"files": naive(tree, paths, ContextConfig())}
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
    ap.add_argument("--repeat", type=int, default=3, help="rounds, alternating the order")
    args = ap.parse_args()
    tree = args.tree.resolve()
    if args.phase:
        child(args.phase, tree)
        return
    cfg = ContextConfig()
    runs: dict[str, list[dict]] = {"ours": [], "naive": []}
    for i in range(args.repeat):
        order = ("ours", "naive") if i % 2 == 0 else ("naive", "ours")
        for phase in order:
            runs[phase].append(run_phase(phase, tree))
    o, n = runs["ours"][0], runs["naive"][0]
    if o["files"] != n["files"]:
        raise SystemExit("the two sides produced different records: not the same work")

    def median(phase: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[phase])

    issue = sample_issue()
    system_tokens = count_tokens(render("relevance/system", issue=issue))
    user_overhead = count_tokens(render("relevance/user", path="x/y.py", content="", note=""))
    limit = cfg.relevance_max_file_tokens
    distinct = {f["sha256"]: f["tokens"] for f in o["files"]}
    prompt_tokens = sum(system_tokens + user_overhead + min(t, limit) for t in distinct.values())

    seconds, base_seconds = median("ours", "seconds"), median("naive", "seconds")
    peak, base_peak = median("ours", "peak_mb"), median("naive", "peak_mb")
    result = {
        "tree": str(tree),
        "paths": o["paths"],
        "source_files": len(o["files"]),
        "distinct_contents": len(distinct),
        "excluded": o["excluded"],
        "source_tokens": sum(f["tokens"] for f in o["files"]),
        "rounds": args.repeat,
        "seconds": round(seconds, 2),
        "files_per_s": round(o["paths"] / seconds, 1),
        "peak_mb": round(peak, 1),
        "relevance_prompt_tokens": prompt_tokens,
        "relevance_calls": len(distinct),
        "baseline_same_records": True,
        "baseline_seconds": round(base_seconds, 2),
        "baseline_files_per_s": round(n["paths"] / base_seconds, 1),
        "baseline_peak_mb": round(base_peak, 1),
        "speedup_vs_baseline": round(base_seconds / seconds, 2),
        "memory_ratio_vs_baseline": round(peak / base_peak, 3),
    }
    for k, v in result.items():
        if k != "excluded":
            print(f"{k:28s} {v}")
    print(f"{'excluded':28s} {result['excluded']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
