"""Shared fixtures. Docker tests skip with a reason when no engine is reachable, and data
tests when ``../shared/data`` lacks what they read (``shared_data``), except under CI=true
where either is a failure: CI clones beside a copy of shared/, so nothing may skip there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"
CLI = str(Path(sys.executable).parent / "codemonkeys")
"""The console script of the environment running the tests (as a user runs it)."""
SANDBOX_IMAGE = os.environ.get("CODEMONKEYS_TEST_IMAGE", "codemonkeys-sandbox:latest")


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Each test (and the CLI it starts) gets its own relevance cache directory, so the
    cross-run decision cache never carries answers between tests or into ~/.cache."""
    import codemonkeys.context.decision_cache as decision_cache

    cache = tmp_path_factory.mktemp("relevance-cache")
    monkeypatch.setenv("CODEMONKEYS_CONTEXT__RELEVANCE_CACHE_DIR", str(cache))
    monkeypatch.setattr(decision_cache, "default_cache_dir", lambda: cache)


def _docker_client():
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client, None
    except Exception as e:  # engine absent or unreachable
        return None, f"no Docker engine reachable ({type(e).__name__}: {e})"


def need_shared(relative: str, root: Path = SHARED_DATA) -> Path:
    """``root/relative``, which a data test reads. Absent: the test skips with the path,
    or fails under CI=true (CI puts a copy of shared/ beside the clone)."""
    path = root / relative
    if not path.exists():
        reason = f"shared data {path} is not present (expected beside the checkout)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}; CI must provide ../shared")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data():
    """``shared_data("leaderboard/…")``: the path of a file or folder under
    ``../shared/data`` (see ``need_shared``). Every test that reads shared data goes
    through this fixture."""
    return need_shared


@pytest.fixture(scope="session")
def docker_client():
    client, reason = _docker_client()
    if client is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}; .ci/run must start dockerd")
        pytest.skip(reason)
    return client


@pytest.fixture(scope="session")
def sandbox_image(docker_client) -> str:
    """The generic sandbox image, built offline (debootstrap) when absent."""
    try:
        docker_client.images.get(SANDBOX_IMAGE)
    except Exception:
        script = ROOT / "containers" / "build-offline-image.sh"
        proc = subprocess.run(["bash", str(script), SANDBOX_IMAGE], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"could not build {SANDBOX_IMAGE}:\n{proc.stdout}\n{proc.stderr}")
    return SANDBOX_IMAGE


def make_git_repo(path: Path, files: dict[str, str | bytes], message: str = "initial") -> str:
    """Create a git repository with ``files`` committed; returns the commit sha."""
    path.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        f = path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            f.write_bytes(content)
        else:
            f.write_text(content)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    run = lambda *a: subprocess.run(["git", *a], cwd=path, check=True, capture_output=True, env=env)  # noqa: E731
    if not (path / ".git").exists():
        run("init", "-q", "-b", "main")
    run("add", "-A")
    run("commit", "-q", "-m", message, "--allow-empty")
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (a disk that fills up). Mounting needs root; without it the test skips
    with the reason, except under CI=true where it must run."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        reason = f"cannot mount a tmpfs: {proc.stderr.strip() or proc.returncode}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill_disk(mount_point: Path, leave_bytes: int) -> Path:
    """Occupy the disk but ``leave_bytes``; delete the returned file to free the space."""
    st = os.statvfs(mount_point)
    free = st.f_bavail * st.f_frsize
    filler = mount_point / "filler"
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


@pytest.fixture
def instance_row(shared_data, docker_client):
    """``instance_row(iid)``: the harness row of a real instance in ``../shared/data/instances``
    whose image is built (the test skips with the reason when it is not)."""
    import json

    from codemonkeys.swebench.images import official_image_name

    def row(iid: str) -> dict:
        instances = shared_data("instances")
        image = official_image_name(iid)
        try:
            docker_client.images.get(image)
        except Exception:
            pytest.skip(f"{image} is not built (see {instances}/README.md)")
        rows = map(json.loads, (instances / "rows.jsonl").open())
        return next(r for r in rows if r["instance_id"] == iid)

    return row
