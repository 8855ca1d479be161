"""An outage is never an answer (issue 11, section 2): `codemonkeys solve` (the real CLI, the
local sandbox, so no Docker is needed) against a scripted provider that fails while a flag
file exists. The problem is left retryable with a clear status and reason; a rerun after
the outage resumes, pays no completed call twice, and finishes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from tests.conftest import CLI, FIXTURES, ROOT, make_git_repo

POLICY = FIXTURES / "policies" / "flaky_solver.py"
FAST = [
    "--set", "generation.samples=2",
    "--set", "generation.test_attempts=3",
    "--set", "generation.edit_attempts=3",
    "--set", "sandbox.pool_size=2",
    "--set", "sandbox.script_timeout_s=30",
    "--set", "context.rankings=1",
]  # fmt: skip


class Outage:
    def __init__(self, tmp_path: Path, stages: str, kind: str = "provider"):
        self.repo = tmp_path / "bumper"
        shutil.copytree(FIXTURES / "shell_project", self.repo)
        self.issue = (self.repo / "ISSUE.md").read_text()
        (self.repo / "ISSUE.md").unlink()
        make_git_repo(self.repo, {})
        self.run_dir = tmp_path / "run"
        self.flag = tmp_path / "provider-down"
        self.flag.touch()
        self.count = tmp_path / "answered"
        self.env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        self.env.update(
            PYTHONPATH=str(ROOT),
            COLUMNS="200",
            OUTAGE_FLAG=str(self.flag),
            OUTAGE_STAGES=stages,
            OUTAGE_KIND=kind,
            COUNT_FILE=str(self.count),
        )

    def solve(self, *extra: str) -> subprocess.CompletedProcess:
        model = [] if "--model" in extra else ["--model", f"scripted:{POLICY}"]
        args = ["solve", "--repo", str(self.repo), "--issue", self.issue, "--sandbox", "local",
                *model, "--run-dir", str(self.run_dir), *FAST, *extra]  # fmt: skip
        return subprocess.run(
            [CLI, *args], capture_output=True, text=True, timeout=300, env=self.env, cwd=ROOT
        )

    @property
    def problem_dir(self) -> Path:
        """The one problem's records (its id is the repo label + a digest of the issue)."""
        (pdir,) = (self.run_dir / "problems").iterdir()
        return pdir

    def record(self, name: str) -> dict:
        return json.loads((self.problem_dir / f"{name}.json").read_text())["data"]

    def trajectories(self) -> list[Path]:
        return sorted(self.problem_dir.glob("trajectory-*.json"))

    def assert_no_call_paid_twice(self) -> None:
        calls = [json.loads(x) for x in (self.run_dir / "calls.jsonl").read_text().splitlines()]
        hashes = Counter(c["request_hash"] for c in calls)
        assert max(hashes.values()) == 1
        answered = Counter(self.count.read_text().splitlines())
        assert max(answered.values()) == 1, answered.most_common(3)


def test_relevance_outage_stops_before_generation_and_a_rerun_finishes(tmp_path):
    o = Outage(tmp_path, stages="relevance")
    first = o.solve()
    out = first.stdout + first.stderr
    assert first.returncode != 0, out
    result = o.record("result")
    assert result["status"] == "error"
    assert "relevance scan failed on" in result["error"]
    context = o.record("context")
    assert context["missing_decisions"] == context["enumerated_files"] > 0
    assert context["packed"] == []
    assert o.trajectories() == []  # generation did not run blind
    assert not (o.run_dir / "chosen.patch").exists()

    o.flag.unlink()  # the provider is back
    again = o.solve()
    assert again.returncode == 0, again.stdout + again.stderr
    assert o.record("result")["status"] == "done"
    assert o.record("context")["missing_decisions"] == 0
    assert "patch=0" in (o.run_dir / "chosen.patch").read_text()
    o.assert_no_call_paid_twice()


def test_allow_missing_decisions_goes_on_without_them(tmp_path):
    """Asked to go on, generation runs on the incomplete (here: empty) context, and the
    outcome is final (done or no_candidates, whatever the model makes of it)."""
    o = Outage(tmp_path, stages="relevance")
    o.solve("--set", "context.allow_missing_decisions=true")
    context = o.record("context")
    assert context["missing_decisions"] > 0 and context["packed"] == []
    assert len(o.trajectories()) == 2  # generation ran
    assert o.record("result")["status"] in ("done", "no_candidates")


def test_generation_outage_is_not_no_candidates_and_a_rerun_resumes(tmp_path):
    o = Outage(tmp_path, stages="edits")
    first = o.solve()
    assert first.returncode != 0
    result = o.record("result")
    assert result["status"] == "error"  # never the final "no_candidates"
    assert "2 of 2 trajectories failed" in result["error"] and "HTTP 529" in result["error"]
    trajectories = [json.loads(p.read_text())["data"] for p in o.trajectories()]
    assert [t["status"] for t in trajectories] == ["error", "error"]
    assert all(t["state"] == "editing" for t in trajectories)  # the tests were written

    o.flag.unlink()
    again = o.solve()
    assert again.returncode == 0, again.stdout + again.stderr
    assert o.record("result")["status"] == "done"
    assert "patch=0" in (o.run_dir / "chosen.patch").read_text()
    o.assert_no_call_paid_twice()  # the testing calls of the first run were not repeated


def test_a_failing_selector_falls_back_to_the_votes_and_a_rerun_selects(tmp_path):
    o = Outage(tmp_path, stages="selection", kind="bug")
    first = o.solve()
    assert first.returncode == 0, first.stdout + first.stderr
    selection = o.record("selection")
    assert selection["fallback_kind"] == "selector-error"
    assert "RuntimeError: unexpected fault in the selection call" in selection["reason"]
    result = o.record("result")
    assert result["status"] == "done" and len(result["candidates"]) == 2
    assert result["chosen_id"] == selection["top_k"][0]
    assert "patch=0" in (o.run_dir / "chosen.patch").read_text()

    o.flag.unlink()
    again = o.solve()
    assert again.returncode == 0, again.stdout + again.stderr
    selection = o.record("selection")
    assert selection["fallback_kind"] is None
    assert selection["reason"].startswith("chosen by the selector")
    assert o.record("result")["selection_fallback"] is None
    o.assert_no_call_paid_twice()


def test_a_conversation_outgrowing_the_context_window_is_never_sent(tmp_path):
    """The window is known (here set in config): the call that would not fit is not sent,
    the trajectory ends in the recorded state context_length_exceeded, its last applied
    edit is still a candidate, and a rerun sends nothing (the state is final)."""
    o = Outage(tmp_path, stages="")
    o.env["PADDING_WORDS"] = "20000"  # about 16k tokens per editing answer
    long_editor = [
        "--model", f"scripted:{FIXTURES / 'policies' / 'long_editor.py'}",
        "--set", "models.capabilities.scripted={context_window=20000}",
        "--set", "generation.edit_max_output_tokens=1000",
        "--set", "generation.edit_attempts=6",
    ]  # fmt: skip
    first = o.solve(*long_editor)
    assert first.returncode == 0, first.stdout + first.stderr
    trajectories = [json.loads(p.read_text())["data"] for p in o.trajectories()]
    assert [t["status"] for t in trajectories] == ["context_length_exceeded"] * 2
    for t in trajectories:
        assert t["state"] == "finished" and t["edit_attempts"] == 1  # the 2nd never went out
        assert "context window is 20,000" in t["error"] and "not sent" in t["error"]
    result = o.record("result")
    assert result["status"] == "done"
    assert "patch=0" in (o.run_dir / "chosen.patch").read_text()  # the last good edit
    answered = o.count.read_text().splitlines()
    assert sum(line.startswith("edits|") for line in answered) == 2

    again = o.solve(*long_editor)
    assert again.returncode == 0
    assert o.count.read_text().splitlines() == answered  # nothing sent again


def test_a_real_sdk_outage_in_the_relevance_scan_is_retried_by_the_next_run(tmp_path):
    """The relevance model is an OpenAI-compatible server (the real openai SDK against the
    local wire-format server) that answers 529 overloaded: after its retries the files are
    missing decisions, the problem is `error`, not a blind run; once the server is back the
    rerun asks only those files and finishes."""
    from tests.fakes.llm_server import (
        OPENAI_PATH,
        LLMServer,
        Reply,
        openai_chat_completion,
        openai_error,
    )

    o = Outage(tmp_path, stages="")
    with LLMServer() as server:
        server.set_default(OPENAI_PATH, Reply(529, openai_error(529, "Overloaded")))
        relevance = [
            "--relevance-model", "openai/local-relevance",
            "--set", f"models.relevance.base_url={server.openai_url}",
            "--set", "models.relevance.max_retries=1",
            "--set", "models.relevance.backoff_initial_s=0.01",
        ]  # fmt: skip
        first = o.solve(*relevance)
        assert first.returncode != 0
        result = o.record("result")
        assert (
            result["status"] == "error" and "relevance scan failed on 2 file(s)" in result["error"]
        )
        failed_requests = len(server.requests(OPENAI_PATH))
        assert failed_requests == 2 * 2  # two files, one retry each
        assert o.trajectories() == []

        server.set_default(
            OPENAI_PATH,
            Reply(
                200, openai_chat_completion("SUMMARY: the version bump script.\nDECISION: RELEVANT")
            ),
        )
        again = o.solve(*relevance)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(server.requests(OPENAI_PATH)) == failed_requests + 2
    assert o.record("result")["status"] == "done"
    assert o.record("context")["missing_decisions"] == 0
    o.assert_no_call_paid_twice()
