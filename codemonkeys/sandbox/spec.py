"""What a sandbox should be: image, repository source, limits. Built from a Problem and
the run's SandboxConfig by ``spec_from_config``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from codemonkeys.config import SandboxKindName

MANAGED_LABEL = "org.codemonkeys.managed"
RUN_LABEL = "org.codemonkeys.run"
PROBLEM_LABEL = "org.codemonkeys.problem"
PID_LABEL = "org.codemonkeys.pid"
HOST_LABEL = "org.codemonkeys.host"

ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER", "LOGNAME")
"""Host variables a local-sandbox script sees (plus ``pass_env``, and a scratch HOME and
TMPDIR). API keys, tokens and everything else of the host's environment stay out."""


def parse_size(size: str) -> int:
    """Bytes in a Docker-style size ("512m", "1g", "4096")."""
    from docker.utils import parse_bytes

    return int(parse_bytes(size))


class SandboxSpec(BaseModel):
    kind: SandboxKindName = "docker"
    image: str = "codemonkeys-sandbox:latest"
    workdir: str = "/repo"
    """Where the repository lives in the container (SWE-bench images: /testbed)."""
    env_setup: str = ""
    """Shell snippet run before each command, e.g. ``source /opt/miniconda3/bin/activate testbed``."""
    repo_path: Path | None = None
    """Local git repository to copy in; None = the image already holds the repo at workdir."""
    base_commit: str | None = None
    """Commit-ish of repo_path to copy (default HEAD); for image repos the commit treated
    as base (default: HEAD in the image)."""
    subdir: str | None = None
    """Copy only this subdirectory of repo_path (a package inside a monorepo)."""
    memory: str = "4g"
    cpus: float = 1.0
    pids_limit: int = 512
    network: bool = False
    scratch_size: str = "1g"
    """Size of the tmpfs mounted on /tmp and /var/tmp (counts towards ``memory``)."""
    disk_limit: str = "1g"
    """What one script run may write to the (disk-backed) work tree, and the largest file
    it may write anywhere; past it the run is killed and reported as the script's failure."""
    pass_env: list[str] = Field(default_factory=list)
    """Host environment variables passed to scripts besides the fixed allow-list
    (``ENV_ALLOW``); nothing else of the host's environment reaches a script."""
    max_output_chars: int = 8192
    default_timeout: float = 100.0
    agent: bool = True
    """Commands through the in-container command server (False: one docker exec each)."""
    python_agent: bool = True
    """That server in the image's python3 where it has one (agent_server.py: no process
    per request, inotify instead of a walk per run); False, or no python3: in bash."""
    prepare: bool = True
    """An image repository (``repo_path`` None): start from a prepared image committed
    once per (image, work tree, base commit) instead of preparing every container
    (sandbox/prepared.py)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Merged with org.codemonkeys.managed=1."""
    secret_globs: list[str] = Field(default_factory=list)
    """File names that are secrets (``context.secret_globs``): replaced in a copied repo."""
    copy_secret_files: list[str] = Field(default_factory=list)
    """Globs of secret-looking files copied as they are (``sandbox.copy_secret_files``)."""


def spec_from_config(problem: Any, config: Any, *, run_id: str = "") -> SandboxSpec:
    """The sandbox for ``problem`` under ``config`` (a SandboxConfig, or a whole Config).

    A problem with an image (SWE-bench) uses it; otherwise the generic image from the
    config. A problem with a local ``repo_path`` is copied in at ``base_commit``, its
    secrets judged by ``config.context.secret_globs`` (the defaults when ``config`` is only
    a SandboxConfig)."""
    cfg = getattr(config, "sandbox", config)
    context = getattr(config, "context", None)
    if context is None:
        from codemonkeys.config import ContextConfig

        context = ContextConfig()
    labels = {PROBLEM_LABEL: str(problem.id)}
    if run_id:
        labels[RUN_LABEL] = run_id
    return SandboxSpec(
        kind=cfg.kind,
        image=problem.image or cfg.image,
        workdir=problem.workdir,
        env_setup=problem.env_setup,
        repo_path=problem.repo_path,
        base_commit=problem.base_commit,
        subdir=getattr(problem, "subdir", None),
        memory=cfg.memory,
        cpus=cfg.cpus,
        pids_limit=cfg.pids_limit,
        network=cfg.network,
        scratch_size=cfg.scratch_size,
        disk_limit=cfg.disk_limit,
        pass_env=list(cfg.pass_env),
        max_output_chars=cfg.max_output_chars,
        default_timeout=cfg.script_timeout_s,
        agent=cfg.agent,
        python_agent=cfg.python_agent,
        labels=labels,
        secret_globs=list(context.secret_globs),
        copy_secret_files=list(getattr(cfg, "copy_secret_files", [])),
    )
