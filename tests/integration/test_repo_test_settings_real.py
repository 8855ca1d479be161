"""The regression plan runs a real repository's tests the way the repository does, in the
real SWE-bench instance image of sphinx-doc__sphinx-11445 (built offline from
../shared/data/instances): sphinx's tox ``[testenv]`` sets ``PYTHONWARNINGS = error`` and runs
``python -X dev -X warn_default_encoding -m pytest``; the plan's command carries both, and
the original code's related tests pass under it as they do under the plain command. The gold
patch is only a candidate whose edited files discovery reads; no model is involved."""

from __future__ import annotations

import pytest

from codemonkeys.candidates import Candidate
from codemonkeys.config import Config
from codemonkeys.swebench.dataset import to_problem

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IID = "sphinx-doc__sphinx-11445"


def test_the_plan_runs_pytest_with_the_repositorys_tox_settings(instance_row):
    from codemonkeys.sandbox import open_sandbox
    from codemonkeys.sandbox.spec import spec_from_config
    from codemonkeys.selection.regression import run_suite
    from codemonkeys.selection.regression_discovery import build_command
    from codemonkeys.selection.regression_plan import plan_regression

    row = instance_row(IID)
    problem, _ = to_problem(row)
    config = Config()
    spec = spec_from_config(problem, config)
    with open_sandbox(spec) as sandbox:
        plan = plan_regression(
            sandbox, [Candidate(id="gold", patch=row["patch"])], config.selection,
            config.context.test_dirs,
        )  # fmt: skip
    assert plan.framework == "pytest" and "tests/test_util_rst.py" in plan.test_files
    assert plan.settings.env == {"PYTHONWARNINGS": "error"}
    assert plan.command.startswith(
        "PYTHONWARNINGS=error python -X dev -X warn_default_encoding -m pytest "
    )

    def passed(command: str) -> int:
        with open_sandbox(spec) as sandbox:
            run = run_suite(sandbox, None, command, 300, junit=True)
        assert not run.timed_out and run.parser == "junit", run.output_tail
        return sum(v == "passed" for v in run.outcomes.values())

    plain = passed(build_command("pytest", plan.test_files))
    assert passed(plan.command) >= plain > 0
