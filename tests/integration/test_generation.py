"""Generation end to end: real Docker sandboxes, a fixture repository with a real bug
(``stats.mean`` divides by len + 1, in a file without a trailing newline) and scripted
models. Checks the patch really fixes the bug with the repository's own test suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codemonkeys.config import Config, EndpointConfig, GenerationConfig, ModelsConfig, SandboxConfig
from codemonkeys.errors import BudgetExceeded
from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.generation.stage import run_generation, run_testing_state_machine
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.problem import Problem
from codemonkeys.sandbox import SandboxPool, SandboxSpec
from codemonkeys.store import RunStore
from tests.conftest import ROOT, make_git_repo

pytestmark = pytest.mark.docker

POLICIES = ROOT / "tests" / "fixtures" / "policies"
TEST_LABEL = "org.codemonkeys.gentest"

REPO_FILES = {
    "stats/__init__.py": (
        '"""Small statistics helpers."""\n\n\n'
        "def mean(values):\n"
        '    """Arithmetic mean of a non-empty sequence of numbers."""\n'
        "    total = 0\n"
        "    for v in values:\n"
        "        total += v\n"
        "    return total / (len(values) + 1)"  # no trailing newline, on purpose
    ),
    "tests/__init__.py": "",
    "tests/test_stats.py": (
        "import unittest\n\nfrom stats import mean\n\n\n"
        "class MeanTest(unittest.TestCase):\n"
        "    def test_mean(self):\n"
        "        self.assertEqual(mean([1, 2, 3]), 2)\n"
    ),
}
ISSUE = "stats.mean([1, 2, 3]) returns 1.5, but the mean of 1, 2 and 3 is 2."
REPO_TEST = "python -m unittest tests.test_stats"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("genrepo") / "repo"
    sha = make_git_repo(path, REPO_FILES)
    return path, sha


def make_spec(repo: tuple[Path, str], image: str, tag: str) -> SandboxSpec:
    return SandboxSpec(
        kind="docker",
        image=image,
        workdir="/repo",
        repo_path=repo[0],
        base_commit=repo[1],
        labels={TEST_LABEL: tag},
        memory="512m",
    )


@pytest.fixture(scope="module")
def pool(repo, sandbox_image, docker_client):
    p = SandboxPool(make_spec(repo, sandbox_image, "main"), size=2)
    yield p
    p.close()


def make_config(policy: str, *, samples: int = 2, timeout: float = 3.0, **gen) -> Config:
    return Config(
        models=ModelsConfig(
            primary=EndpointConfig(model=f"scripted:{POLICIES / policy}", max_concurrency=8)
        ),
        generation=GenerationConfig(samples=samples, test_attempts=4, edit_attempts=5, **gen),
        sandbox=SandboxConfig(script_timeout_s=timeout),
    )


def make_hub(store: RunStore, config: Config) -> ModelHub:
    return ModelHub(config.models, CallLog(store), CostTracker())


def problem() -> Problem:
    return Problem(id="stats-mean", repo="local/stats", issue=ISSUE)


def repo_tests_pass(pool: SandboxPool, patch: str) -> bool:
    with pool.lease() as sb:
        if patch:
            assert sb.apply_patch(patch).ok
        return sb.run(REPO_TEST, timeout=60).exit_code == 0


def test_trajectory_writes_failing_test_then_fix(tmp_path, pool, monkeypatch):
    monkeypatch.setenv("GEN_POLICY_FAIL_KEYS", "traj-2")
    config = make_config("gen_fix.py", samples=3, temperatures=[0.2, 0.6])
    store = RunStore(tmp_path / "run")
    events: list[tuple[str, dict]] = []
    result = run_generation(
        problem(),
        "(packed context)",
        make_hub(store, config),
        pool,
        store,
        config,
        on_event=lambda kind, **info: events.append((kind, info)),
    )
    by_index = {t.index: t for t in result.trajectories}
    ok = by_index[0]
    assert (ok.state, ok.status, ok.test_approved, ok.edit_approved) == (
        "finished",
        "done",
        True,
        True,
    )
    assert [t.temperature for t in result.trajectories] == [0.2, 0.6, 0.2]
    # the test failed on the original (exit 2) and passed on the edited code (exit 0)
    assert ok.tests[0].original.exit_code == 2
    assert [(p.original.exit_code, p.edited.exit_code) for p in ok.pairs] == [(2, 0)]
    assert "\\ No newline at end of file" in ok.final_patch
    # the patch really fixes the bug: the repository's own tests agree
    assert not repo_tests_pass(pool, "")
    assert repo_tests_pass(pool, ok.final_patch)
    # one trajectory's model error is recorded there; the others finish
    assert by_index[2].status == "error" and "endpoint is down" in by_index[2].error
    assert by_index[1].status == "done"
    # candidates: identical patches merged, sources kept
    assert len(result.candidates.candidates) == 1
    assert result.candidates.candidates[0].sources == ["codemonkeys:traj-0", "codemonkeys:traj-1"]
    assert len(result.candidates.tests) == 1
    # records saved per trajectory with costs per stage; progress events
    saved = store.load_record(
        "stats-mean", "trajectory-0", TrajectoryRecord, config.fingerprint("generation")
    )
    assert saved is not None and saved.final_patch == ok.final_patch
    assert set(saved.usage) == {"tests", "edits"}
    kinds = [k for k, _ in events]
    assert kinds.count("trajectory_started") == 3 and kinds.count("trajectory_finished") == 3
    # distinct requests per trajectory (key), each answered once
    calls = store.read_jsonl(store.root / "calls.jsonl")
    hashes = [c["request_hash"] for c in calls]
    assert len(hashes) == len(set(hashes))
    assert {c["key"] for c in calls} == {"traj-0", "traj-1", "traj-2"}


def test_malformed_outputs_are_survived(tmp_path, pool, repo):
    config = make_config("gen_malformed.py", samples=1)
    store = RunStore(tmp_path / "run")
    result = run_generation(
        problem(),
        "(packed context)",
        make_hub(store, config),
        pool,
        store,
        config,
        repo_dir=repo[0],
    )
    t = result.trajectories[0]
    assert t.status == "done", t.error
    assert t.corrections == ["no_tags", "multiple_edits", "edit_error", "edit_error"]
    user_test = [m.content for m in t.test_messages if m.role == "user"]
    assert "none of the expected blocks" in user_test[0]
    assert "did not finish within 3 seconds" in user_test[1] and "waiting for input" in user_test[1]
    assert t.tests[0].original.timed_out and t.tests[1].original.exit_code == 2
    user_edit = [m.content for m in t.edit_messages if m.role == "user"]
    assert "2 different <edit> blocks" in user_edit[1]
    assert "outside the repository" in user_edit[2] and "../outside.py" in user_edit[2]
    assert "not found" in user_edit[3] and "return total / (len(values) + 1)" in user_edit[3]
    assert "On the EDITED code: exit code 0" in user_edit[4]
    assert len(t.edits) == 3 and t.edits[0].errors and t.edits[1].errors and t.edits[2].patch
    assert t.edit_attempts == 5 and t.test_attempts == 4
    assert repo_tests_pass(pool, t.final_patch)


def test_testing_state_machine_alone(tmp_path, pool):
    config = make_config("gen_fix.py", samples=1)
    store = RunStore(tmp_path / "run")
    rec = run_testing_state_machine(
        problem(), make_hub(store, config), config, pool=pool, store=store
    )
    assert rec.test_approved and rec.final_test is not None and rec.state == "editing"
    assert rec.tests[-1].original.exit_code == 2
    assert store.read_json(store.problem_dir("stats-mean") / "tests-0.json") is not None


def test_budget_exceeded_stops_cleanly_and_resumes(tmp_path, pool, monkeypatch):
    config = make_config("gen_fix.py", samples=2)
    store = RunStore(tmp_path / "run")
    fp = config.fingerprint("generation")
    monkeypatch.setenv("GEN_POLICY_BUDGET_KEYS", "traj-1")
    with pytest.raises(BudgetExceeded):
        run_generation(problem(), "(packed context)", make_hub(store, config), pool, store, config)
    saved = store.load_record("stats-mean", "trajectory-1", TrajectoryRecord, fp)
    assert saved is not None and saved.state == "editing" and saved.status == "running"
    assert saved.test_approved  # the work done before the cap is kept
    # a later invocation (cap raised) continues from the saved state
    monkeypatch.delenv("GEN_POLICY_BUDGET_KEYS")
    result = run_generation(
        problem(), "(packed context)", make_hub(store, config), pool, store, config
    )
    assert [t.status for t in result.trajectories] == ["done", "done"]


DRIVER = """
import sys
from pathlib import Path
from codemonkeys.config import Config
from codemonkeys.generation.stage import run_generation
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.problem import Problem
from codemonkeys.sandbox import SandboxPool, SandboxSpec
from codemonkeys.store import RunStore

spec = SandboxSpec.model_validate_json(Path(sys.argv[1]).read_text())
config = Config.model_validate_json(Path(sys.argv[2]).read_text())
store = RunStore(Path(sys.argv[3]))
problem = Problem.model_validate_json(Path(sys.argv[4]).read_text())
with SandboxPool(spec, size=2) as pool:
    hub = ModelHub(config.models, CallLog(store), CostTracker())
    run_generation(problem, "(packed context)", hub, pool, store, config)
print("FINISHED")
"""


def _normalise(obj):
    if isinstance(obj, dict):
        return {
            k: _normalise(v) for k, v in obj.items() if k not in ("seconds", "timing", "saved_at")
        }
    if isinstance(obj, list):
        return [_normalise(x) for x in obj]
    return obj


def _run_driver(
    tmp_path: Path,
    run_dir: Path,
    spec: SandboxSpec,
    config: Config,
    *,
    kill_after_calls: int | None,
):
    files = {
        "spec.json": spec.model_dump_json(),
        "config.json": config.model_dump_json(),
        "problem.json": problem().model_dump_json(),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "GEN_POLICY_SLEEP": "0.4", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(tmp_path / "driver.py"),
            str(tmp_path / "spec.json"),
            str(tmp_path / "config.json"),
            str(run_dir),
            str(tmp_path / "problem.json"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after_calls is None:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0 and "FINISHED" in out, err[-3000:]
        return
    calls = run_dir / "calls.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if calls.is_file() and len(calls.read_text().splitlines()) >= kill_after_calls:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        f"the run ended before it could be killed: {proc.communicate()[1][-3000:]}"
    )
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def test_kill_and_resume_mid_trajectory(tmp_path, repo, sandbox_image, docker_client):
    spec = make_spec(repo, sandbox_image, "resume")
    config = make_config("gen_fix.py", samples=2)
    try:
        killed = tmp_path / "killed"
        _run_driver(tmp_path, killed, spec, config, kill_after_calls=5)
        n_before = len((killed / "calls.jsonl").read_text().splitlines())
        assert n_before < 8  # 2 trajectories x 4 calls: killed mid-way
        _run_driver(tmp_path, killed, spec, config, kill_after_calls=None)
        clean = tmp_path / "clean"
        _run_driver(tmp_path, clean, spec, config, kill_after_calls=None)

        calls = [
            json.loads(x) for x in (killed / "calls.jsonl").read_text().splitlines() if x.strip()
        ]
        hashes = [c["request_hash"] for c in calls]
        assert len(hashes) == len(set(hashes)), "a completed call was repeated after resume"
        assert len(hashes) == 8
        for i in range(2):
            a = json.loads((killed / "problems/stats-mean" / f"trajectory-{i}.json").read_text())
            b = json.loads((clean / "problems/stats-mean" / f"trajectory-{i}.json").read_text())
            assert _normalise(a) == _normalise(b)
            assert a["data"]["status"] == "done"
    finally:
        for c in docker_client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=resume"}):
            c.remove(force=True)
