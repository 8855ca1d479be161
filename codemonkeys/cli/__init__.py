"""codemonkeys' command line: one module per job, each only parsing options and calling
the module that does the job.

- ``app.py``: the typer app; a user-facing error (``errors.CodemonkeysError``) is printed
  with its fix and exit code, in one place;
- ``options.py``: options several commands share; ``common.py``: console, logging, the
  config from typed option values, the job entry (signals, prompt templates);
- ``solve.py`` (``codemonkeys.solve``), ``swebench.py`` (``swebench run/evaluate``:
  ``codemonkeys.swebench.run``), ``ensemble.py`` (``codemonkeys.ensemble_run``),
  ``runs.py`` (``report``, ``show``), ``housekeeping.py`` (``config show``, ``doctor``,
  ``clean``, ``version``).
"""

from codemonkeys.cli.app import app, main
from codemonkeys.cli.common import setup_logging

_setup_logging = setup_logging  # the name older code and tests import

__all__ = ["app", "main", "setup_logging"]
