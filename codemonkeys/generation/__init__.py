"""Generation: parallel trajectories of the testing and editing state machines.

Public API (``stage.py``)::

    run_generation(problem, context_text, hub, pool, store, config, *, repo_dir=None,
                   cache=None, on_event=None) -> GenerationResult
    run_testing_state_machine(problem, hub, config, *, pool=None, cache=None, index=0,
                              store=None, record_name="tests") -> TrajectoryRecord

Nothing is imported here: loading a record module (``records.py``) must not load the stage
that writes it. Import from the module (``stage.py``, ``records.py``, ...).
"""
