"""Secrets of a user's repository never reach a sandbox, a prompt, a record or the console
(issue 26): ``solve`` on a repository with thirteen planted secrets, with a model whose
reproduction scripts print every file they can read (``nosy_explorer``), in the Docker and
the local sandbox. The local sandbox has no isolation, so there the script also reads the
user's checkout by the host path the issue names: what it prints is redacted."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from codemonkeys.secret_check import REDACTED
from tests.conftest import FIXTURES, make_git_repo
from tests.fixtures.planted_secrets import FILES, NEEDLES
from tests.integration.test_solve import FAST, _cli

POLICY = FIXTURES / "policies" / "nosy_explorer.py"


def _repo_with_secrets(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "bumper"
    shutil.copytree(FIXTURES / "shell_project", repo)
    issue = (repo / "ISSUE.md").read_text()
    (repo / "ISSUE.md").unlink()
    make_git_repo(repo, FILES)
    issue += f"\nMy checkout is at {repo} if that helps.\n"
    return repo, issue


def _everything_recorded(run_dir: Path) -> str:
    """Every file of the run directory as text (gzip members decompressed)."""
    parts = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        parts.append(data.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def _solve(tmp_path: Path, sandbox: str, *extra: str) -> tuple[str, str, Path]:
    repo, issue = _repo_with_secrets(tmp_path)
    run_dir = tmp_path / "run"
    proc = _cli(
        "solve", "--repo", str(repo), "--issue", issue, "--sandbox", sandbox,
        "--model", f"scripted:{POLICY}", "--run-dir", str(run_dir), *FAST,
        "--set", "sandbox.max_output_chars=200000", *extra,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out, _everything_recorded(run_dir), run_dir


def _trajectory_outputs(run_dir: Path) -> str:
    [pid] = [p.name for p in (run_dir / "problems").iterdir()]
    return (run_dir / "problems" / pid / "trajectory-0.json").read_text()


@pytest.mark.docker
@pytest.mark.slow
def test_no_planted_secret_leaves_the_docker_sandbox(tmp_path, sandbox_image):
    out, recorded, run_dir = _solve(tmp_path, "docker")
    assert [n for n in NEEDLES if n in out] == []
    assert [n for n in NEEDLES if n in recorded] == []
    shown = _trajectory_outputs(run_dir)
    # the script did print the repository: the placeholders and the masked code
    assert "=== ./.env" in shown and "this file looks like a secret" in shown
    assert 'STRIPE_KEY = \\"' + REDACTED in shown
    assert "patch=0" in (tmp_path / "run" / "chosen.patch").read_text()


def test_no_planted_secret_leaves_the_local_sandbox_even_from_the_host_checkout(tmp_path):
    out, recorded, run_dir = _solve(tmp_path, "local")
    assert [n for n in NEEDLES if n in out] == []
    assert [n for n in NEEDLES if n in recorded] == []
    shown = _trajectory_outputs(run_dir)
    assert "/bumper/.env" in shown and REDACTED in shown  # the original, read and redacted
    assert "patch=0" in (tmp_path / "run" / "chosen.patch").read_text()


@pytest.mark.docker
@pytest.mark.slow
def test_files_copied_as_they_are_are_still_redacted_from_everything_recorded(
    tmp_path, sandbox_image
):
    """sandbox.copy_secret_files=["*"]: the real files are in the sandbox and the script
    prints them; the redaction at the lease is what keeps them out."""
    out, recorded, run_dir = _solve(tmp_path, "docker", "--set", 'sandbox.copy_secret_files=["*"]')
    assert [n for n in NEEDLES if n in out] == []
    assert [n for n in NEEDLES if n in recorded] == []
    shown = _trajectory_outputs(run_dir)
    assert "=== ./.env" in shown and REDACTED in shown
    assert "this file looks like a secret" not in shown  # the real files were there
