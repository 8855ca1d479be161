"""Where a problem's machine time goes in its sandboxes, per phase.

The problem's ``SandboxPool`` keeps running totals (``pool.stats``: seconds spent opening
containers, resetting them between leases, inside leases, that is, applying patches and
running scripts, and closing them). A phase's share is the difference of two readings
taken at its start and end (``SandboxSeconds.reading`` / ``minus``), so trajectories
running in parallel add up: these are container-seconds, not wall seconds. The pipeline
records them per phase in ``timing.json`` and ``result.json`` (``sandbox_seconds``);
``swebench evaluate`` adds the harness's container time per problem (``grading_seconds``
in ``evaluation.json``); ``report`` shows both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from codemonkeys.sandbox import SandboxPool

TEARDOWN = "teardown"
"""The phase key of closing the problem's containers once its stages are done."""

_POOL_TOTALS = {
    "open": "open_seconds_total",
    "reset": "reset_seconds_total",
    "runs": "lease_seconds_total",
    "close": "close_seconds_total",
    "opened": "created",
    "resets": "resets",
    "leases": "leases",
}


class SandboxSeconds(BaseModel):
    """Container-seconds of one phase (summed over the problem's sandboxes) and counts."""

    open: float = 0.0
    """Creating and preparing containers."""
    reset: float = 0.0
    """Returning a leased container to the base tree."""
    runs: float = 0.0
    """Inside leases: applying patches, running scripts, reading files."""
    close: float = 0.0
    """Removing containers."""
    opened: int = 0
    resets: int = 0
    leases: int = 0

    @property
    def total(self) -> float:
        return self.open + self.reset + self.runs + self.close

    @classmethod
    def reading(cls, pool: SandboxPool) -> SandboxSeconds:
        """The pool's running totals now."""
        return cls.model_validate({n: pool.stats.get(key, 0) for n, key in _POOL_TOTALS.items()})

    def minus(self, earlier: SandboxSeconds) -> SandboxSeconds:
        return SandboxSeconds.model_validate(
            {n: getattr(self, n) - getattr(earlier, n) for n in _POOL_TOTALS}
        )

    def plus(self, other: SandboxSeconds) -> SandboxSeconds:
        return SandboxSeconds.model_validate(
            {n: getattr(self, n) + getattr(other, n) for n in _POOL_TOTALS}
        )


def add_phase(
    totals: dict[str, SandboxSeconds], phase: str, amount: SandboxSeconds
) -> dict[str, SandboxSeconds]:
    """``totals`` with ``amount`` added to ``phase`` (a resumed problem sums its invocations)."""
    totals[phase] = totals.get(phase, SandboxSeconds()).plus(amount)
    return totals
