"""Images and leftovers: does an image exist, get it (pull only when absent), SWE-bench
image names, and removing containers a crashed run left behind (``codemonkeys clean``)."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.docker_client import docker_client
from codemonkeys.sandbox.spec import HOST_LABEL, MANAGED_LABEL, PID_LABEL, RUN_LABEL

GENERIC_IMAGE_HELP = (
    "build it with `bash containers/build-offline-image.sh {image}` (no registry needed) or "
    "`docker build -t {image} -f containers/Dockerfile containers/` (needs Docker Hub)"
)


def swebench_image_name(instance_id: str) -> str:
    """The official harness rule: ``swebench/sweb.eval.x86_64.<id>:latest`` with the id
    lower-cased and ``__`` written as ``_1776_``."""
    return f"swebench/sweb.eval.x86_64.{instance_id.lower()}:latest".replace("__", "_1776_")


def image_exists(image: str, client: Any = None) -> bool:
    import docker

    client = client if client is not None else docker_client()
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as e:
        raise SandboxError(f"cannot inspect image {image}: {e}") from e


def ensure_image(image: str, client: Any = None, *, pull: bool = True) -> None:
    """Make sure ``image`` is present; pulls only when it is absent (and ``pull``)."""
    client = client if client is not None else docker_client()
    if image_exists(image, client):
        return
    hint = (
        GENERIC_IMAGE_HELP.format(image=image)
        if "codemonkeys-sandbox" in image
        else (f"pull it with `docker pull {image}` on a machine with registry access")
    )
    if not pull or image.startswith("codemonkeys-"):
        # Our own images are built locally, never published: pulling them cannot work.
        raise SandboxError(f"Docker image {image} is not present; {hint}")
    try:
        client.images.pull(image)
    except Exception as e:
        raise SandboxError(
            f"Docker image {image} is not present and pulling it failed ({e}); {hint}"
        ) from e


def _owner_alive(labels: dict[str, str]) -> bool:
    """True when the container's creating process still runs on this host."""
    if labels.get(HOST_LABEL) != socket.gethostname():
        return False
    try:
        pid = int(labels.get(PID_LABEL, ""))
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def clean_containers(
    client: Any = None, *, run_id: str | None = None, include_live: bool = False
) -> int:
    """Remove containers labelled ``org.codemonkeys.managed=1`` (of ``run_id`` only, when
    given). Containers whose creating process is still alive on this host are kept unless
    ``include_live`` (so `clean` never pulls the rug from under a running run). Returns
    how many were removed."""
    client = client if client is not None else docker_client()
    filters = {"label": [f"{MANAGED_LABEL}=1"]}
    if run_id:
        filters["label"].append(f"{RUN_LABEL}={run_id}")
    removed = 0
    for c in client.containers.list(all=True, filters=filters):
        if not include_live and _owner_alive(c.labels or {}):
            continue
        try:
            c.remove(force=True)
            removed += 1
        except Exception:  # already gone (auto-removed or removed concurrently)
            pass
    return removed


def remove_host_orphans(run_id: str, host: str | None = None) -> int:
    """Remove ``run_id``'s containers that a process of this host created and that outlived
    it (a cluster node lost mid-problem); those of live processes, and of other hosts
    sharing the engine, are kept. ``host``: the engine's socket (a sandbox kind's). How many
    were removed."""
    mine = [f"{MANAGED_LABEL}=1", f"{RUN_LABEL}={run_id}", f"{HOST_LABEL}={socket.gethostname()}"]
    removed = 0
    with contextlib.suppress(Exception):  # an engine hiccup must not cost the problem
        for c in docker_client(host=host).containers.list(all=True, filters={"label": mine}):
            if not _alive((c.labels or {}).get(PID_LABEL, "")):
                with contextlib.suppress(Exception):  # gone meanwhile
                    c.remove(force=True)
                    removed += 1
    return removed


def _alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except ValueError:
        return True  # no owner recorded: not ours to judge
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
