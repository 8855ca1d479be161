"""Scripted policies learn the pipeline stage from the call's metadata: every model the hub
hands out passes its stage to the provider, without putting it into the request hash."""

from __future__ import annotations

from codemonkeys.config import Config, EndpointConfig
from codemonkeys.llm import ModelHub
from codemonkeys.llm.base import Message
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.store import RunStore


def _hub(tmp_path, answer: str) -> ModelHub:
    """A hub over a scripted policy answering the expression ``answer`` of its request."""
    policy = tmp_path / "echo_stage.py"
    policy.write_text(f"def respond(request):\n    return {answer}\n")
    config = Config()
    config.models.primary = EndpointConfig(model=f"scripted:{policy}")
    return ModelHub(config.models, CallLog(RunStore(tmp_path / "run")), CostTracker())


def test_the_hub_passes_each_models_stage_to_the_policy(tmp_path):
    hub = _hub(tmp_path, "f'{request.stage}|{request.key}'")
    ask = [Message(role="user", content="hello")]
    for stage in ("relevance", "ranking", "tests", "edits", "selection"):
        model = hub.model("primary", problem_id="p", stage=stage)
        answer = model.complete(ask, temperature=0.0, max_tokens=10, key=f"k-{stage}")
        assert answer.text == f"{stage}|k-{stage}"
    rebound = hub.model("primary", problem_id="p", stage="tests").bind(stage="edits")
    assert rebound.complete(ask, temperature=0.0, max_tokens=10, key="k2").text == "edits|k2"
    # the stage is metadata: the same request from another stage is the same call
    again = hub.model("primary", problem_id="p", stage="selection")
    assert again.complete(ask, temperature=0.0, max_tokens=10, key="k-tests").cached


def test_a_stage_given_to_complete_rebinds_the_call_and_its_spend(tmp_path):
    """A recording model is a ``Model``: the protocol's ``stage`` argument re-binds the
    call (what the provider sees, the call log, the spend), and no argument keeps its own."""
    hub = _hub(tmp_path, "request.stage")
    model = hub.model("primary", problem_id="p", stage="tests")
    ask = [Message(role="user", content="hi")]
    assert model.complete(ask, temperature=0.0, max_tokens=5, stage="selection").text == "selection"
    assert model.complete(ask, temperature=0.0, max_tokens=5, key="own").text == "tests"
    assert [c["stage"] for c in hub.calls.records()] == ["selection", "tests"]
