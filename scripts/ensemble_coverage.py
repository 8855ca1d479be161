"""Analysis, not a benchmark: label arithmetic on the leaderboard's resolved matrix, no
execution (the real ensembling code on real predictions is exercised by
tests/integration/test_swebench_real.py).

For ensembles of 2-5 systems (the four the CodeMonkeys paper ensembled, in order, and the
greedy max-coverage choice), prints the oracle coverage (some member resolved the
instance) and the expected resolve rate of picking a member's prediction at random, next to
the naive baseline (the best single member). Last line: one JSON object.

    uv run python scripts/ensemble_coverage.py [path/to/resolved_matrix.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codemonkeys.ensemble import (
    expected_random_pick_rate,
    greedy_systems,
    load_resolved_matrix,
    oracle_coverage,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "leaderboard" / "resolved_matrix.json"
PAPER_FOUR = [
    "20250110_blackboxai_agent_v1.1",
    "20241221_codestory_midwit_claude-3-5-sonnet_swe-search",
    "20250110_learn_by_interact_claude3.5",
    "20241213_devlo",
]


def row(label: str, systems: list[str], ids: list[str], resolved: dict[str, set[str]]) -> dict:
    best = max(len(resolved[s] & set(ids)) for s in systems) / len(ids)
    cov = oracle_coverage(resolved, systems, ids)
    rnd = expected_random_pick_rate(resolved, systems, ids)
    return {
        "ensemble": label,
        "k": len(systems),
        "systems": systems,
        "coverage": round(cov, 4),
        "random_pick": round(rnd, 4),
        "best_single": round(best, 4),
        "coverage_over_best_single": round(cov / best, 4) if best else None,
    }


def main(path: Path) -> dict:
    ids, resolved = load_resolved_matrix(path)
    paper = [s for s in PAPER_FOUR if s in resolved]
    if len(paper) != len(PAPER_FOUR):
        print(
            f"warning: missing paper systems: {sorted(set(PAPER_FOUR) - set(paper))}",
            file=sys.stderr,
        )
    rows = [row("paper", paper[:k], ids, resolved) for k in range(2, len(paper) + 1)]
    # a fifth member for the paper's ensemble: the greedy best addition to its four
    if len(paper) == 4:
        rows.append(
            row("paper+greedy", greedy_systems(resolved, ids, 5, start=paper), ids, resolved)
        )
    rows += [row("greedy", greedy_systems(resolved, ids, k), ids, resolved) for k in range(2, 6)]

    print(f"{len(ids)} instances, {len(resolved)} systems ({path})")
    print(
        f"{'ensemble':<13} {'k':>2} {'coverage':>9} {'random':>8} {'best-1':>8} {'cov/best':>9}  added"
    )
    for r in rows:
        print(
            f"{r['ensemble']:<13} {r['k']:>2} {r['coverage']:>9.1%} {r['random_pick']:>8.1%} "
            f"{r['best_single']:>8.1%} {r['coverage_over_best_single']:>9.3f}  {r['systems'][-1]}"
        )
    four = next((r for r in rows if r["ensemble"] == "paper" and r["k"] == 4), None)
    summary = {
        "instances": len(ids),
        "systems": len(resolved),
        "paper4_coverage": four["coverage"] if four else None,
        "paper4_random_pick": four["random_pick"] if four else None,
        "paper4_best_single": four["best_single"] if four else None,
        "paper4_coverage_over_best_single": four["coverage_over_best_single"] if four else None,
        "paper_reported_coverage_with_own_run": 0.808,
        **{f"greedy{r['k']}_coverage": r["coverage"] for r in rows if r["ensemble"] == "greedy"},
        **{
            f"greedy{r['k']}_random_pick": r["random_pick"]
            for r in rows
            if r["ensemble"] == "greedy"
        },
        **{f"paper{r['k']}_coverage": r["coverage"] for r in rows if r["ensemble"] == "paper"},
        **{
            f"paper{r['k']}_random_pick": r["random_pick"] for r in rows if r["ensemble"] == "paper"
        },
        "paper_plus_greedy5_coverage": next(
            (r["coverage"] for r in rows if r["ensemble"] == "paper+greedy"), None
        ),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
