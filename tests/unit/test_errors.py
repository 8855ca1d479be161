"""One error hierarchy: every user-facing exception is a ``CodemonkeysError`` carrying its
message and fix; the CLI prints both and exits with the error's code, in one place."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from codemonkeys.cli import app
from codemonkeys.errors import CodemonkeysError
from tests.conftest import FIXTURES, make_git_repo

runner = CliRunner()
POLICY = FIXTURES / "policies" / "example_solver.py"


def test_user_facing_errors_share_one_base_and_keep_their_builtin_one():
    from codemonkeys.config_loading import ConfigError
    from codemonkeys.github import GitHubError
    from codemonkeys.llm.base import ContextLengthExceeded, ModelError
    from codemonkeys.localrepo import LocalRepoError, UncommittedChangesError
    from codemonkeys.predictions import PredictionsError
    from codemonkeys.sandbox.base import SandboxError
    from codemonkeys.sandbox.environment import EnvironmentBuildError
    from codemonkeys.solve import SolveError
    from codemonkeys.store import DiskFull, RunLocked
    from codemonkeys.swebench.dataset import DatasetError
    from codemonkeys.swebench.evaluate import HarnessFailed, HarnessMissing
    from codemonkeys.swebench.images import ImageMissing

    builtin = {
        ConfigError: ValueError,
        DatasetError: ValueError,
        PredictionsError: ValueError,
        DiskFull: OSError,
        RunLocked: RuntimeError,
        ModelError: RuntimeError,
        ContextLengthExceeded: RuntimeError,
        SandboxError: RuntimeError,
        ImageMissing: RuntimeError,
        SolveError: RuntimeError,
        EnvironmentBuildError: RuntimeError,
        GitHubError: RuntimeError,
        LocalRepoError: RuntimeError,
        UncommittedChangesError: RuntimeError,
        HarnessMissing: RuntimeError,
        HarnessFailed: RuntimeError,
    }
    for cls, base in builtin.items():
        assert issubclass(cls, CodemonkeysError) and issubclass(cls, base), cls
    # exit codes: bad input 2, infrastructure 1, a full disk 4 (as pipeline.EXIT_CODES)
    assert ConfigError.exit_code == RunLocked.exit_code == ModelError.exit_code == 2
    assert SandboxError.exit_code == 1
    assert DiskFull.exit_code == 4


def test_a_config_error_prints_its_message_and_fix_and_exits_2(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show", "--config", "missing.toml"])
    assert result.exit_code == 2
    assert "error: config file not found: missing.toml" in result.stderr
    assert "fix: check the path given to --config" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_solve_without_a_docker_engine_says_how_to_fix_it_and_exits_1(monkeypatch, tmp_path):
    """The Docker engine out of reach is an infrastructure error (exit 1, as for `swebench
    run` and `ensemble`), with the fix on its own line."""
    repo = tmp_path / "repo"
    make_git_repo(repo, {"calc.py": "def add(a, b):\n    return a - b\n"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/codemonkeys-test-docker.sock")
    args = ["solve", "--repo", str(repo), "--issue", "add() subtracts", "--model"]
    result = runner.invoke(app, [*args, f"scripted:{POLICY}"])
    err = " ".join(result.stderr.split())
    assert result.exit_code == 1, result.output
    assert "error: the Docker engine is not reachable" in err
    assert "fix: start Docker (dockerd), or pass --sandbox local" in err
    assert "Traceback" not in result.output


def test_a_run_directory_held_by_another_invocation_is_reported_not_raised(tmp_path):
    from codemonkeys.store import RunLock

    repo = tmp_path / "repo"
    make_git_repo(repo, {"calc.py": "def add(a, b):\n    return a - b\n"})
    run_dir = tmp_path / "run"
    holder = RunLock(run_dir).acquire()
    args = ["solve", "--repo", str(repo), "--issue", "add() subtracts", "--sandbox", "local"]
    args += ["--run-dir", str(run_dir), "--model", f"scripted:{POLICY}"]
    try:
        result = runner.invoke(app, args)
    finally:
        holder.release()
    err = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "error:" in err and "in use by another invocation" in err


def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch, tmp_path):
    """Only CodemonkeysError is reported as a message; anything else keeps its traceback."""
    import codemonkeys.doctor as doctor

    def broken(cfg):
        raise KeyError("a bug")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(doctor, "run_checks", broken)
    result = runner.invoke(app, ["doctor"])
    assert isinstance(result.exception, KeyError)
    with pytest.raises(KeyError):
        raise result.exception
