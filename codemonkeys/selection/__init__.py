"""Selection: the test matrix, voting, and the selection state machine.

Entry point: ``run_selection`` (stage.py). Pure voting rules in voting.py, the matrix in
matrix.py, the model conversation in selector.py, test-file stripping in patches.py.
"""

from codemonkeys.selection.records import SelectionRecord
from codemonkeys.selection.stage import run_selection

__all__ = ["SelectionRecord", "run_selection"]
