"""Mutation check: deliberate breakages of the pipeline must make the tests fail.

    uv run python tests/mutations.py [--only NAME ...] [--no-baseline]

For each breakage, a temporary copy of the checkout (tracked and untracked, not ignored
files) gets one source edit (the exact text must occur once, so a mutation whose target
moved fails loudly instead of testing nothing), then the tests named for it run there with
this project's interpreter (``PYTHONPATH`` points at the copy, so the CLI subprocesses the
end-to-end tests start import the broken package too). First, unless ``--no-baseline``,
the union of those tests runs on an unbroken copy: a test that fails there cannot count as
catching anything. Prints a table breakage -> failed tests; the last line is one JSON
object. Exit status 1 when a breakage is caught by no test.

Not part of the default pytest run (it is not a ``test_*.py`` file). It runs Docker tests:
expect 5-15 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SOLVE_E2E = "tests/integration/test_solve.py::test_solve_the_readme_example_inside_this_repository"
SWEBENCH_E2E = (
    "tests/integration/test_swebench_run.py::test_run_then_official_harness_grades_the_chosen_patch"
)
ENSEMBLE_E2E = (
    "tests/integration/test_swebench_run.py::test_ensemble_other_systems_predictions_without_labels"
)


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation(
        name="pack-no-files",
        what="the context stage packs zero files (ranking and packing still run)",
        file="codemonkeys/context/stage.py",
        old="            packed=packing.packed,\n",
        new="            packed=[],\n",
        tests=(SOLVE_E2E, SWEBENCH_E2E, "tests/unit/test_context_stage.py"),
    ),
    Mutation(
        name="invert-vote-rule",
        what="strict voting counts tests that PASS on the original code instead of failing",
        file="codemonkeys/selection/voting.py",
        old='        if rule == "strict" and matrix.original(t).passed:\n',
        new='        if rule == "strict" and not matrix.original(t).passed:\n',
        tests=(SOLVE_E2E, SWEBENCH_E2E, ENSEMBLE_E2E),
    ),
    Mutation(
        name="selector-picks-last",
        what="the selector's valid choice is replaced by the last candidate shown",
        file="codemonkeys/selection/selector.py",
        old="                    chosen_id=reply.body,\n",
        new="                    chosen_id=ids[-1],\n",
        tests=(SOLVE_E2E, SWEBENCH_E2E, ENSEMBLE_E2E),
    ),
    Mutation(
        name="skip-reset",
        what="the sandbox pool hands a sandbox back without reset() (edits and files leak)",
        file="codemonkeys/sandbox/pool.py",
        old="            box.reset()\n",
        new="            pass  # mutation: no reset\n",
        tests=(SOLVE_E2E, SWEBENCH_E2E, "tests/integration/test_sandbox_docker.py"),
    ),
    Mutation(
        name="drop-original-column",
        what="the matrix does not run tests on the original code; every test counts as "
        "failing there",
        file="codemonkeys/selection/matrix.py",
        old="    rows: list[tuple[str, str | None]] = [(ORIGINAL, None)] + [(c.id, c.patch) for c in candidates]\n",
        new="    rows: list[tuple[str, str | None]] = [(c.id, c.patch) for c in candidates]\n",
        tests=(SOLVE_E2E, SWEBENCH_E2E, ENSEMBLE_E2E, "tests/integration/test_selection.py"),
    ),
]
# Without this second edit, dropping the column crashes at the first vote (KeyError); with
# it the pipeline runs on and silently assumes every test fails on the original code.
SILENT_ORIGINAL = (
    "        return self.cells[ORIGINAL][test]\n",
    '        return self.cells.get(ORIGINAL, {}).get(test) or Cell(verdict="unfixed", exit_code=2)\n',
)


def checkout_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def make_copy(dest: Path) -> Path:
    """A copy of the checkout at ``dest/<checkout name>``, committed in a fresh git
    repository (``solve`` works on a git checkout, as a user's is)."""
    copy = dest / ROOT.name
    for rel in checkout_files():
        target = copy / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=mutations", "-c", "user.email=mutations@codemonkeys.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=copy, env=env, check=True, capture_output=True)
    return copy


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    count = text.count(old)
    if count != 1:
        raise SystemExit(f"mutation target found {count} times in {path} (expected once):\n{old}")
    path.write_text(text.replace(old, new))


def apply(mutation: Mutation, copy: Path) -> None:
    replace_once(copy / mutation.file, mutation.old, mutation.new)
    if mutation.name == "drop-original-column":
        replace_once(copy / mutation.file, *SILENT_ORIGINAL)


def run_tests(copy: Path, tests: list[str], report: Path) -> tuple[set[str], set[str], float]:
    """Run ``tests`` in ``copy``; returns (failed or errored test ids, passed ids, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    env.pop("PYTEST_ADDOPTS", None)
    probe = subprocess.run(
        [sys.executable, "-c", "import codemonkeys; print(codemonkeys.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(probe).is_relative_to(copy):
        raise SystemExit(f"the copy's package is not the one imported ({probe})")
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
        + tests,
        cwd=copy,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - start
    failed: set[str] = set()
    passed: set[str] = set()
    if not report.exists():
        return {"<pytest did not run>"}, passed, seconds
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(name)
        elif case.find("skipped") is None:
            passed.add(name)
    return failed, passed, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="Run only these mutations (by name).")
    parser.add_argument("--no-baseline", action="store_true", help="Skip the unbroken run.")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if not chosen:
        raise SystemExit(f"no such mutation; known: {', '.join(m.name for m in MUTATIONS)}")

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cm-mutations-") as tmp:
        tmp_path = Path(tmp)
        broken_baseline: set[str] = set()
        if not args.no_baseline:
            union = sorted({t for m in chosen for t in m.tests})
            copy = make_copy(tmp_path / "baseline")
            failed, passed, secs = run_tests(copy, union, tmp_path / "baseline.xml")
            broken_baseline = failed
            print(f"baseline: {len(passed)} passed, {len(failed)} failed ({secs:.0f} s)")
            for name in sorted(failed):
                print(f"  fails without any mutation (not counted): {name}")
        for m in chosen:
            copy = make_copy(tmp_path / m.name)
            apply(m, copy)
            failed, passed, secs = run_tests(copy, list(m.tests), tmp_path / f"{m.name}.xml")
            caught = sorted(failed - broken_baseline)
            rows.append({"mutation": m.name, "what": m.what, "caught_by": caught, "seconds": secs})
            print(f"{m.name}: {len(caught)} failing test(s) ({secs:.0f} s)", flush=True)
            shutil.rmtree(copy.parent, ignore_errors=True)

    print()
    print("| breakage | what | tests that failed |")
    print("| --- | --- | --- |")
    for r in rows:
        tests = "<br>".join(r["caught_by"]) or "**NOT CAUGHT**"
        print(f"| {r['mutation']} | {r['what']} | {tests} |")
    caught = sum(1 for r in rows if r["caught_by"])
    print(json.dumps({"mutations": len(rows), "caught": caught}))
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
