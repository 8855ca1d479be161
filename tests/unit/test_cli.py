"""The small commands, through typer's runner."""

import json

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
