"""Prepared sandbox images: an image repository's expensive first steps, done once.

Adopting the repository of an image (SWE-bench) costs seconds to tens of seconds per
container: ``PURGE_FUTURE`` repacks the base commit's objects, and ``HARDEN`` walks the
whole file system and changes the owner of every file of the work tree (each one copied up
into the container's layer). None of it depends on the container, so the first sandbox of
an image does it in a container no script has run in yet, and that container is committed
(``docker commit``) as ``codemonkeys-prepared:<key>``; every later sandbox of the same
image starts from it and only makes its scratch directories.

The key covers everything the result depends on: the source image's id (a rebuilt image
gets a new prepared image), the work tree, the base commit, the script uid and the text of
the scripts that prepared it (a codemonkeys version that prepares differently never reuses
an older layer). The layer is committed before any model-written script ran, so it holds
nothing of any problem's runs. Labels name the source image; ``codemonkeys clean`` removes
prepared images whose source image is gone (``--prepared`` removes them all).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Any, TypeAlias

from codemonkeys.sandbox.agent import AGENT_DIR, PRIVATE_ROOT, RUN_LIB
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.common import GIT_PRELUDE, PURGE_FUTURE
from codemonkeys.sandbox.container import HARDEN
from codemonkeys.sandbox.docker_client import docker_client
from codemonkeys.sandbox.spec import HOST_LABEL, MANAGED_LABEL, PID_LABEL, PROBLEM_LABEL

if TYPE_CHECKING:
    from collections.abc import Callable

    from docker import DockerClient

    from codemonkeys.sandbox.spec import SandboxSpec

    OpenBox: TypeAlias = Callable[[SandboxSpec, DockerClient], Any]
    """Opens a sandbox of a spec (the ``DockerSandbox`` class; a context manager)."""

log = logging.getLogger(__name__)

PREPARED_REPO = "codemonkeys-prepared"
PREPARED_LABEL = "org.codemonkeys.prepared"
SOURCE_ID_LABEL = "org.codemonkeys.prepared.source-id"
SOURCE_NAME_LABEL = "org.codemonkeys.prepared.source"
META_PATH = f"{PRIVATE_ROOT}/prepared.json"
"""In the prepared image: the base commit and the kept untracked paths (JSON)."""
SCRIPTS_DIGEST = hashlib.sha256(
    (GIT_PRELUDE + PURGE_FUTURE + HARDEN + RUN_LIB).encode()
).hexdigest()

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def prepared_tag(source_id: str, spec: SandboxSpec, uid: int) -> str:
    key = json.dumps([source_id, spec.workdir, spec.base_commit or "HEAD", uid, SCRIPTS_DIGEST])
    return f"{PREPARED_REPO}:{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _image_id(client: DockerClient, name: str) -> str | None:
    import docker

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as e:
        raise SandboxError(f"cannot inspect image {name}: {e}") from e


def prepared_image(
    client: DockerClient, spec: SandboxSpec, uid: int, open_box: OpenBox
) -> str | None:
    """The prepared image for ``spec`` (an image repository), committed now (in a sandbox
    ``open_box`` opens: the ``DockerSandbox`` class, handed in because it opens its own
    containers from this module's images, so this module cannot import it) if there is
    none yet; None for a copied-in repository, with ``spec.prepare`` off, when the source image is absent (the caller's create reports it) or
    the commit failed (the caller prepares its container itself, as before)."""
    if spec.repo_path is not None or not spec.prepare:
        return None
    source_id = _image_id(client, spec.image)
    if source_id is None:
        return None
    tag = prepared_tag(source_id, spec, uid)
    with _locks_lock:
        lock = _locks.setdefault(tag, threading.Lock())
    with lock:  # one build per tag in this process; the others wait and reuse it
        if _image_id(client, tag) is not None:
            return tag
        return _build(client, spec, tag, source_id, open_box)


def _labels(spec: SandboxSpec, source_id: str) -> dict[str, str]:
    return {
        PREPARED_LABEL: "1",
        SOURCE_ID_LABEL: source_id,
        SOURCE_NAME_LABEL: spec.image,
        # the preparing container's own labels must not become the image's
        MANAGED_LABEL: "",
        PID_LABEL: "",
        HOST_LABEL: "",
        PROBLEM_LABEL: "",
    }


def _build(
    client: DockerClient, spec: SandboxSpec, tag: str, source_id: str, open_box: OpenBox
) -> str | None:
    """Two commits: the adopted, hardened repository; then, in a container of that image,
    the index's stat data refreshed (a commit gives every file of its layer new inodes and
    ctimes, so an index refreshed before it would be stale in every later container, and
    each container's first reset would re-read the whole tree)."""
    import docker

    labels = _labels(spec, source_id)
    try:
        stage = _adopt_and_harden(client, spec, labels, open_box)
        refresh = client.containers.run(
            stage,
            entrypoint=["bash", "-c", GIT_PRELUDE + REFRESH],
            command=[],
            environment={"WD": spec.workdir},
            user="0:0",
            network_mode="none",
            labels={MANAGED_LABEL: "1", **_owner_labels()},
            detach=True,
        )
        try:
            if refresh.wait(timeout=600).get("StatusCode") != 0:
                raise SandboxError(f"refreshing the index failed: {refresh.logs()[-2000:]!r}")
            repository, _, key = tag.partition(":")
            refresh.commit(repository=repository, tag=key, conf={"Labels": labels})
        finally:
            refresh.remove(force=True)
    except docker.errors.APIError as e:
        log.warning("could not commit the prepared image of %s: %s", spec.image, e)
        return None
    return tag


REFRESH = 'cd "$WD" && git update-index -q --refresh > /dev/null; true'


def _owner_labels() -> dict[str, str]:
    import os
    import socket

    return {PID_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()}


def _adopt_and_harden(
    client: DockerClient, spec: SandboxSpec, labels: dict[str, str], open_box: OpenBox
) -> str:
    """An (untagged) image of a container that adopted and hardened the repository; its id."""
    prep = spec.model_copy(
        update={"prepare": False, "pass_env": [], "labels": {PROBLEM_LABEL: "prepare-image"}}
    )
    with open_box(prep, client) as box:
        meta = {
            "base_commit": box.base_commit,
            "keep_untracked": box.keep_untracked,
            "keep_visible": box.keep_visible,
        }
        box.write_file(META_PATH, json.dumps(meta))
        # nothing of the preparation's own commands stays in the image (the agent's
        # files neither: the agent stops first, the rest is a plain docker exec)
        box._drop_agent()
        box._agent_usable = False
        box._git_ok(f"rm -rf {AGENT_DIR} {PRIVATE_ROOT}/run; true", "tidying the prepared image")
        return str(box.container.commit(conf={"Labels": labels}).id)


def read_meta(raw: bytes) -> tuple[str, list[str], list[str]]:
    """(base commit, kept untracked paths, the visible ones) from the prepared image."""
    try:
        meta = json.loads(raw)
        return meta["base_commit"], list(meta["keep_untracked"]), list(meta["keep_visible"])
    except (ValueError, KeyError, TypeError) as e:
        raise SandboxError(f"the prepared image's {META_PATH} is malformed: {e}") from e


def _prepared(client: DockerClient) -> list[Any]:
    return list(client.images.list(filters={"label": f"{PREPARED_LABEL}=1"}))


def remove_prepared_images(
    client: DockerClient | None = None, *, source: str | None = None, orphans_only: bool = False
) -> int:
    """Remove prepared images: all of them, those of the image ``source`` (a name), or
    (``orphans_only``) those whose source name no longer names the image they were
    prepared from (removed, or rebuilt). How many were removed. Removing an instance
    image frees its disk only once its prepared image is removed too."""
    import docker

    client = client if client is not None else docker_client()
    removed = 0
    for image in _prepared(client):
        labels = image.labels or {}
        if source is not None and labels.get(SOURCE_NAME_LABEL) != source:
            continue
        name = labels.get(SOURCE_NAME_LABEL, "")
        if orphans_only and name and _image_id(client, name) == labels.get(SOURCE_ID_LABEL):
            continue
        try:
            client.images.remove(str(image.id), force=True)
            removed += 1
        except docker.errors.APIError as e:  # in use by a live sandbox, or already gone
            log.info("prepared image %s not removed: %s", image.id, e)
    return removed
