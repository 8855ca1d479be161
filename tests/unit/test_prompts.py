"""Prompt templates a user overrides file by file (``prompts.dir``): the override is what
is rendered, and the fingerprints of the stages that use it change (and only those)."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from codemonkeys.cli import app
from codemonkeys.config import ConfigError, load_config
from codemonkeys.errors import CodemonkeysError
from codemonkeys.prompts import prompts_dir, render, use_templates

STAGES = ("relevance", "context", "generation", "selection")


def _fingerprints(cfg) -> dict[str, str]:
    return {s: cfg.fingerprint(s) for s in STAGES}


def _override(tmp_path, name: str, text: str):
    folder = tmp_path / "my-prompts"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_an_overridden_template_changes_the_fingerprints_of_the_stages_using_it(tmp_path):
    packaged = load_config(None, [], env={})
    folder = _override(tmp_path, "generation/edit_system.j2", "You fix bugs. MY-HOUSE-STYLE\n")
    mine = load_config(None, [f'prompts.dir="{folder}"'], env={})
    before, after = _fingerprints(packaged), _fingerprints(mine)
    assert after["generation"] != before["generation"]
    assert after["selection"] != before["selection"]  # selection depends on generation
    assert after["relevance"] == before["relevance"] and after["context"] == before["context"]


def test_an_override_identical_to_the_packaged_template_changes_nothing(tmp_path):
    folder = tmp_path / "same"
    (folder / "ranking").mkdir(parents=True)
    shutil.copy(prompts_dir() / "ranking" / "system.j2", folder / "ranking" / "system.j2")
    same = load_config(None, [f'prompts.dir="{folder}"'], env={})
    assert _fingerprints(same) == _fingerprints(load_config(None, [], env={}))


def test_the_job_renders_the_override_and_the_packaged_rest(tmp_path):
    folder = _override(tmp_path, "generation/test_system.j2", "MINE for {{ language_name }}\n")
    cfg = load_config(None, [f'prompts.dir="{folder}"'], env={})
    packaged_request = render("generation/test_request", issue="bug", language_name="Python")
    with use_templates(cfg.prompt_templates()):
        assert render("generation/test_system", language_name="Python") == "MINE for Python\n"
        same = render("generation/test_request", issue="bug", language_name="Python")
        assert same == packaged_request
    assert "MINE" not in render("generation/test_system", language_name="Python")


def test_a_misnamed_override_or_missing_directory_is_a_clear_error(tmp_path, monkeypatch):
    folder = _override(tmp_path, "generation/edit_sytem.j2", "typo\n")
    with pytest.raises(CodemonkeysError, match="edit_sytem.j2") as err:
        load_config(None, [f'prompts.dir="{folder}"'], env={})
    assert err.value.fix and "generation/" in err.value.fix
    _override(tmp_path, "generation/_house_rules.j2", "a partial an override may include\n")
    (folder / "generation" / "edit_sytem.j2").unlink()
    load_config(None, [f'prompts.dir="{folder}"'], env={})

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["config", "show", "--set", 'prompts.dir="nowhere"'])
    assert result.exit_code == 2
    assert "is not a directory" in result.stderr and "fix:" in result.stderr
    with pytest.raises(ConfigError):
        load_config(None, ["prompts.nothing=1"], env={})
