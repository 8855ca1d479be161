"""The sandbox kinds, one registry: what each kind needs and offers.

Code outside ``sandbox/`` asks a kind's properties (``needs_engine``: containers on a
Docker-API engine; ``isolated``: model-written code is kept off the host), never its name.
A new kind is its backend plus one line here (and its name in ``SandboxKindName``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from codemonkeys.config import SandboxKindName
from codemonkeys.sandbox.docker_client import DEFAULT_TIMEOUT, docker_client

if TYPE_CHECKING:
    from docker import DockerClient


@dataclass(frozen=True)
class SandboxKind:
    name: SandboxKindName
    needs_engine: bool
    """Containers on a Docker-API engine: images, limits, network off (``DockerSandbox``)."""
    isolated: bool
    """False: model-written code runs as host processes (opt-in, warned about)."""
    engine_host: str | None = None
    """The engine's API socket (None: ``DOCKER_HOST``, else Docker's default socket)."""


PODMAN_SOCKET = "unix:///run/podman/podman.sock"
"""``podman system service`` as root: Podman's Docker-compatible API (docs/sandbox.md)."""

KINDS: dict[SandboxKindName, SandboxKind] = {
    "docker": SandboxKind("docker", needs_engine=True, isolated=True),
    "local": SandboxKind("local", needs_engine=False, isolated=False),
    "podman": SandboxKind("podman", needs_engine=True, isolated=True, engine_host=PODMAN_SOCKET),
}


def sandbox_kind(name: SandboxKindName) -> SandboxKind:
    return KINDS[name]


def engine_client(name: SandboxKindName, timeout: int = DEFAULT_TIMEOUT) -> DockerClient:
    """A client for the engine of kind ``name`` (``EngineUnreachable`` when it does not
    answer); Docker SDK calls then go through it, whatever the engine."""
    return docker_client(timeout, host=sandbox_kind(name).engine_host)
