"""The solve job (codemonkeys/solve.py) without Docker: what it does to its inputs."""

from __future__ import annotations

from codemonkeys.config_loading import load_config
from codemonkeys.solve import SolveObserver, SolveOptions, solve
from tests.conftest import FIXTURES, make_git_repo

POLICY = FIXTURES / "policies" / "example_solver.py"


def test_solve_leaves_the_callers_config_as_it_was(tmp_path):
    """solve() used to set ``config.sandbox.kind`` on the caller's object: a caller that
    reused its config for the next job silently ran it in the other sandbox."""
    repo = tmp_path / "repo"
    make_git_repo(repo, {"calc.py": "def add(a, b):\n    return a - b\n"})
    config = load_config(None, [f'models.primary.model="scripted:{POLICY}"'], env={})
    before = config.model_dump()
    assert config.sandbox.kind == "docker"
    opts = SolveOptions(repo=repo, issue="add() subtracts", sandbox="local", estimate_only=True)
    outcome = solve(opts, config, SolveObserver())
    assert outcome.estimate is not None and outcome.estimate.files == 1
    assert config.model_dump() == before
