"""Selection: the test matrix, voting, and the selection state machine.

Entry point: ``run_selection`` (stage.py). Pure voting rules in voting.py, the matrix in
matrix.py, the model conversation in selector.py, test-file stripping in patches.py.

Nothing is imported here: loading a record module (``records.py``) must not load the stage
that writes it. Import from the module (``stage.py``, ``records.py``, ...).
"""
