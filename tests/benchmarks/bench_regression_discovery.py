"""Benchmark: does the regression verifier's discovery find the tests that guard a change?

For real SWE-bench Verified rows (``../shared/data/swe-bench-verified.partial.jsonl``) whose
repository has a bare snapshot under ``/work/.mirror/<owner>+<name>/repo`` (the ``fetch``
tool; rows whose base commit the snapshot lacks are skipped and counted): the tree at the
base commit and the files the gold patch edits stand in for a candidate's diff; discovery
(``discover_tests`` with the names the diff touches and the repository's own test settings,
``read_test_settings``: exactly what ``plan_regression`` does in a sandbox) picks at most ``selection.regression_max_test_files`` test files. Only the
tree at the base commit and the diff are read; the gold tests only score:

- ``row_recall``: share of rows where a selected file is one the harness runs (the files
  of its FAIL_TO_PASS and PASS_TO_PASS tests, and of its test patch when the row has it);
  ``row_recall_reachable`` counts only rows with such a file in the base tree (a test file
  the test patch creates cannot be selected by anyone);
- ``test_recall``: share of the rows' PASS_TO_PASS tests whose file is selected (pytest
  ids by path; Django ids by module; sympy's bare names by the test file defining them);
- ``tests_selected_median``: test files selected per row;
- ``discovery_greps_median``: ``git grep`` processes per row (each is a sandbox command in a
  real run), and ``discovery_seconds_median``.

Baseline, same run, same rows: the discovery of commit c71d4d8 (by name and import only),
loaded from git, given the same whole listing (before the fix it read a cut one).

``--images``: also, on the shared instances whose images are built, one regression run of
the original code with the plan's command (the repository's own test settings) and, baseline
in the same run, with the plain pytest command of b7848b6 on the same files: tests passed,
and the median seconds of one run.

Run: ``uv run python tests/benchmarks/bench_regression_discovery.py``. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.candidates import Candidate  # noqa: E402
from codemonkeys.config import Config  # noqa: E402
from codemonkeys.diffs import touched_files  # noqa: E402
from codemonkeys.selection.regression_discovery import discover_tests  # noqa: E402
from codemonkeys.selection.regression_plan import parse_counts, touched_names  # noqa: E402
from codemonkeys.selection.repo_test_settings import read_test_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BASELINE_COMMIT = "c71d4d8"


def git(git_dir: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], input=stdin, capture_output=True
    ).stdout


class MirrorTree:
    """One commit of a bare snapshot: listing, grep and file reads (the sandbox's view)."""

    def __init__(self, git_dir: Path, commit: str):
        self.git_dir, self.commit = git_dir, commit
        self.greps = 0  # git grep processes run (each is one sandbox command in a real run)

    def files(self) -> list[str]:
        out = git(self.git_dir, "ls-tree", "-r", "-z", "--name-only", self.commit)
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def grep(self, regex: str, paths) -> list[str]:
        return list(self.count(regex, paths))

    def count(self, regex: str, paths) -> dict[str, int]:
        found: dict[str, int] = {}
        for i in range(0, len(paths), 1000):
            self.greps += 1
            out = git(self.git_dir, "--literal-pathspecs", "grep", "-I", "-c", "-z", "-E",
                      regex, self.commit, "--", *paths[i : i + 1000])  # fmt: skip
            found.update(parse_counts(out, set(paths), f"{self.commit}:"))
        return found

    def read(self, path: str) -> str | None:
        out = subprocess.run(["git", f"--git-dir={self.git_dir}", "show",
                              f"{self.commit}:{path}"], capture_output=True)  # fmt: skip
        return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def baseline_discovery() -> types.ModuleType:
    """The discovery module as it was at ``BASELINE_COMMIT``."""
    src = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:codemonkeys/selection/regression_discovery.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    mod = types.ModuleType("baseline_discovery")
    exec(compile(src, "baseline_discovery.py", "exec"), mod.__dict__)
    return mod


def _django_file(test_id: str) -> str | None:
    m = re.match(r"^\w+ \(([\w.]+)\)", test_id)
    if not m:
        return None
    parts = m.group(1).split(".")[:-1]  # drop the class
    return "tests/" + "/".join(parts) + ".py"


def _ids(field) -> list[str]:
    return json.loads(field) if isinstance(field, str) else list(field or [])


def _definers(tree: MirrorTree, names: set[str]) -> dict[str, str]:
    """sympy's bare test names -> the test file defining each (at the base commit)."""
    if not names:
        return {}
    out = git(tree.git_dir, "grep", "-n", "-E", "def (" + "|".join(sorted(names)) + r")\(",
              tree.commit, "--", "*test*.py")  # fmt: skip
    found: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 3)
        m = re.search(r"def (\w+)\(", parts[3]) if len(parts) == 4 else None
        if m and m.group(1) in names:
            found.setdefault(m.group(1), parts[1])
    return found


def test_file_of(tests: list[str], tree: MirrorTree) -> dict[str, str]:
    """Each harness test id -> its file (pytest ids by path, Django ids by module, sympy's
    bare names by the test file defining them at the base commit)."""
    files: dict[str, str] = {}
    bare: dict[str, str] = {}
    for t in tests:
        if "::" in t:
            files[t] = t.split("::")[0]
        elif (f := _django_file(t)) is not None:
            files[t] = f
        else:
            bare[t] = t.split("[")[0].strip()
    definers = _definers(tree, set(bare.values()))
    files.update({t: definers[n] for t, n in bare.items() if n in definers})
    return files


def guard_files(row: dict, tree: MirrorTree) -> tuple[set[str], dict[str, str]]:
    """The files the harness runs (its FAIL_TO_PASS and PASS_TO_PASS tests' files, the
    test patch's when the row has it) and each PASS_TO_PASS test's file."""
    p2p = test_file_of(_ids(row["PASS_TO_PASS"]), tree)
    f2p = test_file_of(_ids(row["FAIL_TO_PASS"]), tree)
    harness = set(p2p.values()) | set(f2p.values()) | set(touched_files(row["test_patch"] or ""))
    return harness, p2p


def measure(row: dict, git_dir: Path, cfg: Config, old: types.ModuleType) -> dict | None:
    tree = MirrorTree(git_dir, row["base_commit"])
    files = tree.files()
    if not files:
        return None
    edited = touched_files(row["patch"])
    names = touched_names([Candidate(id="gold", patch=row["patch"])], tree.read)
    limit = cfg.selection.regression_max_test_files
    dirs = cfg.context.test_dirs
    t0, greps0 = time.monotonic(), tree.greps
    settings = read_test_settings(tree.read, set(files))
    new = discover_tests(files, edited, tree.grep, test_dirs=dirs, limit=limit, touched_names=names,
                         count=tree.count, settings=settings)  # fmt: skip
    t1, greps1 = time.monotonic(), tree.greps
    base = old.discover_tests(files, edited, tree.grep, test_dirs=dirs, limit=limit)
    t2, greps2 = time.monotonic(), tree.greps
    guards, p2p = guard_files(row, tree)
    present = set(files)

    def score(sel: dict[str, str]) -> dict:
        return {"hit": bool(set(sel) & guards), "p2p_hit": sum(f in sel for f in p2p.values()),
                "selected": len(sel)}  # fmt: skip

    return {"id": row["instance_id"], "p2p": len(p2p), "new": score(new), "old": score(base),
            "reachable": bool(guards & present),
            "seconds": round(t1 - t0, 3), "baseline_seconds": round(t2 - t1, 3),
            "greps": greps1 - greps0, "baseline_greps": greps2 - greps1, "reasons": new}  # fmt: skip


def summarise(results: list[dict], key: str) -> dict:
    p2p = sum(r["p2p"] for r in results)
    reachable = [r for r in results if r["reachable"]]
    return {
        "row_recall": round(sum(r[key]["hit"] for r in results) / len(results), 3),
        "row_recall_reachable": round(sum(r[key]["hit"] for r in reachable) / len(reachable), 3),
        "test_recall": round(sum(r[key]["p2p_hit"] for r in results) / max(1, p2p), 3),
        "tests_selected_median": statistics.median(r[key]["selected"] for r in results),
    }


def _passed(run) -> int:
    return sum(v == "passed" for v in run.outcomes.values())


def regression_runs(cfg: Config) -> dict[str, dict]:
    """On each shared instance whose image is built: the plan for the gold patch (as a
    candidate), then one run of the original code with the command as the repository runs
    its tests (the plan's) and, baseline in the same run, the plain pytest command of
    b7848b6 on the same files, each in a fresh sandbox: tests passed and seconds."""
    from codemonkeys.sandbox import image_exists, open_sandbox
    from codemonkeys.sandbox.spec import spec_from_config
    from codemonkeys.selection.regression import run_suite
    from codemonkeys.selection.regression_discovery import build_command
    from codemonkeys.selection.regression_plan import plan_regression
    from codemonkeys.swebench.dataset import to_problem

    out: dict[str, dict] = {}
    for line in (DATA / "instances" / "rows.jsonl").open():
        row = json.loads(line)
        problem, _ = to_problem(row)
        spec = spec_from_config(problem, cfg)
        if not image_exists(spec.image):
            continue
        cand = [Candidate(id="gold", patch=row["patch"])]
        with open_sandbox(spec) as sandbox:
            plan = plan_regression(sandbox, cand, cfg.selection, cfg.context.test_dirs)
        commands = {"repo_settings": plan.command,
                    "baseline": build_command(plan.framework, plan.test_files)}  # fmt: skip
        got: dict = {"files": len(plan.test_files), "command": plan.command}
        for name, command in commands.items():
            with open_sandbox(spec) as sandbox:
                run = run_suite(sandbox, None, command, cfg.selection.regression_timeout_s,
                                plan.junit)  # fmt: skip
            got[name] = {"passed": _passed(run), "tests": len(run.outcomes),
                         "seconds": run.seconds, "timed_out": run.timed_out}  # fmt: skip
        print(f"{row['instance_id']}: {json.dumps(got)}")
        out[row["instance_id"]] = got
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--rows", type=int, default=0, help="at most this many rows (0 = all)")
    ap.add_argument("--images", action="store_true", help="also run the original code")
    ap.add_argument("--images-only", action="store_true", help="only the --images part")
    args = ap.parse_args()
    cfg, old = Config(), baseline_discovery()
    if args.images_only:
        runs = regression_runs(cfg)
        print(json.dumps({f"original_passed_{name}": {k: v[name]["passed"] for k, v in runs.items()}
                          for name in ("repo_settings", "baseline")}))  # fmt: skip
        return
    rows = [json.loads(x) for x in (DATA / "swe-bench-verified.partial.jsonl").open()]
    jobs, skipped = [], 0
    for row in rows:
        git_dir = Path(args.mirrors) / row["repo"].replace("/", "+") / "repo"
        if git_dir.is_dir():
            jobs.append((row, git_dir))
        else:
            skipped += 1
    if args.rows:
        jobs = jobs[: args.rows]
    with ThreadPoolExecutor(max_workers=2) as ex:
        results = [r for r in ex.map(lambda j: measure(j[0], j[1], cfg, old), jobs) if r]
    missed = [r["id"] for r in results if not r["new"]["hit"]]
    print(f"rows measured {len(results)}, no snapshot {skipped}, "
          f"missing base commit {len(jobs) - len(results)}; new misses: {missed}")  # fmt: skip
    figures = {"rows": len(results), "rows_reachable": sum(r["reachable"] for r in results),
               "repos": sorted({r["id"].split("__")[0] for r in results}),
               **summarise(results, "new"),
               "baseline": summarise(results, "old"),
               "discovery_seconds_median": statistics.median(r["seconds"] for r in results),
               "discovery_greps_median": statistics.median(r["greps"] for r in results)}  # fmt: skip
    figures["baseline"]["discovery_seconds_median"] = statistics.median(
        r["baseline_seconds"] for r in results)  # fmt: skip
    figures["baseline"]["discovery_greps_median"] = statistics.median(
        r["baseline_greps"] for r in results)  # fmt: skip
    if args.images:
        runs = regression_runs(cfg)
        for name in ("repo_settings", "baseline"):
            figures[f"original_passed_{name}"] = {k: v[name]["passed"] for k, v in runs.items()}
        secs = [v["repo_settings"]["seconds"] for v in runs.values()]
        figures["regression_run_seconds_median"] = statistics.median(secs) if secs else None
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
