"""run_context end to end with scripted relevance and ranking models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codemonkeys.config import Config, ContextConfig, EndpointConfig, ModelsConfig, Price
from codemonkeys.context.records import ContextRecord
from codemonkeys.context.relevance import DECISIONS_FILE
from codemonkeys.context.stage import run_context
from codemonkeys.errors import BudgetExceeded
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.problem import Gold, Problem
from codemonkeys.sandbox.gittree import export_host_tree
from codemonkeys.store import RunStore
from tests.fixtures.context_repo import ISSUE, build_context_repo, install_policy

RELEVANT = ["src/app/core.py", "src/app/dup_a.py", "src/app/dup_b.py", "web/main.js"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("ctx")
    sha = build_context_repo(root / "repo")
    dest = root / "export"
    return dest, export_host_tree(root / "repo", sha, dest)


class Env:
    def __init__(
        self,
        tmp: Path,
        rel_spec: dict,
        rank_spec: dict,
        *,
        price: float = 0.0,
        cap: float | None = None,
        **ctx,
    ):
        self.rel = install_policy(tmp / "rel", "context_relevance", json.dumps(rel_spec))
        self.rank = install_policy(tmp / "rank", "context_ranking", json.dumps(rank_spec))
        prices = {"scripted": Price(input=price, output=0.0)} if price else {}
        self.config = Config(
            models=ModelsConfig(
                primary=EndpointConfig(model=f"scripted:{self.rank}", max_concurrency=2),
                relevance=EndpointConfig(model=f"scripted:{self.rel}", max_concurrency=4),
                prices=prices,
            ),
            context=ContextConfig(max_file_bytes=50_000, **ctx),
        )
        self.store = RunStore(tmp / "run")
        self.cap = cap
        self.hub = self.new_hub()

    def new_hub(self) -> ModelHub:
        return ModelHub(self.config.models, CallLog(self.store), CostTracker(max_run_usd=self.cap))

    def rel_calls(self) -> list[str]:
        f = self.rel.parent / "calls.txt"
        return f.read_text().split() if f.exists() else []

    def rank_calls(self) -> list[str]:
        f = self.rank.parent / "calls.txt"
        return f.read_text().split() if f.exists() else []

    def decisions(self, pid: str = "p1") -> list[dict]:
        return self.store.read_jsonl(self.store.problem_dir(pid) / DECISIONS_FILE)


PROBLEM = Problem(id="p1", repo="fixture/ctx", issue=ISSUE)


def test_full_stage_packs_ranked_relevant_files(tmp_path, repo):
    dest, paths = repo
    rank = {
        "rankings": {"ranking-0": '```json\n["web/main.js", "src/app/core.py", "ghost.py"]\n```'}
    }
    env = Env(tmp_path, {"relevant": RELEVANT}, rank)
    gold = Gold(patch="diff --git a/src/app/core.py b/src/app/core.py\n--- a\n+++ b\n")
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config, gold=gold)

    assert [f.path for f in rec.relevant] == RELEVANT
    assert rec.relevance_counts == {"not_relevant": 7, "relevant": 4}
    # identical files dup_a/dup_b asked once; 11 enumerated files -> 10 relevance calls
    assert sorted(env.rel_calls()) == sorted(set(env.rel_calls()))
    assert len(env.rel_calls()) == 10
    assert env.rank_calls() == ["ranking-0", "ranking-1", "ranking-2"]
    assert rec.rankings[0].invented == ["ghost.py"]
    # ranking-1/2 list the files in (sorted) prompt order. Mean relative ranks:
    # core (.5+0+0)/3, dup_a (1+.25+.25)/3 = web (0+.75+.75)/3 (tie: relevance order), dup_b
    assert rec.ranking == ["src/app/core.py", "src/app/dup_a.py", "web/main.js", "src/app/dup_b.py"]
    assert set(rec.paths) == set(RELEVANT)
    assert rec.total_tokens == sum(f.tokens for f in rec.packed) <= rec.packing_budget
    text = rec.render()
    assert "### src/app/core.py\n```python\n" in text and "def parse_date(text):" in text
    assert rec.metrics is not None and rec.metrics["recall"] == 1.0
    assert rec.metrics["relevant_files"] == 4.0 and rec.metrics["tokens_read"] > 0
    # gold data never reached a prompt
    prompts = json.dumps(env.store.read_prompts("p1"))
    assert "diff --git" not in prompts and "gold" not in prompts.lower()


def test_resume_reuses_records_and_decisions(tmp_path, repo):
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {})
    first = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    n_rel, n_rank = len(env.rel_calls()), len(env.rank_calls())
    again = run_context(PROBLEM, dest, paths, env.new_hub(), env.store, env.config)
    assert again == first
    assert (len(env.rel_calls()), len(env.rank_calls())) == (n_rel, n_rank)
    # a changed relevance config recomputes the record, but the per-file decisions (same
    # content, issue, model, prompt and way of asking) come from the decisions file
    env.config.context.exclude_globs = ["nothing/*"]
    env.config.context.token_budget = 64_000
    changed = run_context(PROBLEM, dest, paths, env.new_hub(), env.store, env.config)
    assert len(env.rel_calls()) == n_rel
    assert changed.token_budget == 64_000 and set(changed.paths) == set(first.paths)
    assert (env.store.problem_dir("p1") / "stale").is_dir()
    # a new temperature may change an answer: every file is asked again
    env.config.context.relevance_temperature = 0.3
    run_context(PROBLEM, dest, paths, env.new_hub(), env.store, env.config)
    assert len(env.rel_calls()) == 2 * n_rel


def test_parse_failure_then_correction_then_parse_error(tmp_path, repo):
    dest, paths = repo
    spec = {"relevant": RELEVANT, "garbage": {"src/app/core.py": 1, "web/main.js": 5}}
    env = Env(tmp_path, spec, {})
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    calls = env.rel_calls()
    assert calls.count("src/app/core.py") == 2  # garbage, correction, ok
    assert calls.count("web/main.js") == 2  # garbage twice (relevance_retries=1)
    assert "src/app/core.py" in [f.path for f in rec.relevant]
    assert rec.parse_errors == ["web/main.js"]  # recorded, not "not relevant"
    assert rec.relevance_counts["parse_error"] == 1
    assert "web/main.js" not in rec.paths
    # the correction turn carried the previous answer and the correction prompt
    prompts = [p for p in env.store.read_prompts("p1") if len(p["messages"]) == 4]
    assert prompts and "did not contain a decision" in prompts[0]["messages"][3]["content"]


def test_model_error_for_one_file_is_recorded_and_retried_on_resume(tmp_path, repo):
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT, "errors": ["cmd/tool.go"]}, {})
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    assert rec.errors == ["cmd/tool.go"] and len(rec.relevant) == 4
    (env.rel.parent / "spec.json").write_text(json.dumps({"relevant": RELEVANT}))
    before = len(env.rel_calls())
    rec2 = run_context(PROBLEM, dest, paths, env.new_hub(), env.store, env.config)
    assert env.rel_calls()[before:] == ["cmd/tool.go"]  # only the failed file asked again
    assert rec2.errors == [] and rec2.relevance_counts["not_relevant"] == 7


def test_unparsable_rankings_fall_back_to_relevance_order(tmp_path, repo):
    dest, paths = repo
    garbage = {f"ranking-{i}": 9 for i in range(3)}
    env = Env(tmp_path, {"relevant": RELEVANT}, {"garbage": garbage}, ranking_retries=1)
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    assert len(env.rank_calls()) == 6  # 3 rankings x (1 + 1 retry)
    assert all(a.status == "parse_error" for a in rec.rankings)
    assert rec.ranking_fallback and rec.ranking == RELEVANT


def test_retry_rescues_a_ranking(tmp_path, repo):
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {"garbage": {"ranking-1": 1}}, rankings=2)
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    assert [a.status for a in rec.rankings] == ["ok", "ok"] and rec.rankings[1].attempts == 2
    assert not rec.ranking_fallback


def test_budget_exceeded_stops_and_resume_finishes(tmp_path, repo):
    dest, paths = repo
    # every call costs about $0.0x; the cap is hit after a few files
    env = Env(tmp_path, {"relevant": RELEVANT}, {}, price=200.0, cap=0.05)
    with pytest.raises(BudgetExceeded):
        run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    done = env.decisions()
    assert 0 < len(done) < 10
    assert not (env.store.problem_dir("p1") / "context.json").exists()
    env.cap = None
    rec = run_context(PROBLEM, dest, paths, env.new_hub(), env.store, env.config)
    assert len(env.rel_calls()) == 10  # nothing asked twice
    assert isinstance(rec, ContextRecord) and len(rec.relevant) == 4


def test_large_file_is_outlined_for_relevance(tmp_path, repo):
    dest, paths = repo
    env = Env(tmp_path, {"relevant": RELEVANT}, {}, relevance_max_file_tokens=60)
    run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    core = [d for d in env.decisions() if d["path"] == "src/app/core.py"][0]
    assert core["shrunk"]
    sent = [
        p
        for p in env.store.read_prompts("p1")
        if "File: src/app/core.py" in p["messages"][1]["content"]
    ]
    body = sent[0]["messages"][1]["content"]
    assert "outline only" in body and "def parse_date(text):" in body and "m = re.match" not in body


SECRET_FILES = {
    ".env": "ANTHROPIC_API_KEY=sk-ant-SECRET-ENV\n",
    ".env.production": "GITHUB_TOKEN=ghp_SECRET-ENVPROD\n",
    "deploy/server.pem": "-----BEGIN PRIVATE KEY-----\nSECRET-PEM\n-----END PRIVATE KEY-----\n",
    "deploy/tls.key": "SECRET-KEYFILE\n",
    "home/.ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-RSA\n",
    "config/credentials.json": '{"token": "SECRET-CREDS"}\n',
    ".npmrc": "//registry.npmjs.org/:_authToken=SECRET-NPM\n",
    ".pypirc": "[pypi]\nusername = __token__\npassword = pypi-SECRET-PYPI\n",
    "src/app/keys.py": 'KEY = """-----BEGIN RSA PRIVATE KEY-----\nSECRET-INLINE\n"""\n',
}


def test_secret_files_never_reach_a_model_or_the_prompt_log(tmp_path, repo):
    import shutil

    dest, paths = repo
    tree = tmp_path / "tree"
    shutil.copytree(dest, tree)
    for rel, text in SECRET_FILES.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    (tree / "web/.npmrc").write_text("registry=https://registry.example.org/\n")  # no token
    every = sorted([*paths, *SECRET_FILES, "web/.npmrc"])
    # a policy that calls everything relevant and ranks the secrets first
    secrets = list(SECRET_FILES)
    rank = {"rankings": {"ranking-0": "```json\n" + json.dumps(secrets + RELEVANT) + "\n```"}}
    env = Env(tmp_path, {"relevant": RELEVANT + secrets}, rank)
    rec = run_context(PROBLEM, tree, every, env.hub, env.store, env.config)

    assert rec.excluded_counts.get("secret") == len(SECRET_FILES)
    relevance = json.loads((env.store.problem_dir("p1") / "relevance.json").read_text())["data"]
    assert {p: r for p, r in relevance["excluded"].items() if r == "secret"} == dict.fromkeys(
        SECRET_FILES, "secret"
    )
    assert not set(rec.paths) & set(SECRET_FILES)
    assert "web/.npmrc" not in relevance["excluded"]  # an rc file without credentials is read
    logged = json.dumps(env.store.read_prompts("p1")) + (env.store.root / "calls.jsonl").read_text()
    assert "SECRET" not in logged and "SECRET" not in rec.render()


def test_secret_patterns_are_configurable():
    from codemonkeys.context.files import path_exclusion

    assert path_exclusion("ops/prod.vault", ContextConfig()) is None
    assert path_exclusion("ops/prod.vault", ContextConfig(secret_globs=["*.vault"])) == "secret"
    assert path_exclusion(".env", ContextConfig(secret_globs=[])) is None
