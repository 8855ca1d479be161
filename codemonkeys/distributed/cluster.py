"""Joining the Ray cluster, starting the coordinator next to the driver, per-node cleanup."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from codemonkeys.config import Config
from codemonkeys.distributed.coordinator import Coordinator
from codemonkeys.distributed.worker import remove_orphan_containers
from codemonkeys.errors import CodemonkeysError
from codemonkeys.llm import api_key_env
from codemonkeys.pipeline import Runtime
from codemonkeys.sandbox.kinds import sandbox_kind

log = logging.getLogger(__name__)


RAY_HELP = (
    "install the extra (`pip install 'codemonkeys[ray]'` or `uv sync --extra ray`), start a "
    "cluster (`ray start --head --resources '{\"docker_slots\": 8}'`) and see docs/distributed.md"
)


class RayUnavailable(CodemonkeysError, RuntimeError):
    """Ray is not installed, no cluster answers at the address, or no node can take a
    problem."""

    fix = RAY_HELP


def worker_env(config: Config) -> dict[str, str]:
    """The API keys of the configured endpoints, for the workers' runtime environment
    (never written to a record or a log)."""
    env: dict[str, str] = {}
    for ep in (config.models.primary, config.models.relevance_endpoint()):
        name = api_key_env(ep)
        if name and os.environ.get(name):
            env[name] = os.environ[name]
    return env


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` or ``ray://host:port`` nobody answers at fails in seconds, not after
    Ray's own retries (over two minutes). ``auto`` and ``local`` are Ray's to resolve."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address in ("auto", "local") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise RayUnavailable(f"no Ray cluster answers at {address!r} ({e})") from e


def connect(address: str, config: Config) -> None:
    """Join the cluster (``local``: start one on this machine) with the keys in the job's
    runtime environment."""
    # Nodes run the codemonkeys installed on them; Ray's `uv run` mode would rebuild the
    # driver's environment on each node instead (needs the package index there).
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray  # deferred: ray loads only when used
    except ImportError as e:
        raise RayUnavailable("--ray needs Ray, which is not installed") from e
    if ray.is_initialized():
        return
    check_reachable(address)
    runtime_env = {"env_vars": worker_env(config)}
    try:
        ray.init(
            address=None if address == "local" else address,
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
    except ConnectionError as e:
        raise RayUnavailable(f"no Ray cluster at {address!r} ({e})") from e


def start_coordinator(rt: Runtime, limits: dict[str, int]) -> Any:
    """The coordinator actor, pinned to the driver's node (next to the run directory)."""
    import ray  # deferred: ray loads only when used

    # deferred: ray loads only when used
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(Coordinator).options(
        num_cpus=0,
        max_concurrency=1000,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    )
    return actor.remote(
        limits,
        rt.config.run.max_cost_usd,
        rt.config.run.max_cost_per_problem_usd,
        dict(rt.costs.by_problem),
    )


def _remove_orphans(config: Config, run_id: str) -> None:
    remove_orphan_containers(config, run_id)


def clean_nodes(config: Config, run_id: str, resource: str) -> None:
    """On every live node with the resource: remove this run's containers whose creating
    worker died (a node that lost its raylet but kept its engine)."""
    import ray  # deferred: ray loads only when used

    # deferred: ray loads only when used
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not sandbox_kind(config.sandbox.kind).needs_engine:
        return
    task = ray.remote(_remove_orphans)
    refs = [
        task.options(
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False),
        ).remote(config, run_id)
        for node in ray.nodes()
        if node.get("Alive") and node.get("Resources", {}).get(resource)
    ]
    try:
        ray.get(refs, timeout=120)
    except Exception as e:  # cleanup must not hide how the run ended
        log.warning("removing leftover containers on the nodes: %s", e)
