"""The ``podman`` sandbox kind (``sandbox/kinds.py``): a sandbox on Podman's
Docker-compatible API, through the same ``DockerSandbox`` code, with nothing left behind.

Needs ``podman system service`` answering on ``kinds.PODMAN_SOCKET`` with the sandbox image
loaded (docs/sandbox.md, "Podman"); skips with that reason otherwise, and fails instead when
``CODEMONKEYS_REQUIRE_PODMAN=1`` (a CI that sets Podman up). The whole Docker suite also
runs on Podman with ``DOCKER_HOST=unix:///run/podman/podman.sock``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codemonkeys.sandbox import MANAGED_LABEL, SandboxSpec, open_sandbox
from codemonkeys.sandbox.docker_client import EngineUnreachable
from codemonkeys.sandbox.kinds import PODMAN_SOCKET, engine_client, sandbox_kind
from tests.conftest import make_git_repo

pytestmark = pytest.mark.docker

FIX = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"


@pytest.fixture(scope="module")
def podman():
    try:
        client = engine_client("podman", timeout=30)
    except EngineUnreachable as e:
        if os.environ.get("CODEMONKEYS_REQUIRE_PODMAN") == "1":
            pytest.fail(f"no Podman API at {PODMAN_SOCKET}: {e}")
        pytest.skip(f"no Podman API at {PODMAN_SOCKET} (podman system service): {e}")
    names = [c.get("Name", "") for c in client.version().get("Components", [])]
    assert any("Podman" in n for n in names), f"{PODMAN_SOCKET} is not Podman: {names}"
    return client


def test_a_podman_sandbox_runs_isolated_applies_a_patch_and_leaves_nothing(podman, tmp_path: Path):
    assert sandbox_kind("podman").needs_engine and sandbox_kind("podman").isolated
    repo = tmp_path / "repo"
    make_git_repo(repo, {"calc.py": "def add(a, b):\n    return a - b\n"})
    spec = SandboxSpec(kind="podman", image="codemonkeys-sandbox:latest", repo_path=repo)
    box = open_sandbox(spec)
    try:
        mine = podman.containers.list(filters={"label": f"{MANAGED_LABEL}=1"})
        assert mine, "the sandbox's container is not on the Podman engine"
        assert box.apply_patch(FIX).ok
        out = box.run("python3 -c 'from calc import add; print(add(2, 3))'")
        assert out.exit_code == 0 and out.output.strip() == "5", out
        net = box.run("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 53), 2)'")
        assert net.exit_code != 0, "the network is on"
        box.reset()
        assert "a - b" in box.read_file("calc.py").decode()
    finally:
        box.close()
    left = podman.containers.list(all=True, filters={"label": f"{MANAGED_LABEL}=1"})
    assert [c for c in left if c.id in {m.id for m in mine}] == []
