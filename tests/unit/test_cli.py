"""The small commands, through typer's runner."""

import json
import sys

from typer.testing import CliRunner

from codemonkeys.cli import app

runner = CliRunner()


def test_config_show_prints_the_effective_config_with_fingerprints(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "codemonkeys.toml").write_text("[generation]\nsamples = 4\n")
    monkeypatch.setenv("CODEMONKEYS_SELECTION__TOP_K", "2")
    result = runner.invoke(app, ["config", "show", "--set", "generation.edit_attempts=5"])
    assert result.exit_code == 0, result.output
    assert "[generation]" in result.output
    assert "samples = 4" in result.output  # file
    assert "edit_attempts = 5" in result.output  # --set
    assert "top_k = 2" in result.output  # environment
    assert "# fingerprints: relevance=" in result.output

    as_json = runner.invoke(app, ["config", "show", "--json"])
    assert json.loads(as_json.output)["generation"]["samples"] == 4


def test_bad_config_is_a_clear_error_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show", "--set", "generation.samples=zero"])
    assert result.exit_code == 2
    assert "samples" in result.output and "Traceback" not in result.output


def test_doctor_names_what_is_missing_and_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = runner.invoke(app, ["doctor", "--model", "anthropic/claude-sonnet-4-5"])
    assert "python" in result.output and "disk space" in result.output
    assert "ANTHROPIC_API_KEY is not set" in result.output
    assert "export ANTHROPIC_API_KEY" in result.output
    assert result.exit_code == 1  # a configured model without its key is a failure
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-shown")
    result = runner.invoke(app, ["doctor", "--model", "anthropic/claude-sonnet-4-5"])
    assert "ANTHROPIC_API_KEY is set" in result.output
    assert "sk-test-not-shown" not in result.output


def test_machine_readable_outputs_are_pure_json_on_stdout(monkeypatch, tmp_path):
    """`report --json`, `swebench evaluate` and `config show --json` can be piped to jq:
    stdout holds the JSON alone, messages go to stderr."""
    import codemonkeys.swebench.run as swebench_run

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "r"
    (run / "problems").mkdir(parents=True)
    (run / "status.json").write_text('{"status": "finished"}')
    rep = runner.invoke(app, ["report", "runs/r", "--json"])
    assert rep.exit_code == 0, rep.output
    assert json.loads(rep.stdout)["run_status"] == "finished"
    assert "HTML report:" in rep.stderr

    summary = {"problems": 2, "graded": 2, "resolved": 1, "ungraded": 0, "covered": 2}
    monkeypatch.setattr(swebench_run, "evaluate_run", lambda *a, **k: summary)
    ev = runner.invoke(app, ["swebench", "evaluate", "runs/r"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout) == summary

    cfg = runner.invoke(app, ["config", "show", "--json"])
    assert json.loads(cfg.stdout)["generation"]["samples"] > 0


def test_unrelated_codemonkeys_variables_do_not_break_commands(monkeypatch, tmp_path):
    """docs/sandbox.md's old CODEMONKEYS_SANDBOX_AGENT=0 and the suite's CODEMONKEYS_TEST_IMAGE
    used to be parsed as config and fail every command."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEMONKEYS_SANDBOX_AGENT", "0")
    monkeypatch.setenv("CODEMONKEYS_TEST_IMAGE", "codemonkeys-sandbox:latest")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sandbox"]["agent"] is True


def test_clean_removes_temp_dirs_of_dead_owners_only(monkeypatch, tmp_path):
    """/tmp/codemonkeys-repo-* / -tree-* of a SIGKILLed run stayed forever."""
    import os
    import subprocess
    import sys

    from codemonkeys.tempdirs import temp_dir

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    leftover = tmp_path / f"codemonkeys-repo-{dead_pid}-abcd1234"
    (leftover / "src").mkdir(parents=True)
    (leftover / "src" / "big.py").write_text("x = 1\n")
    tree = tmp_path / f"codemonkeys-tree-{dead_pid}-efgh5678"
    tree.mkdir()
    unrelated = tmp_path / "codemonkeys-notes"
    unrelated.mkdir()
    with temp_dir("repo") as live:
        assert live.parent == tmp_path and f"-{os.getpid()}-" in live.name
        # (containers: only those of a run that does not exist, other users' stay untouched)
        result = runner.invoke(app, ["clean", "--run-id", "no-such-run-for-temp-dirs"])
        assert "removed 2 leftover temporary directories" in result.output, result.output
        assert live.is_dir()  # its owner (this process) still runs
    assert not leftover.exists() and not tree.exists()
    assert unrelated.is_dir()


def test_swebench_run_with_a_cap_and_an_unpriced_model_stops_before_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["swebench", "run", "--dataset", str(tmp_path / "rows.jsonl"), "--max-cost", "5"]
    args += ["--model", "openai/my-local-coder", "--base-url", "http://127.0.0.1:9/v1"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "no price is known for openai/my-local-coder" in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_model_options_reach_the_config_as_typed_not_through_toml_text(monkeypatch, tmp_path):
    """`--model`/`--base-url` used to be pasted into TOML (`models.primary.model="..."`): a
    quote or a backslash turned the value into something else (quotes kept, escapes
    read)."""
    monkeypatch.chdir(tmp_path)
    model = 'openai/my"coder\\v2'
    args = ["config", "show", "--json", "--model", model, "--set", "run.max_problems_in_flight=2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["models"]["primary"]["model"] == model


def test_every_model_option_is_taken_as_given():
    from codemonkeys.cli.common import ConfigInputs

    model = 'openai/my"coder\\v2'
    url = 'http://127.0.0.1:9/v1?q="a\\b"'

    cfg = ConfigInputs(model=model, base_url=url, relevance_model="openai/x\\y").load()
    assert cfg.models.primary.model == model and cfg.models.primary.base_url == url
    assert cfg.models.relevance is not None
    assert (cfg.models.relevance.model, cfg.models.relevance.base_url) == ("openai/x\\y", url)


def test_a_bare_ray_means_auto_and_a_given_address_is_kept():
    from codemonkeys.cli.app import with_optional_values

    run = ["swebench", "run", "--dataset", "d.jsonl"]
    assert with_optional_values([*run, "--ray"]) == [*run, "--ray", "auto"]
    assert with_optional_values([*run, "--ray", "-q"]) == [*run, "--ray", "auto", "-q"]
    assert with_optional_values([*run, "--ray", "local"]) == [*run, "--ray", "local"]
    assert with_optional_values([*run, "--ray=head:6379"]) == [*run, "--ray=head:6379"]


def test_the_installed_command_takes_a_bare_ray(tmp_path):
    """Through the console entry as a user types it: the bare option parses (the command
    then stops at its missing dataset, before any cluster is needed)."""
    import subprocess

    from tests.conftest import CLI, FIXTURES

    missing = tmp_path / "no-such-rows.jsonl"
    model = f"scripted:{FIXTURES / 'policies' / 'example_solver.py'}"
    for argv in ([CLI], [sys.executable, "-m", "codemonkeys"]):
        cmd = [*argv, "swebench", "run", "--dataset", str(missing), "--model", model, "--ray"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        out = proc.stdout + proc.stderr
        assert "requires an argument" not in out, out
        assert proc.returncode == 2 and "no-such-rows.jsonl" in out, out
