"""An answer the output token limit cut off is a beginning, never a whole answer: every
stage (relevance, ranking, testing, editing, selection) recognises it, records it as cut,
does not read it (even when it begins with a well-formed answer) and handles it as it
handles a malformed answer: a correction, then the next answer. The stand-in is the
rambler policy (tests/fixtures/policies/rambler.py): a model that keeps musing after its
answer until ``max_tokens`` stops it, reported cut like a provider's ``finish_reason``
"length"; once told, it answers whole."""

from __future__ import annotations

import json

import pytest

from codemonkeys.candidates import Candidate
from codemonkeys.config import Config, SelectionConfig
from codemonkeys.context.stage import run_context
from codemonkeys.execution import ExecutionCache, Script
from codemonkeys.generation.runtime import GenerationRuntime, OriginalFiles, PrefixWarmer
from codemonkeys.generation.trajectory import new_record
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.sandbox import SandboxPool, SandboxSpec
from codemonkeys.selection.matrix import ORIGINAL, Cell
from codemonkeys.selection.selector import run_selector
from codemonkeys.store import RunStore
from tests.conftest import FIXTURES, make_git_repo
from tests.integration.test_generation import REPO_FILES, make_config, make_hub, problem
from tests.unit.test_context_stage import PROBLEM, RELEVANT, Env, repo  # noqa: F401 (fixture)

RAMBLER = FIXTURES / "policies" / "rambler.py"
POLICIES = FIXTURES / "policies"


def _ramble(monkeypatch, inner) -> None:
    monkeypatch.setenv("RAMBLER_INNER", str(inner))


# -- relevance and ranking -------------------------------------------------------------


def test_relevance_never_reads_a_cut_answer_and_asks_again(tmp_path, repo, monkeypatch):  # noqa: F811
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {})
    _ramble(monkeypatch, env.rel)
    env.config.models.relevance.model = f"scripted:{RAMBLER}"
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    # every first answer began with a whole decision, then rambled on until it was cut:
    # none was read; the corrected second answers were
    assert [f.path for f in rec.relevant] == RELEVANT
    decisions = env.decisions()
    assert decisions and all(d["attempts"] == 2 and d["cut_answers"] == 1 for d in decisions)
    calls = CallLog(env.store).records()
    relevance = [c for c in calls if c["stage"] == "relevance"]
    assert [c["cut"] for c in relevance].count(True) == len(decisions)
    prompts = [p for p in env.store.read_prompts("p1") if p["stage"] == "relevance"]
    corrected = [p["messages"][-1]["content"] for p in prompts if len(p["messages"]) > 2]
    assert corrected and all("cut off at the 512-token limit" in c for c in corrected)


def test_a_file_whose_answers_are_all_cut_is_a_parse_error_naming_the_cut(
    tmp_path,
    repo,  # noqa: F811
    monkeypatch,
):
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {}, relevance_retries=0)
    _ramble(monkeypatch, env.rel)
    env.config.models.relevance.model = f"scripted:{RAMBLER}"
    env.config.context.relevance_max_output_tokens = 300
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    assert rec.relevant == [] and rec.relevance_counts == {"parse_error": 11}
    for d in env.decisions():
        assert d["status"] == "parse_error", d
        assert d["error"] == "answer cut at the output limit (300 tokens)"


def test_ranking_never_reads_a_cut_list(tmp_path, repo, monkeypatch):  # noqa: F811
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {}, rankings=2, ranking_retries=0)
    _ramble(monkeypatch, env.rank)
    env.config.models.primary.model = f"scripted:{RAMBLER}"
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    assert [r.status for r in rec.rankings] == ["parse_error", "parse_error"]
    assert all(r.cut_answers == 1 and "cut at the output limit" in r.error for r in rec.rankings)
    assert rec.ranking_fallback

    retried = Env(tmp_path / "again", {"relevant": RELEVANT}, {}, rankings=2)
    _ramble(monkeypatch, retried.rank)
    retried.config.models.primary.model = f"scripted:{RAMBLER}"
    rec = run_context(PROBLEM, dest, paths, retried.hub, retried.store, retried.config)
    assert [(r.status, r.attempts, r.cut_answers) for r in rec.rankings] == [("ok", 2, 1)] * 2
    assert not rec.ranking_fallback


# -- testing and editing -----------------------------------------------------------------


@pytest.fixture
def generation(tmp_path, monkeypatch):
    """A runtime whose model is the rambler over the happy-path policy (gen_fix)."""
    _ramble(monkeypatch, POLICIES / "gen_fix.py")
    repo_dir = tmp_path / "repo"
    sha = make_git_repo(repo_dir, REPO_FILES)
    pool = SandboxPool(SandboxSpec(kind="local", repo_path=repo_dir, base_commit=sha), size=1)
    store = RunStore(tmp_path / "run")

    def runtime(**gen) -> GenerationRuntime:
        config = make_config("rambler.py", samples=1, **gen)
        hub = make_hub(store, config)
        return GenerationRuntime(
            problem=problem(),
            config=config,
            test_model=hub.model("primary", problem_id=problem().id, stage="tests"),
            edit_model=hub.model("primary", problem_id=problem().id, stage="edits"),
            cache=ExecutionCache(pool.lease, timeout=config.sandbox.script_timeout_s),
            files=OriginalFiles(repo_dir, None),
            warmer=PrefixWarmer(enabled=False),
        )

    yield runtime
    pool.close()


def test_testing_and_editing_correct_a_cut_answer_and_go_on(generation):
    from codemonkeys.generation.trajectory import run_trajectory

    rt = generation(test_max_output_tokens=700, edit_max_output_tokens=900)
    rec = new_record(rt, 0)
    run_trajectory(rt, rec)
    rt.close()
    # each conversation's first answer held a whole test / edit before it was cut: not used
    assert rec.corrections == ["answer_cut", "answer_cut"]
    assert (rec.status, rec.test_approved, rec.edit_approved) == ("done", True, True)
    for messages, limit in ((rec.test_messages, 700), (rec.edit_messages, 900)):
        first = next(m for m in messages if m.role == "assistant")
        assert first.cut and len(first.content) == limit * 4
        correction = messages[messages.index(first) + 1].content
        assert f"cut off at the {limit}-token limit" in correction
    assert [t.attempt for t in rec.tests] == [2]  # the script came from the second answer
    assert [e.attempt for e in rec.edits] == [2]


def test_a_trajectory_whose_answers_are_all_cut_ends_without_a_test_saying_why(generation):
    from codemonkeys.generation.trajectory import run_trajectory

    rt = generation()
    rt.gen.test_attempts = 1
    rec = new_record(rt, 0)
    run_trajectory(rt, rec)
    rt.close()
    assert rec.tests == [] and rec.status == "no_test"
    assert "answer_cut" in rec.error, rec.error


# -- selection ---------------------------------------------------------------------------


def _select(tmp_path, attempts: int):
    config = Config(selection=SelectionConfig(attempts=attempts, max_output_tokens=600))
    config.models.primary.model = f"scripted:{RAMBLER}"
    hub = ModelHub(config.models, CallLog(RunStore(tmp_path / "run")), CostTracker())
    candidates = [Candidate(id="c1", patch="diff a\n"), Candidate(id="c2", patch="diff b\n")]

    def run_test(script: Script) -> dict[str, Cell]:  # c2 fixes it, whatever the test
        return {
            ORIGINAL: Cell(verdict="unfixed", exit_code=2),
            "c1": Cell(verdict="unfixed", exit_code=2),
            "c2": Cell(verdict="fixed", exit_code=0),
        }

    return run_selector(
        issue="median of an even-length list is wrong",
        candidates=candidates,
        votes={"c1": 1, "c2": 1},
        files=[],
        example_test=None,
        example_results=None,
        model=hub.model("primary", problem_id="p", stage="selection"),
        run_test=run_test,
        config=config.selection,
        templates=config.prompt_templates(),
    )


def test_the_selector_corrects_a_cut_reply_and_never_runs_its_test(tmp_path, monkeypatch):
    _ramble(monkeypatch, POLICIES / "sel_discriminate.py")
    outcome = _select(tmp_path, attempts=4)
    assert outcome.corrections == ["answer-cut"]
    assert len(outcome.tests) == 1  # the test of the cut reply was not run
    assert (outcome.chosen_id, outcome.fallback) == ("c2", False)
    cut = [m for m in outcome.transcript if m.cut]
    assert len(cut) == 1 and len(cut[0].content) == 600 * 4


def test_a_selector_out_of_attempts_after_a_cut_reply_falls_back_saying_so(tmp_path, monkeypatch):
    _ramble(monkeypatch, POLICIES / "sel_discriminate.py")
    outcome = _select(tmp_path, attempts=1)
    assert outcome.fallback and outcome.fallback_kind == "answer-cut"
    assert "cut at the output limit" in outcome.reason and outcome.tests == []


def test_the_rambler_answers_whole_once_told(monkeypatch, tmp_path):
    """The stand-in itself: cut first, whole after the correction (what the tests above
    rely on)."""
    from codemonkeys.llm.base import Message
    from codemonkeys.llm.scripted import ScriptedModel

    _ramble(monkeypatch, POLICIES / "gen_fix.py")
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("RAMBLER_LOG", str(log))
    model = ScriptedModel(RAMBLER)
    ask = [Message(role="user", content="write a test")]
    first = model.complete(ask, temperature=0, max_tokens=100, stage="tests")
    assert first.cut and len(first.text) == 400 and "<test>" in first.text
    ask += [Message(role="assistant", content=first.text, cut=True)]
    ask += [Message(role="user", content="that was cut")]
    second = model.complete(ask, temperature=0, max_tokens=100, stage="tests")
    assert not second.cut and second.text.rstrip().endswith("</test>")
    assert [json.loads(line)["cut"] for line in log.read_text().splitlines()] == [True, False]


def test_show_lists_every_unusable_answer_with_its_reason(tmp_path, repo, monkeypatch):  # noqa: F811
    """The relevance answers cut before a correction that worked, the rankings cut for
    good: each counted, each with its reason, on the ``show`` page."""
    from codemonkeys.records import Record, read_record_data
    from codemonkeys.report.unusable import unusable_answers
    from codemonkeys.show import render_show

    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {}, rankings=1, ranking_retries=0)
    _ramble(monkeypatch, json.dumps({"relevance": str(env.rel), "ranking": str(env.rank)}))
    env.config.models.relevance.model = f"scripted:{RAMBLER}"
    env.config.models.primary.model = f"scripted:{RAMBLER}"
    run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    pdir = env.store.problem_dir("p1")
    relevance = read_record_data(pdir, Record.RELEVANCE)
    context = read_record_data(pdir, Record.CONTEXT)
    found = unusable_answers(relevance, context, [], {})
    by_stage = {s: [u for u in found if u.stage == s] for s in ("relevance", "ranking")}
    assert len(by_stage["relevance"]) == 10  # one row per file asked (11 files, 10 contents)
    for u in by_stage["relevance"]:
        assert u.count == 1
        assert (
            u.reason == "read only after a correction; 1 of 1 answers cut at the output token limit"
        )
    [ranking] = by_stage["ranking"]
    assert ranking.reason.startswith("answer cut at the output limit (4096 tokens)")
    page = render_show(env.store.root, "p1")
    assert "Unusable answers (11)" in page
    assert "<code>src/app/core.py</code></td><td>read only after a correction" in page
