"""Benchmark (a SIMULATION, no model and no sandbox): fixed N = 10 trajectories per problem
against adaptive sampling (waves + the product's stop rule, ``codemonkeys.generation.stopping``),
and the coverage forecast (``codemonkeys.analysis.forecast``) validated against measurement.

The population is real in one respect only: each SWE-bench Verified instance's chance that
one trajectory fixes it is the share of the 54 leaderboard systems in
``../shared/data/leaderboard/resolved_matrix.json`` that resolved it. Everything else is an
assumption (flags below, defaults in brackets):

- a trajectory ends with a patch with probability ``--patch-rate`` [0.9]; a right patch
  behaves like every other right patch (one behaviour cluster); a wrong one falls in one of
  ``--wrong-kinds`` [3] wrong behaviours, the first twice as likely as the next, and so on
  (wrong fixes are often the same wrong fix);
- each trajectory's final test reproduces the issue (fails on the original code) with
  probability ``--repro-rate`` [0.7]; a reproducing test passes on a right patch with
  probability ``--right-pass`` [0.6] and on each wrong behaviour with ``--wrong-pass`` [0.35]
  (decided once per test and behaviour; these two were chosen so that fixed-N majority
  vote picks a right patch in 76% of covered problems, the paper's 53.0 / 69.8); a test that does not reproduce votes for nothing
  (the strict vote rule);
- one temperature (widening the ladder changes nothing here, so ``widen`` acts as
  ``continue``).

Selection in the simulation is majority vote: the behaviour with the most strict votes among
the problem's candidates, ties averaged (the paper's majority-vote selection; the product's
selector model cannot be simulated). ``selection_accuracy`` is the share of covered problems
(some candidate right) where that pick is right.

Figures: ``cost_saved`` (share of the fixed run's trajectories the adaptive rule did not
run), ``coverage_lost`` (fixed coverage - adaptive coverage), ``selection_accuracy_delta``
(adaptive - fixed), and the forecast from k <= 5 of the fixed 10-sample run against the
measured pass@10, plus forecasts at 20 and 40 against simulated 20- and 40-sample runs.
Both arms use the same draws (the adaptive run is a prefix of the fixed one), averaged over
``--repeats`` [5] seeds.

Run: ``uv run python tests/benchmarks/bench_adaptive.py``. Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.analysis.forecast import forecast_coverage  # noqa: E402
from codemonkeys.analysis.passk import pass_at_k_curve  # noqa: E402
from codemonkeys.generation.records import ClusterEvidence, WaveEvidence  # noqa: E402
from codemonkeys.generation.stopping import StopRule, decide  # noqa: E402

MATRIX = ROOT.parent / "shared" / "data" / "leaderboard" / "resolved_matrix.json"


@dataclass
class Trajectory:
    behaviour: int | None
    """0 = right, 1.. = a wrong behaviour, None = no patch."""
    test_reproduces: bool


@dataclass
class Problem:
    p: float
    trajectories: list[Trajectory]
    passes: list[dict[int, bool]]
    """Per trajectory's test: does it pass on each behaviour (decided once per test)."""


def success_probabilities(path: Path) -> list[float]:
    data = json.loads(path.read_text())
    ids = data["instance_ids"]
    counts = dict.fromkeys(ids, 0)
    for system in data["systems"].values():
        for iid in system["resolved"]:
            if iid in counts:
                counts[iid] += 1
    return [counts[i] / len(data["systems"]) for i in ids]


def simulate_problem(p: float, n: int, args: argparse.Namespace, rng: random.Random) -> Problem:
    weights = [2.0 ** (-i) for i in range(args.wrong_kinds)]
    trajs, passes = [], []
    for _ in range(n):
        behaviour: int | None = None
        if rng.random() < args.patch_rate:
            behaviour = (
                0 if rng.random() < p else 1 + rng.choices(range(args.wrong_kinds), weights)[0]
            )
        repro = rng.random() < args.repro_rate
        trajs.append(Trajectory(behaviour, repro))
        passes.append(
            {
                b: repro and rng.random() < (args.right_pass if b == 0 else args.wrong_pass)
                for b in range(args.wrong_kinds + 1)
            }
        )
    return Problem(p, trajs, passes)


def votes(prob: Problem, upto: int) -> dict[int, int]:
    """Strict votes per behaviour present among the first ``upto`` trajectories, from their
    tests (a reproducing test that passes on the behaviour)."""
    present = {t.behaviour for t in prob.trajectories[:upto] if t.behaviour is not None}
    tests = range(upto)
    return {b: sum(prob.passes[j][b] for j in tests) for b in present}


def majority_correct(prob: Problem, upto: int) -> float:
    v = votes(prob, upto)
    if not v:
        return 0.0
    best = max(v.values())
    top = [b for b, n in v.items() if n == best]
    return sum(b == 0 for b in top) / len(top)


def evidence(prob: Problem, upto: int, limit: int) -> WaveEvidence:
    drawn = prob.trajectories[:upto]
    v = votes(prob, upto)
    sizes: dict[int, int] = {}
    for t in drawn:
        if t.behaviour is not None:
            sizes[t.behaviour] = sizes.get(t.behaviour, 0) + 1
    clusters = sorted(
        (ClusterEvidence(members=[str(b)], trajectories=s, votes=v[b]) for b, s in sizes.items()),
        key=lambda c: (-c.trajectories, -c.votes),
    )
    return WaveEvidence(
        started=upto,
        limit=limit,
        with_patch=sum(sizes.values()),
        tests=upto,
        reproducing_tests=sum(t.test_reproduces for t in drawn),
        clusters=clusters,
    )


def adaptive_samples(prob: Problem, limit: int, wave: int, rule: StopRule) -> int:
    """How many trajectories the adaptive rule runs (waves of ``wave``, up to ``limit``)."""
    started, w = 0, 0
    while True:
        started = min(started + wave, limit)
        if decide(w, evidence(prob, started, limit), rule).action == "stop":
            return started
        w += 1


def arm(problems: list[Problem], used: list[int]) -> dict[str, float]:
    covered = [
        any(t.behaviour == 0 for t in pr.trajectories[:n])
        for pr, n in zip(problems, used, strict=True)
    ]
    picks = [majority_correct(pr, n) for pr, n in zip(problems, used, strict=True)]
    sel = [pk for pk, c in zip(picks, covered, strict=True) if c]
    return {
        "trajectories": sum(used),
        "coverage": sum(covered) / len(problems),
        "resolve_rate": sum(picks) / len(problems),
        "selection_accuracy": sum(sel) / len(sel) if sel else 0.0,
    }


def forecast_check(probs: list[float], args: argparse.Namespace, rng: random.Random) -> dict:
    runs = [simulate_problem(p, 40, args, rng) for p in probs]
    counts = {
        k: [(k, sum(t.behaviour == 0 for t in r.trajectories[:k])) for r in runs]
        for k in (10, 20, 40)
    }
    fc = forecast_coverage(counts[10], [10, 20, 40], fit_k_max=5, bootstrap=args.bootstrap)
    measured = {k: pass_at_k_curve(counts[k], k)[-1] for k in (10, 20, 40)}
    return {
        f"k{f.k}": {
            "forecast": f.coverage,
            "low": f.low,
            "high": f.high,
            "measured": measured[f.k],
            "error": f.coverage - measured[f.k],
        }
        for f in fc
    }


def one_repeat(probs: list[float], args: argparse.Namespace, seed: int) -> dict:
    rng = random.Random(seed)
    problems = [simulate_problem(p, args.samples, args, rng) for p in probs]
    rule = StopRule(agreement=args.agreement, min_cluster=args.min_cluster)
    fixed = arm(problems, [args.samples] * len(problems))
    adaptive = arm(
        problems, [adaptive_samples(pr, args.samples, args.wave, rule) for pr in problems]
    )
    return {"fixed": fixed, "adaptive": adaptive, "forecast": forecast_check(probs, args, rng)}


def mean_of(dicts: list[dict]) -> dict:
    out: dict = {}
    for key, value in dicts[0].items():
        if isinstance(value, dict):
            out[key] = mean_of([d[key] for d in dicts])
        elif value is None or any(d[key] is None for d in dicts):
            out[key] = None
        else:
            out[key] = sum(d[key] for d in dicts) / len(dicts)
    return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--matrix", type=Path, default=MATRIX)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--wave", type=int, default=3)
    ap.add_argument("--agreement", type=float, default=0.6)
    ap.add_argument("--min-cluster", type=int, default=2)
    ap.add_argument("--patch-rate", type=float, default=0.9)
    ap.add_argument("--wrong-kinds", type=int, default=3)
    ap.add_argument("--repro-rate", type=float, default=0.7)
    ap.add_argument("--right-pass", type=float, default=0.6)
    ap.add_argument("--wrong-pass", type=float, default=0.35)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=200)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if not args.matrix.exists():
        sys.exit(f"{args.matrix} not found (the shared data sits beside the checkout)")
    probs = success_probabilities(args.matrix)
    res = mean_of([one_repeat(probs, args, seed) for seed in range(args.repeats)])
    fixed, adaptive = res["fixed"], res["adaptive"]
    for name in ("fixed", "adaptive"):
        r = res[name]
        print(
            f"{name:9} trajectories {r['trajectories']:7.1f}  coverage {r['coverage']:.3f}  "
            f"majority-vote resolve {r['resolve_rate']:.3f}  selection {r['selection_accuracy']:.3f}"
        )
    for k, f in res["forecast"].items():
        print(f"forecast {k} from k<=5: {f['forecast']:.3f} [{f['low']:.3f}, {f['high']:.3f}]"
              f" measured {f['measured']:.3f} error {f['error']:+.3f}")  # fmt: skip
    figures = {
        "problems": len(probs),
        "cost_saved": 1 - adaptive["trajectories"] / fixed["trajectories"],
        "coverage_lost": fixed["coverage"] - adaptive["coverage"],
        "selection_accuracy_delta": adaptive["selection_accuracy"] - fixed["selection_accuracy"],
        "resolve_rate_delta": adaptive["resolve_rate"] - fixed["resolve_rate"],
        "fixed": fixed,
        "adaptive": adaptive,
        "forecast": res["forecast"],
        "assumptions": {k: v for k, v in vars(args).items() if k != "matrix"},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
