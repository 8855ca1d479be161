"""Analysis, not a benchmark: validate the coverage forecast on graded runs. For each run
directory (after ``codemonkeys swebench evaluate``), fit the power law on the pass@k curve
for k <= ``--fit`` and compare its forecast at the run's samples per problem with the
measured pass@N. Last line: one JSON object.

    uv run python scripts/forecast_check.py RUN [RUN ...] [--fit 5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from codemonkeys.analysis.forecast import forecast_coverage
from codemonkeys.analysis.passk import pass_at_k_curve
from codemonkeys.analysis.runview import problem_outcomes


def check(run: Path, fit: int) -> dict:
    problems, unlabelled = problem_outcomes(run)
    finals = [[t.at(10**9)[1] for t in p.trajectories] for p in problems]
    samples = [(len(f), sum(bool(x) for x in f)) for f in finals if None not in f]
    n = max((s[0] for s in samples), default=0)
    out: dict = {"run": str(run), "problems": len(samples), "unlabelled": unlabelled, "n": n}
    if n <= fit:
        return {**out, "error": f"needs more than {fit} samples per problem"}
    curve = pass_at_k_curve(samples, n)
    [f] = forecast_coverage(samples, [n], fit_k_max=fit) or [None]
    out.update(curve=curve, measured=curve[-1])
    if f is not None:
        out.update(forecast=f.coverage, low=f.low, high=f.high, error=f.coverage - curve[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--fit", type=int, default=5)
    args = ap.parse_args()
    results = [check(r, args.fit) for r in args.runs]
    for r in results:
        if "forecast" in r:
            print(f"{r['run']}: {r['problems']} problems, pass@{r['n']} measured "
                  f"{r['measured']:.3f}, forecast from k<={args.fit}: {r['forecast']:.3f} "
                  f"(error {r['error']:+.3f})")  # fmt: skip
        else:
            print(f"{r['run']}: {r.get('error', 'no fit (flat or too few points)')}")
    print(json.dumps({"fit_k_max": args.fit, "runs": results}))


if __name__ == "__main__":
    main()
