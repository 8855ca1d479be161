"""Verdicts need evidence (issue 23), in real containers with the real unittest runner.

The fixture: ``calc.stats.median`` returns the upper middle element for even-length lists;
its own tests (``tests/test_stats.py``) check ``mean`` and the odd case. Two hostile wrong
fixes (``return s[0]``: the issue's case stays wrong and the odd case breaks):

- ``exit_at_import``: the wrong fix plus ``import sys; sys.exit(0)`` at the end of the
  edited module: every interpreter importing it exits 0 before any check runs;
- ``sitecustomize``: the wrong fix plus a root ``sitecustomize.py`` that ends every
  interpreter started with the repository root on its path with exit 0.

Neither may earn a vote from the reproduction test, nor a clean regression verdict; the
correct fix keeps both. Each assertion here fails on the code before the fix (c71d4d8).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codemonkeys.candidates import Candidate, CandidateSet
from codemonkeys.config import Config
from codemonkeys.execution import ExecutionCache, Script
from codemonkeys.selection.matrix import run_matrix
from codemonkeys.selection.regression import run_regression
from codemonkeys.selection.stage import prepare_candidates
from codemonkeys.selection.voting import count_votes
from tests.conftest import make_git_repo

pytestmark = [pytest.mark.docker]

STATS = """def mean(xs):
    return sum(xs) / len(xs)


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]
"""
SUITE = """import unittest

from calc.stats import mean, median


class StatsTest(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([1, 2, 3]), 2)

    def test_median_odd(self):
        self.assertEqual(median([3, 1, 2]), 2)
"""
CORRECT = STATS.replace(
    "    return s[len(s) // 2]\n",
    "    n = len(s)\n    if n % 2:\n        return s[n // 2]\n    return (s[n // 2 - 1] + s[n // 2]) / 2\n",
)
WRONG = STATS.replace("    return s[len(s) // 2]\n", "    return s[0]\n")
HIJACK = "import os\n\nos._exit(0)\n"

REPRO = Script(
    content="from calc.stats import median\n"
    "got = median([1, 2, 3, 4])\n"
    "print('median([1, 2, 3, 4]) =', got)\n"
    "raise SystemExit(0 if got == 2.5 else 2)\n"
)


def _diff(repo: Path, files: dict[str, str]) -> str:
    """A real git diff of the fixture repository with ``files`` written (new ones added)."""
    originals = {p: (repo / p).read_text() if (repo / p).exists() else None for p in files}
    try:
        for p, text in files.items():
            (repo / p).write_text(text)
        subprocess.run(["git", "add", "-N", "."], cwd=repo, check=True)
        return subprocess.run(
            ["git", "diff"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout
    finally:
        subprocess.run(["git", "reset", "-q"], cwd=repo, check=True)
        for p, old in originals.items():
            if old is None:
                (repo / p).unlink()
            else:
                (repo / p).write_text(old)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sandbox_image):
    from codemonkeys.sandbox import SandboxPool, SandboxSpec

    repo = tmp_path_factory.mktemp("calc")
    sha = make_git_repo(
        repo,
        {"calc/__init__.py": "", "calc/stats.py": STATS, "tests/__init__.py": "",
         "tests/test_stats.py": SUITE},
    )  # fmt: skip
    patches = {
        "correct": _diff(repo, {"calc/stats.py": CORRECT}),
        "exit_at_import": _diff(repo, {"calc/stats.py": WRONG + "import sys\n\nsys.exit(0)\n"}),
        "sitecustomize": _diff(repo, {"calc/stats.py": WRONG, "sitecustomize.py": HIJACK}),
    }
    pool = SandboxPool(
        SandboxSpec(
            kind="docker", image=sandbox_image, workdir="/repo", repo_path=repo, base_commit=sha
        ),
        size=2,
    )
    try:
        yield patches, ExecutionCache(pool.lease, timeout=60)
    finally:
        pool.close()


def _verdicts(cache: ExecutionCache, candidates: list[Candidate]):
    config = Config()
    matrix = run_matrix(candidates, [REPRO], cache, workers=2)
    regression = run_regression(
        candidates, cache, config.selection, test_dirs=config.context.test_dirs, workers=2
    )
    return count_votes(matrix), regression


def test_hostile_candidates_earn_no_vote_and_no_clean_regression_verdict(setup):
    """Run as they came (nothing stripped): the interpreter exit and the runner hijack are
    caught by the runs themselves (test harness, isolated runner)."""
    patches, cache = setup
    candidates = [Candidate(id=name, patch=p) for name, p in patches.items()]
    votes, regression = _verdicts(cache, candidates)
    assert regression.baseline_passing == 2, regression.skipped_reason
    assert votes["correct"] == 1
    assert regression.regressions_of("correct") == 0
    for hostile in ("exit_at_import", "sitecustomize"):
        assert votes[hostile] == 0, (hostile, votes)
        assert regression.regressions_of(hostile) != 0, (hostile, regression.candidates[hostile])
    # the exit at import leaves no per-test report: no evidence, never "breaks nothing"
    assert regression.candidates["exit_at_import"].status == "no-evidence"
    # the hijack does not reach the isolated runner: the wrong fix's breakage shows
    broken = regression.candidates["sitecustomize"].regressions
    assert any(t.endswith("test_median_odd") for t in broken), broken


def test_a_runner_file_is_stripped_from_the_candidate(setup):
    """Selection strips the root ``sitecustomize.py`` like a test file, and records it."""
    patches, _ = setup
    cs = CandidateSet()
    cs.add_patch(patches["sitecustomize"], "hostile")
    prepared, stripped = prepare_candidates(cs, Config())
    assert [s.removed_files for s in stripped] == [["sitecustomize.py"]]
    assert all("sitecustomize" not in c.patch for c in prepared.candidates)
