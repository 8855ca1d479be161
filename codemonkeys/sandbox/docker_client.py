"""The one way to get a Docker client: ``docker_client(timeout=...)``.

Every job that talks to the engine (sandboxes, images, ``solve``'s environment build,
``swebench run --estimate``, the harness's image checks, ``doctor``) gets its client here,
so an unreachable engine reads the same everywhere: ``EngineUnreachable`` (an
``errors.DockerUnreachable``), one message and one fix, raised before any work starts (the
client pings the engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codemonkeys.errors import DockerUnreachable
from codemonkeys.sandbox.base import SandboxError

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_TIMEOUT = 120
"""Seconds each engine API call may take (pulls and builds stream, so they are not bound by
it); creating and starting containers under load can take tens of seconds."""


class EngineUnreachable(DockerUnreachable, SandboxError):
    """The Docker engine does not answer: the user-facing ``DockerUnreachable`` (message
    and fix, exit 1), and a ``SandboxError`` for the code that handles sandbox failures
    (a run's engine check, a problem's image check)."""

    FIX = (
        "start Docker (dockerd), or pass --sandbox local (`--set sandbox.kind=local` for "
        "`swebench run` and `ensemble`) to run on the host without isolation"
    )

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}", fix=self.FIX)


def docker_client(timeout: int = DEFAULT_TIMEOUT, *, host: str | None = None) -> DockerClient:
    """A client for the engine at ``host`` (a sandbox kind's socket), else the one named by
    the environment (``DOCKER_HOST``, else the local socket), checked with a ping;
    ``EngineUnreachable`` when it does not answer."""
    try:
        import docker

        if host is not None:
            client = docker.DockerClient(base_url=host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:  # no SDK, no socket, refused, timed out, bad DOCKER_HOST
        raise EngineUnreachable(e) from e
    return client
