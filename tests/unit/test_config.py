import pytest

from codemonkeys.config import Config
from codemonkeys.config_loading import ConfigError, load_config


def test_defaults_are_the_papers():
    c = Config()
    assert c.generation.samples == 10
    assert c.generation.test_attempts == c.generation.edit_attempts == 8
    assert c.generation.temperatures == [0.5]
    assert c.context.ranking_temperature == 0 and c.selection.temperature == 0
    assert c.context.rankings == 3 and c.context.token_budget == 128_000
    assert c.selection.top_k == 3
    assert c.sandbox.script_timeout_s == 100 and c.sandbox.max_output_chars == 8192


def test_precedence_file_then_env_then_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[generation]\nsamples = 4\ntemperatures = [0.2, 1.0]\n[run]\nmax_cost_usd = 5\n")
    env = {"CODEMONKEYS_GENERATION__SAMPLES": "6", "CODEMONKEYS_SANDBOX__SCRIPT_TIMEOUT_S": "30"}
    c = load_config(f, ["generation.samples=7", 'models.primary.model="openai/gpt-5"'], env=env)
    assert c.generation.samples == 7  # override beats env beats file
    assert c.sandbox.script_timeout_s == 30  # env
    assert c.generation.temperatures == [0.2, 1.0]  # file
    assert c.run.max_cost_usd == 5
    assert c.models.primary.model == "openai/gpt-5"


def test_unknown_key_and_bad_value_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="generation"):
        load_config(None, ["generation.sampels=3"], env={})
    with pytest.raises(ConfigError, match="samples"):
        load_config(None, ["generation.samples=0"], env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[generation\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad, env={})


def test_fingerprints_change_with_the_stage_config_only():
    base = Config()
    changed_gen = load_config(None, ["generation.samples=3"], env={})
    assert base.fingerprint("relevance") == changed_gen.fingerprint("relevance")
    assert base.fingerprint("context") == changed_gen.fingerprint("context")
    assert base.fingerprint("generation") != changed_gen.fingerprint("generation")
    # downstream stages depend on upstream fingerprints
    assert base.fingerprint("selection") != changed_gen.fingerprint("selection")
    other_model = load_config(None, ['models.primary.model="anthropic/claude-sonnet-4-5"'], env={})
    assert base.fingerprint("ranking") != other_model.fingerprint("ranking")


def test_only_known_sections_are_read_from_the_environment():
    """A test suite's CODEMONKEYS_TEST_IMAGE or a wrapper's CODEMONKEYS_FOO is not config."""
    env = {
        "CODEMONKEYS_TEST_IMAGE": "my-image:1",
        "CODEMONKEYS_SANDBOX_AGENT": "0",
        "CODEMONKEYS_FOO__BAR": "1",
        "CODEMONKEYS_SELECTION__TOP_K": "2",
    }
    c = load_config(None, [], env=env)
    assert c.selection.top_k == 2
    assert c.sandbox.agent is True


def test_the_sandbox_agent_switch_is_a_config_key():
    off = load_config(None, [], env={"CODEMONKEYS_SANDBOX__AGENT": "false"})
    assert off.sandbox.agent is False
    assert load_config(None, ["sandbox.agent=false"], env={}).sandbox.agent is False

    from codemonkeys.problem import Problem
    from codemonkeys.sandbox import spec_from_config

    problem = Problem(id="p", repo="r", issue="i", base_commit="HEAD")
    assert spec_from_config(problem, off).agent is False
    assert spec_from_config(problem, Config()).agent is True


def test_the_split_output_budget_key_is_refused_naming_its_successors():
    """generation.max_output_tokens became one budget per conversation (tests, edits): an
    old config is told what to write instead, not silently ignored."""
    from codemonkeys.config_loading import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config(None, ["generation.max_output_tokens=512"])
    assert "generation.test_max_output_tokens" in str(err.value)
    assert "generation.edit_max_output_tokens" in str(err.value)
    cfg = load_config(None, ["generation.test_max_output_tokens=96"])
    assert (cfg.generation.test_max_output_tokens, cfg.generation.edit_max_output_tokens) == (
        96,
        4096,
    )
