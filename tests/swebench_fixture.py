"""A SWE-bench-shaped problem built locally: the ``statkit`` fixture repository (a real
bug in ``median``, a real unittest suite) committed at /testbed in an image named by the
official rule, plus the dataset row the swebench 5.x harness grades it with.

Reusable by any test that needs a SWE-bench instance without a registry:

    from tests.swebench_fixture import build_swebench_fixture
    row, image = build_swebench_fixture(docker_client, sandbox_image)

The image carries no conda (the generic sandbox image is Debian + python3 + git), so the
eval script runs the tests with ``python3 -m unittest -v`` and the row uses the harness's
``parse_log_django`` parser, which reads unittest's verbose ``name ... ok`` lines.
Everything is deterministic (fixed commit dates), so the image is built once and reused
while the fixture files and the base image stay the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codemonkeys.swebench.images import official_image_name

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "swebench" / "statkit"
INSTANCE_ID = "codemonkeys__statkit-1"
REPO = "codemonkeys/statkit"
VERSION = "0.1"
TEST_FILE = "tests/test_stats.py"
TEST_MODULE = "tests.test_stats"
FIXED_FILE = "stats.py"
FAIL_TO_PASS = ["test_median_even (tests.test_stats.TestMedian.test_median_even)"]
PASS_TO_PASS = [
    "test_mean (tests.test_stats.TestMean.test_mean)",
    "test_median_odd (tests.test_stats.TestMedian.test_median_odd)",
]
"""unittest's verbose names under Python >= 3.11 (the sandbox image's python3)."""
BUGGY_SNIPPET = "    middle = len(ordered) // 2\n    return ordered[middle]\n"
FIXED_SNIPPET = (
    "    middle = len(ordered) // 2\n"
    "    if len(ordered) % 2:\n"
    "        return ordered[middle]\n"
    "    return (ordered[middle - 1] + ordered[middle]) / 2\n"
)
"""The fix as a search/replace pair on stats.py, for scripted-model policies."""
FIXTURE_LABEL = "org.codemonkeys.swebench-fixture"
HEREDOC = "EOF_114329324912"  # the delimiter the official eval scripts use

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "fixture",
    "GIT_AUTHOR_EMAIL": "fixture@codemonkeys.invalid",
    "GIT_COMMITTER_NAME": "fixture",
    "GIT_COMMITTER_EMAIL": "fixture@codemonkeys.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass
class FixtureRepo:
    path: Path
    base_commit: str
    patch: str
    """The gold fix (stats.py)."""
    test_patch: str
    """Adds the failing test (tests/test_stats.py)."""


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **_GIT_ENV},
    )
    return proc.stdout


def _diff_against_base(repo: Path, overlay: Path) -> str:
    """Copy ``overlay`` over the checkout, diff, restore: a patch made by git itself."""
    for src in sorted(p for p in overlay.rglob("*") if p.is_file()):
        shutil.copyfile(src, repo / src.relative_to(overlay))
    diff = _git(repo, "diff")
    _git(repo, "checkout", "--", ".")
    return diff


def make_fixture_repo(dest: Path) -> FixtureRepo:
    """The statkit repository at its base commit in ``dest`` (created), with the gold
    patch and the test patch as git diffs against it."""
    shutil.copytree(FIXTURE_DIR / "base", dest)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "statkit: mean and median")
    base_commit = _git(dest, "rev-parse", "HEAD").strip()
    return FixtureRepo(
        path=dest,
        base_commit=base_commit,
        patch=_diff_against_base(dest, FIXTURE_DIR / "fixed"),
        test_patch=_diff_against_base(dest, FIXTURE_DIR / "test_after"),
    )


def eval_script(base_commit: str, test_patch: str) -> str:
    """Same shape as the official eval scripts: reset the test file, apply the test
    patch, run the tests between the harness's output markers, reset again."""
    return "\n".join(
        [
            "#!/bin/bash",
            "set -uxo pipefail",
            "if [ -f /opt/miniconda3/bin/activate ]; then source /opt/miniconda3/bin/activate; conda activate testbed; fi",
            "cd /testbed",
            "git config --global --add safe.directory /testbed",
            "git status",
            f"git -c core.fileMode=false diff {base_commit}",
            f"git checkout {base_commit} {TEST_FILE}",
            f"git apply -v - <<'{HEREDOC}'",
            test_patch.rstrip("\n"),
            HEREDOC,
            ": '>>>>> Start Test Output'",
            f"python3 -m unittest -v {TEST_MODULE}",
            ": '>>>>> End Test Output'",
            f"git checkout {base_commit} {TEST_FILE}",
            "",
        ]
    )


def fixture_row(repo: FixtureRepo) -> dict[str, Any]:
    """The dataset row, with every field the 5.x harness reads plus the usual SWE-bench
    columns (JSON-encoded test lists, as on the hub)."""
    return {
        "instance_id": INSTANCE_ID,
        "repo": REPO,
        "base_commit": repo.base_commit,
        "version": VERSION,
        "problem_statement": (FIXTURE_DIR / "problem_statement.md").read_text(),
        "hints_text": "",
        "created_at": "2024-01-01T00:00:00Z",
        "environment_setup_commit": repo.base_commit,
        "patch": repo.patch,
        "test_patch": repo.test_patch,
        "FAIL_TO_PASS": json.dumps(FAIL_TO_PASS),
        "PASS_TO_PASS": json.dumps(PASS_TO_PASS),
        "image": official_image_name(INSTANCE_ID),
        "eval_script": eval_script(repo.base_commit, repo.test_patch),
        "log_parser": "parse_log_django",
        "eval_type": "pass_and_fail",
    }


DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY testbed /testbed
WORKDIR /testbed
# the harness runs `tail -f /dev/null` as PID 1, which ignores SIGTERM: without this every
# graded instance waits docker's full 15 s stop timeout during cleanup
STOPSIGNAL SIGKILL
RUN git config --global --add safe.directory /testbed && git status --short
"""


def _fixture_hash(base_image_id: str) -> str:
    h = hashlib.sha256(base_image_id.encode())
    h.update(DOCKERFILE.encode())
    for p in sorted(FIXTURE_DIR.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(FIXTURE_DIR)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:20]


def build_swebench_fixture(client: Any, base_image: str) -> tuple[dict[str, Any], str]:
    """Build (or reuse) the fixture's instance image on ``base_image`` and return
    ``(dataset_row, image_name)``. The image name follows the official rule, so code
    that derives names from instance ids finds it; the row also names it explicitly."""
    import docker.errors

    digest = _fixture_hash(client.images.get(base_image).id)
    image = official_image_name(INSTANCE_ID)
    with tempfile.TemporaryDirectory(prefix="cm-swebench-fixture-") as tmp:
        ctx = Path(tmp)
        repo = make_fixture_repo(ctx / "testbed")
        row = fixture_row(repo)
        try:
            existing = client.images.get(image)
            if existing.labels.get(FIXTURE_LABEL) == digest:
                return row, image
        except docker.errors.ImageNotFound:
            pass
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        client.images.build(
            path=str(ctx),
            tag=image,
            buildargs={"BASE": base_image},
            labels={FIXTURE_LABEL: digest},
            network_mode="none",
            rm=True,
            forcerm=True,
        )
    return row, image
