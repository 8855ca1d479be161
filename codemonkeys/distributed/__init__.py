"""Problems distributed over a Ray cluster (``--ray``, ``run.executor = "ray"``).

Nothing here imports Ray until a distributed run starts: Ray is the optional extra
``codemonkeys[ray]``. ``coordinator.py`` the run-wide limits actor, ``worker.py`` one
problem on a node, ``driver.py`` dispatch and the single writer of the run directory,
``cluster.py`` joining the cluster. (Grading on the nodes, ``swebench evaluate --ray``, is
``swebench/evaluate_ray.py``: the executor knows no job.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from codemonkeys.config import Config
from codemonkeys.distributed.driver import RayOptions, run_problems_on_ray
from codemonkeys.pipeline import Runtime, run_problems
from codemonkeys.problem import Gold, Problem
from codemonkeys.run_records import ProblemResult

if TYPE_CHECKING:
    from codemonkeys.distributed.driver import RayOptions


def ray_options(address: str | None, config: Config) -> RayOptions | None:
    """The cluster to use: ``--ray [ADDRESS]`` or ``run.executor = "ray"``; None: local."""
    if address is None and config.run.executor != "ray":
        return None

    return RayOptions(address=address or config.run.ray_address, resource=config.run.ray_resource)


def execute(
    ray: RayOptions | None,
    rt: Runtime,
    problems: Iterable[tuple[Problem, Gold | None]],
    *,
    solve: Callable[..., ProblemResult] | Any,
) -> list[ProblemResult]:
    """The problems through ``solve``: in this process, or as tasks on the cluster."""
    if ray is None:
        return run_problems(rt, problems, solve=solve)

    return run_problems_on_ray(rt, problems, solve=solve, options=ray)
