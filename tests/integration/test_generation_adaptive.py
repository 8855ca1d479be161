"""Adaptive sampling in ``run_generation`` with real Docker sandboxes and scripted models
(the fixture repository of ``test_generation``): a failed trajectory holds the wave's
decision until a rerun retries it; tests that never reproduce the issue widen the
temperature ladder instead of stopping."""

from __future__ import annotations

import json

import pytest

from codemonkeys.generation.stage import run_generation
from codemonkeys.sandbox import SandboxPool
from codemonkeys.store import RunStore
from tests.conftest import make_git_repo
from tests.integration.test_generation import REPO_FILES, make_config, make_hub, make_spec, problem

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def pool(tmp_path_factory, sandbox_image, docker_client):
    path = tmp_path_factory.mktemp("genrepo") / "repo"
    sha = make_git_repo(path, REPO_FILES)
    p = SandboxPool(make_spec((path, sha), sandbox_image, "adaptive"), size=2)
    yield p
    p.close()


def _adaptive(store: RunStore) -> dict | None:
    path = store.problem_dir("stats-mean") / "adaptive.json"
    return json.loads(path.read_text())["data"] if path.exists() else None


def _config(policy: str, **gen):
    return make_config(policy, samples=6, adaptive=True, adaptive_wave=2, **gen)


def _run(store: RunStore, config, sandboxes):
    hub = make_hub(store, config)
    return run_generation(problem(), "(packed context)", hub, sandboxes, store, config)


def test_a_failed_trajectory_holds_the_decision_until_the_rerun(tmp_path, pool, monkeypatch):
    store = RunStore(tmp_path / "run")
    monkeypatch.setenv("GEN_POLICY_FAIL_KEYS", "traj-1")
    first = _run(store, _config("gen_fix.py"), pool)
    assert len(first.trajectories) == 2 and first.errors  # the wave ended with a failure
    assert _adaptive(store) is None  # ...so nothing was decided on it

    monkeypatch.delenv("GEN_POLICY_FAIL_KEYS")
    second = _run(store, _config("gen_fix.py"), pool)
    assert not second.errors and len(second.trajectories) == 2
    [decision] = _adaptive(store)["decisions"]
    assert decision["action"] == "stop" and decision["reason"].startswith("agreement")
    assert decision["evidence"]["reproducing_tests"] == 1
    assert not (store.problem_dir("stats-mean") / "trajectory-2.json").exists()


def test_tests_that_never_reproduce_widen_the_ladder(tmp_path, pool):
    store = RunStore(tmp_path / "run")
    result = _run(store, _config("gen_norepro.py", temperatures=[0.2, 0.6]), pool)
    decisions = _adaptive(store)["decisions"]
    assert [d["action"] for d in decisions] == ["widen", "continue", "stop"]
    assert decisions[0]["reason"] == "no test reproduces the issue"
    assert decisions[-1]["reason"].startswith("budget")
    # wave 0 at the first temperature only; from wave 1 on, both
    assert [t.temperature for t in result.trajectories] == [0.2, 0.2, 0.2, 0.6, 0.2, 0.6]
