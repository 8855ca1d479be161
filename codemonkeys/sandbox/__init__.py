"""Sandboxes: where every model-written script runs.

``open_sandbox(spec)`` gives one sandbox (Docker by default, the host-process
``LocalSandbox`` for a kind that needs no engine, ``sandbox/kinds.py``); ``SandboxPool`` keeps a few warm ones
per problem and resets them between leases. See base.py for the protocol.
"""

from codemonkeys.sandbox.base import ExecResult, PatchResult, Sandbox, SandboxError
from codemonkeys.sandbox.common import SandboxFileNotFound
from codemonkeys.sandbox.docker_sandbox import DockerSandbox
from codemonkeys.sandbox.images import (
    clean_containers,
    ensure_image,
    image_exists,
    swebench_image_name,
)
from codemonkeys.sandbox.local import LocalSandbox
from codemonkeys.sandbox.pool import SandboxPool, open_sandbox
from codemonkeys.sandbox.spec import MANAGED_LABEL, SandboxSpec, spec_from_config


def __getattr__(name: str):  # lazy: importing the package must not require the docker SDK
    if name == "DockerSandbox":
        return DockerSandbox
    if name == "LocalSandbox":
        return LocalSandbox
    raise AttributeError(name)


__all__ = [
    "MANAGED_LABEL",
    "DockerSandbox",
    "ExecResult",
    "LocalSandbox",
    "PatchResult",
    "Sandbox",
    "SandboxError",
    "SandboxFileNotFound",
    "SandboxPool",
    "SandboxSpec",
    "clean_containers",
    "ensure_image",
    "image_exists",
    "open_sandbox",
    "spec_from_config",
    "swebench_image_name",
]
