"""SWE-bench instance images: the official name rule, pulling when absent, removal.

The official per-instance images hold the repository at /testbed with its environment
installed. A dataset row may name its image (the 5.x datasets carry an ``image`` column);
otherwise the name follows the rule the harness itself uses
(``swebench.image_builder.image_spec.ImageSpec.name``): ``sweb.eval.x86_64.<id>:latest``,
lower-cased, under the ``swebench`` namespace, with ``__`` replaced by ``_1776_`` because
Docker Hub forbids double underscores in repository names. The rule itself is
``codemonkeys.sandbox.images.swebench_image_name``; this module adds the row logic and the
per-problem ``ImageMissing`` error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.images import ensure_image, image_exists, swebench_image_name

log = logging.getLogger(__name__)

official_image_name = swebench_image_name
"""The one implementation of the rule lives with the sandbox images; this name is kept
for SWE-bench code (tests check it against ``swebench.image_builder.ImageSpec.name``)."""


class ImageMissing(SandboxError):
    """An instance image is not on the local engine and could not be pulled.

    A per-problem failure: the scheduler records it for that problem and goes on."""


def instance_image(row: Mapping[str, Any]) -> str:
    """The row's ``image`` when it names one, else the official name by rule."""
    image = row.get("image")
    if isinstance(image, str) and image.strip():
        return image.strip()
    instance_id = row.get("instance_id")
    if not isinstance(instance_id, str) or not instance_id:
        raise ValueError("cannot name an instance image for a row without instance_id")
    return official_image_name(instance_id)


def image_present(name: str, client: Any) -> bool:
    return image_exists(name, client)


def ensure_instance_image(name: str, client: Any) -> None:
    """Make sure ``name`` is on the local engine: nothing to do when present, one pull
    attempt when absent. Raises ``ImageMissing`` (naming the image and the pull error)
    when it stays absent, so the caller can fail this one problem and go on."""
    try:
        ensure_image(name, client, pull=True)
    except ImageMissing:
        raise
    except SandboxError as e:
        raise ImageMissing(
            f"{e}. Or give the dataset row an `image` field naming an image you have."
        ) from e


def remove_instance_image(name: str, client: Any) -> bool:
    """Remove an instance image once its problem is done (the full Verified set is
    hundreds of GB). Returns True when removed, False when it was absent or still in
    use by a container (logged; never raises for those, since freeing disk is best
    effort and must not fail a problem that already finished)."""
    import docker.errors

    from codemonkeys.sandbox.prepared import remove_prepared_images

    try:
        # its prepared copy first: while that exists, removing the image only untags it
        remove_prepared_images(client, source=name)
        client.images.remove(name)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as e:
        log.warning("could not remove image %s: %s", name, e)
        return False
