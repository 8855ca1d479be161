"""Prompt templates a user overrides file by file (``prompts.dir``): the override is what
is rendered, and the fingerprints of the stages that use it change (and only those)."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

import codemonkeys.prompts
from codemonkeys.cli import app
from codemonkeys.config_loading import ConfigError, load_config
from codemonkeys.context.files import Enumeration, SourceFile
from codemonkeys.context.scan_cost import scan_prompt_tokens
from codemonkeys.errors import CodemonkeysError
from codemonkeys.generation.testing import testing_prefix as prefix_of_tests
from codemonkeys.problem import Problem
from codemonkeys.prompts import prompts_dir

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


def test_a_config_renders_its_override_and_the_packaged_rest(tmp_path):
    folder = _override(tmp_path, "generation/test_system.j2", "MINE for {{ language_name }}\n")
    mine = load_config(None, [f'prompts.dir="{folder}"'], env={}).prompt_templates()
    packaged = load_config(None, [], env={}).prompt_templates()
    problem = Problem(id="p", repo="r", base_commit="c", issue="bug")
    system, request = prefix_of_tests(mine, problem, "python")
    assert system.content == "MINE for Python\n"
    assert request == prefix_of_tests(packaged, problem, "python")[1]  # the rest stays packaged
    assert "MINE" not in prefix_of_tests(packaged, problem, "python")[0].content


def _relevance_override(tmp_path, name: str, system: str):
    folder = tmp_path / name
    (folder / "relevance").mkdir(parents=True)
    (folder / "relevance" / "system.j2").write_text(system)
    return load_config(None, [f'prompts.dir="{folder}"'], env={})


def test_two_configs_in_one_process_render_their_own_templates_at_the_same_time(tmp_path):
    """No job-wide choice of templates: two jobs (threads here, or a worker process) with
    different ``prompts.dir`` each scan with their own relevance prompt."""
    short = _relevance_override(tmp_path, "short", "Relevant to {{ issue }}?\n")
    long = _relevance_override(tmp_path, "long", "Consider carefully. " * 200 + "{{ issue }}\n")
    enum = Enumeration(files=[SourceFile(path="a.py", size=1, sha256="0" * 64, tokens=10)])
    both_started = threading.Barrier(2)

    def tokens(cfg) -> int:
        both_started.wait()
        return scan_prompt_tokens(enum, "the bug", cfg)

    with ThreadPoolExecutor(max_workers=2) as pool:
        short_tokens, long_tokens = pool.map(tokens, [short, long])
    packaged = scan_prompt_tokens(enum, "the bug", load_config(None, [], env={}))
    assert short_tokens < packaged < long_tokens


def test_the_prompts_module_holds_no_state_a_job_sets(tmp_path):
    for name in ("use_templates", "current_templates", "render", "prompt_hash"):
        assert not hasattr(codemonkeys.prompts, name), name
    before = dict(vars(codemonkeys.prompts))
    shown = {k: repr(v) for k, v in before.items()}
    cfg = _relevance_override(tmp_path, "mine", "Mine: {{ issue }}\n")
    enum = Enumeration(files=[SourceFile(path="a.py", size=1, sha256="0" * 64, tokens=10)])
    scan_prompt_tokens(enum, "the bug", cfg)
    after = dict(vars(codemonkeys.prompts))
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)  # nothing rebound by a job
    assert {k: repr(v) for k, v in after.items()} == shown  # nor changed in place


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


def test_a_relative_prompts_dir_is_the_one_beside_where_the_config_was_read(tmp_path, monkeypatch):
    _override(tmp_path, "generation/test_system.j2", "MINE for {{ language_name }}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(None, ['prompts.dir="my-prompts"'], env={})
    monkeypatch.chdir(tmp_path.parent)  # a job (or a Ray worker) working from elsewhere
    problem = Problem(id="p", repo="r", base_commit="c", issue="bug")
    system, _ = prefix_of_tests(config.prompt_templates(), problem, "python")
    assert system.content == "MINE for Python\n"
    assert config.prompts.dir == tmp_path / "my-prompts"
