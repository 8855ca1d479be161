"""The tool in a container, as the README documents it: the image built from the
repository's Dockerfile (offline: on the debootstrapped Debian base), then `codemonkeys
solve --apply` run in it as an ordinary user against a mounted repository, with the Docker
socket mounted so the sandboxes are sibling containers. The image carries debootstrap and
a docker CLI that reaches the host's engine (what the offline sandbox build needs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOOL_IMAGE = "codemonkeys-tool-test:latest"
BASE_IMAGE = "codemonkeys-debian-base:bookworm"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
USER = "4321:4321"
"""Not root and not the repository's owner by accident: the documented --user."""
SOCKET = "/var/run/docker.sock"


def _context(dest: Path) -> Path:
    """The repository's files as a build context (tracked and new, not ignored ones), plus
    the host's CA bundle, which a TLS-intercepting proxy between us and PyPI needs."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for rel in filter(None, (f.decode() for f in files)):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if HOST_CA.is_file():
        shutil.copy(HOST_CA, dest / "containers" / "ca-certificates" / "host-ca.crt")
    return dest


@pytest.fixture(scope="module")
def tool_image(docker_client, sandbox_image, tmp_path_factory) -> str:
    """The Dockerfile built on the offline base (which the sandbox image build made)."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except Exception:
        pytest.fail(f"{BASE_IMAGE} is missing: `bash containers/build-offline-image.sh` makes it")
    context = _context(tmp_path_factory.mktemp("tool-context"))
    t0 = time.monotonic()
    proc = subprocess.run(
        ["docker", "build", "-q", "--build-arg", f"BASE={BASE_IMAGE}", "-t", TOOL_IMAGE, "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"tool image built in {time.monotonic() - t0:.0f}s")
    return TOOL_IMAGE


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_documented_container_usage_solves_and_applies_as_the_user(tool_image, tmp_path):
    repo = tmp_path / "inventory"
    shutil.copytree(ROOT / "examples" / "inventory", repo)
    env = {**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@u"}
    env.update(GIT_COMMITTER_NAME="u", GIT_COMMITTER_EMAIL="u@u")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)
    uid, gid = USER.split(":")
    subprocess.run(["chown", "-R", USER, str(tmp_path)], check=True)
    base = _git(repo, "rev-parse", "HEAD").strip()
    policy = FIXTURES / "policies" / "example_solver.py"

    # the README's line, with a scripted model instead of a provider
    cmd = ["docker", "run", "--rm", "--user", USER]
    cmd += ["--group-add", str(os.stat(SOCKET).st_gid)]
    cmd += ["-v", f"{SOCKET}:{SOCKET}", "-v", f"{repo}:{repo}", "-w", str(repo)]
    cmd += ["-v", f"{policy}:/policies/solver.py:ro", tool_image]
    cmd += ["solve", "--repo", ".", "--issue-file", "ISSUE.md", "--apply"]
    cmd += ["--model", "scripted:/policies/solver.py"]
    for s in ("generation.samples=2", "generation.test_attempts=3", "generation.edit_attempts=3"):
        cmd += ["--set", s]
    cmd += ["--set", "sandbox.pool_size=2", "--set", "context.rankings=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "applied on new branch" in out

    # the fix is on a new branch of the mounted repository; the working tree is untouched
    [branch] = [b.strip() for b in _git(repo, "branch", "--format=%(refname:short)").split()
                if b.strip() != "main"]  # fmt: skip
    assert "sorted(item.discount_tiers, reverse=True)" in _git(
        repo, "show", f"{branch}:inventory/pricing.py"
    )
    assert _git(repo, "rev-parse", "HEAD").strip() == base
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    # what the container wrote belongs to the user who ran it, not root
    runs = repo / "runs"
    written = [runs, *runs.rglob("*"), *(repo / ".git" / "objects").rglob("*")]
    assert all(f"{p.stat().st_uid}:{p.stat().st_gid}" == f"{uid}:{gid}" for p in written)


def test_the_image_can_build_the_sandbox_image_offline(tool_image):
    """debootstrap is installed and the docker CLI in the image talks to the host engine."""
    proc = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{SOCKET}:{SOCKET}", "--entrypoint", "sh", tool_image,
         "-c", "command -v debootstrap && docker image inspect --format ok " + BASE_IMAGE],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["/usr/sbin/debootstrap", "ok"]
