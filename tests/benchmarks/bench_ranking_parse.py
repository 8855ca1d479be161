"""Ranking parsing on huge answers: the quadratic de-duplication it replaced (baseline, run
here for real) against ``parse_ranking`` now, on answers listing N invented paths.

    uv run python tests/benchmarks/bench_ranking_parse.py

The baseline runs only up to 40k paths (200k took 382 s); the figures show the scaling:
doubling N quadruples the baseline's time and doubles the new one's. The last line is JSON.
"""

from __future__ import annotations

import json
import time

from codemonkeys.context import ranking

KNOWN = {f"src/mod{i}.py" for i in range(50)}


def quadratic_split(items: list[str], known: set[str]) -> tuple[list[str], list[str]]:
    """The de-duplication before the fix: membership tests on growing lists."""
    ranking_: list[str] = []
    invented: list[str] = []
    for p in items:
        if p in known:
            if p not in ranking_:
                ranking_.append(p)
        elif p not in invented:
            invented.append(p)
    return ranking_, invented


def answer(n: int) -> str:
    paths = [f"src/invented/p{i}.py" for i in range(n)] + sorted(KNOWN)
    return "```json\n" + json.dumps(paths) + "\n```"


def seconds(n: int) -> float:
    text = answer(n)
    t0 = time.perf_counter()
    parsed = ranking.parse_ranking(text, KNOWN)
    elapsed = time.perf_counter() - t0
    assert parsed is not None and len(parsed[1]) == n
    return elapsed


def main() -> None:
    figures: dict[str, float] = {}
    linear_split = ranking._split
    try:
        ranking._split = quadratic_split  # the baseline, for real
        for n in (10_000, 20_000, 40_000):
            figures[f"baseline_s_{n // 1000}k"] = round(seconds(n), 3)
    finally:
        ranking._split = linear_split
    for n in (10_000, 20_000, 40_000, 200_000):
        figures[f"new_s_{n // 1000}k"] = round(seconds(n), 3)
    figures["speedup_40k"] = round(figures["baseline_s_40k"] / figures["new_s_40k"], 1)
    for k, v in figures.items():
        print(f"{k:18s} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
