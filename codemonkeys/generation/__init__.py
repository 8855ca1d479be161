"""Generation: parallel trajectories of the testing and editing state machines.

Public API::

    run_generation(problem, context_text, hub, pool, store, config, *, repo_dir=None,
                   cache=None, on_event=None) -> GenerationResult
    run_testing_state_machine(problem, hub, config, *, pool=None, cache=None, index=0,
                              store=None, record_name="tests") -> TrajectoryRecord
"""

from codemonkeys.generation.records import GenerationResult, TrajectoryRecord
from codemonkeys.generation.stage import run_generation, run_testing_state_machine

__all__ = ["GenerationResult", "TrajectoryRecord", "run_generation", "run_testing_state_machine"]
