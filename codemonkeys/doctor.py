"""``codemonkeys doctor``: what is missing and how to fix it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from typing import Literal

from pydantic import BaseModel

from codemonkeys.config import Config
from codemonkeys.llm import api_key_env
from codemonkeys.sandbox.docker_client import EngineUnreachable
from codemonkeys.sandbox.kinds import engine_client, sandbox_kind

Status = Literal["ok", "warn", "fail"]


class Check(BaseModel):
    name: str
    status: Status
    detail: str
    fix: str = ""


def _python() -> Check:
    v = sys.version_info
    if v >= (3, 11):
        return Check(name="python", status="ok", detail=f"{v.major}.{v.minor}.{v.micro}")
    return Check(
        name="python", status="fail", detail=f"{v.major}.{v.minor}", fix="use Python >= 3.11"
    )


def _docker(config: Config) -> list[Check]:
    missing: Status = "fail" if sandbox_kind(config.sandbox.kind).needs_engine else "warn"
    try:
        client = engine_client(config.sandbox.kind, timeout=10)
        info = client.version()
    except EngineUnreachable as e:
        return [Check(name="docker engine", status=missing, detail=e.message, fix=e.fix or "")]
    except Exception as e:  # answered the ping, then failed
        return [Check(name="docker engine", status=missing, detail=f"{type(e).__name__}: {e}")]
    checks = [Check(name="docker engine", status="ok", detail=f"server {info.get('Version', '?')}")]
    image = config.sandbox.image
    try:
        client.images.get(image)
        checks.append(Check(name="sandbox image", status="ok", detail=image))
    except Exception:
        checks.append(
            Check(
                name="sandbox image",
                status=missing,
                detail=f"{image} not found",
                fix="docker build -t codemonkeys-sandbox:latest -f containers/Dockerfile containers/ "
                "(offline: bash containers/build-offline-image.sh)",
            )
        )
    try:
        n_swe = len(client.images.list(name="swebench/*"))
        envs = len(client.images.list(filters={"reference": "codemonkeys-env*"}))
        checks.append(
            Check(
                name="other images",
                status="ok",
                detail=f"{n_swe} SWE-bench image(s), {envs} project env image(s)",
            )
        )
    except Exception:
        pass
    return checks


def _models(config: Config) -> list[Check]:
    checks = []
    endpoints = [("primary model", config.models.primary)]
    if config.models.relevance is not None:
        endpoints.append(("relevance model", config.models.relevance))
    for label, ep in endpoints:
        if not ep.model:
            checks.append(
                Check(
                    name=label,
                    status="warn",
                    detail="not configured",
                    fix="--model anthropic/<name> | openai/<name> [--base-url URL] | "
                    "local:<file.gguf>, or [models.primary] in codemonkeys.toml",
                )
            )
            continue
        env = api_key_env(ep)
        if env is None or (ep.base_url and not os.environ.get(env)):
            checks.append(Check(name=label, status="ok", detail=f"{ep.model} (no key needed)"))
        elif os.environ.get(env):
            checks.append(Check(name=label, status="ok", detail=f"{ep.model}, {env} is set"))
        else:
            checks.append(
                Check(
                    name=label,
                    status="fail",
                    detail=f"{ep.model}: {env} is not set",
                    fix=f"export {env}=...",
                )
            )
    return checks


def _disk(config: Config) -> Check:
    path = (
        config.run.runs_dir
        if config.run.runs_dir.exists()
        else config.run.runs_dir.resolve().parent
    )
    while not path.exists():
        path = path.parent
    free_gb = shutil.disk_usage(path).free / 1e9
    status: Status = "ok" if free_gb >= 50 else "warn" if free_gb >= 5 else "fail"
    return Check(
        name="disk space",
        status=status,
        detail=f"{free_gb:.0f} GB free under {path}",
        fix="SWE-bench images need hundreds of GB for the full set; use --remove-images or free space",
    )


def _harness() -> Check:
    if importlib.util.find_spec("swebench") is not None:
        return Check(name="swebench harness", status="ok", detail="installed")
    return Check(
        name="swebench harness",
        status="warn",
        detail="not installed (needed only for `swebench evaluate`)",
        fix="uv sync --extra swebench",
    )


def _local_model() -> Check:
    """Whether ``--model local:<file.gguf>`` can run here, and how to get a model."""
    from codemonkeys.llm.local_model import EXTRA_HELP, local_model_help

    if importlib.util.find_spec("llama_cpp") is None:
        return Check(
            name="local model",
            status="warn",
            detail="llama.cpp not installed (needed only to run a model on this machine: "
            "--model local:<file.gguf>)",
            fix=EXTRA_HELP,
        )
    return Check(
        name="local model", status="ok", detail=f"llama.cpp installed: {local_model_help()}"
    )


def run_checks(config: Config) -> list[Check]:
    return [
        _python(),
        *_docker(config),
        *_models(config),
        _local_model(),
        _disk(config),
        _harness(),
    ]
