"""The errors a user sees: one base class carrying what went wrong and how to fix it.

Every exception meant for the person at the terminal derives from ``CodemonkeysError``
(config errors, a locked or full run directory, a model that is not configured, a
repository or dataset that cannot be read, the Docker engine out of reach, ...). The CLI
catches this one type (``codemonkeys/cli/app.py``), prints ``message`` and ``fix`` and
exits with the class's ``exit_code``; anything else is a bug and keeps its traceback.

Classes defined elsewhere keep their historical built-in base next to this one
(``class ConfigError(CodemonkeysError, ValueError)``), so existing ``except ValueError``
clauses still catch them.

Exit codes (the job's own outcome codes are in ``pipeline.EXIT_CODES``):

- 2: the job could not start or its input is wrong (the default);
- 1: infrastructure failed (``InfrastructureError``: the Docker engine, a sandbox);
- 4: the disk holding the run is full (``store.DiskFull``).
"""

from __future__ import annotations

from typing import ClassVar


class CodemonkeysError(Exception):
    """A problem the user can act on. ``str(e)`` is the message; ``fix`` says what to do
    (None when the message already says it)."""

    exit_code: ClassVar[int] = 2
    fix: str | None = None

    def __init__(self, *args: object, fix: str | None = None):
        # positional arguments pass through unchanged, so subclasses that also derive
        # from OSError (errno, strerror) or take their own arguments keep working
        super().__init__(*args)
        if fix is not None:
            self.fix = fix

    @property
    def message(self) -> str:
        return str(self)


class InfrastructureError(CodemonkeysError):
    """Something the run depends on failed (the Docker engine, a sandbox), not the user's
    input; exit status 1, like a run whose problems failed."""

    exit_code: ClassVar[int] = 1


class DockerUnreachable(InfrastructureError):
    """The Docker engine does not answer."""

    def __init__(self, detail: str, *, fix: str | None = None):
        super().__init__(
            f"the Docker engine is not reachable ({detail})",
            fix=fix
            or "start Docker (dockerd), or pass --sandbox local to run on the host "
            "without isolation",
        )


class UsageError(CodemonkeysError):
    """Bad input found at the command line (a missing file, an option out of range)."""


class BudgetExceeded(RuntimeError):
    """A cost cap was reached; no new model call is started.

    Here, not in ``llm/``, because the sandbox pool and every stage raise or catch it too.
    (``llm.base`` re-exports it and ``Interrupted`` until the branches that still import
    them from there, in ``llm/``, ``sandbox/pool.py``, ``context/relevance.py`` and
    ``selection/matrix.py``, are merged.)"""


class Interrupted(BudgetExceeded):
    """The user asked the run to stop (Ctrl-C); stages stop the way they do at a cost cap:
    save what they have and start nothing new."""
