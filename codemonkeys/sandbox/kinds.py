"""The sandbox kinds, one registry: what each kind needs and offers.

Code outside ``sandbox/`` asks a kind's properties (``needs_engine``: containers on a
Docker-API engine; ``isolated``: model-written code is kept off the host), never its name.
A new kind is its backend plus one line here (and its name in ``SandboxKindName``).
"""

from __future__ import annotations

from dataclasses import dataclass

from codemonkeys.config import SandboxKindName


@dataclass(frozen=True)
class SandboxKind:
    name: SandboxKindName
    needs_engine: bool
    """Containers on a Docker-API engine: images, limits, network off (``DockerSandbox``)."""
    isolated: bool
    """False: model-written code runs as host processes (opt-in, warned about)."""


KINDS: dict[SandboxKindName, SandboxKind] = {
    "docker": SandboxKind("docker", needs_engine=True, isolated=True),
    "local": SandboxKind("local", needs_engine=False, isolated=False),
}


def sandbox_kind(name: SandboxKindName) -> SandboxKind:
    return KINDS[name]
