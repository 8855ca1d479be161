"""Context stage: read every file, rank the relevant ones, pack the token budget.

Nothing is imported here: loading a record module (``records.py``) must not load the stage
that writes it. Import from the module (``stage.py``, ``records.py``, ...).
"""
