"""Creating a sandbox container, and the root script that prepares it for scripts.

``create_container`` asks the engine for one container with every limit set up front:
network off (unless ``sandbox.network``), memory without swap, CPUs, a pids limit,
``no-new-privileges``, a reduced capability set, size-limited scratch tmpfs mounts on
``/tmp`` and ``/var/tmp`` and the labels ``codemonkeys clean`` finds. Its PID 1 is a bash
loop that idles and reaps orphans (``REAPER_MAIN``). ``HARDEN`` runs once as root before
any script, so the unprivileged script user can write only the work tree and scratch; the
other root scripts here kill that user's processes and tidy up after a reset or a patch.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING, cast

from codemonkeys.sandbox.agent import TOUCHED_LIST, TOUCHED_STATE
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.images import GENERIC_IMAGE_HELP
from codemonkeys.sandbox.spec import (
    HOST_LABEL,
    MANAGED_LABEL,
    PID_LABEL,
    PROBLEM_LABEL,
    SandboxSpec,
    parse_size,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

KILL_EXIT = 137  # 128 + SIGKILL
EXEC_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
# Capabilities nobody's test script needs; CHOWN/DAC_OVERRIDE/SETUID etc. stay because
# test suites and package installs running as root inside the container rely on them.
CAP_DROP = ["NET_RAW", "NET_BIND_SERVICE", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"]
# PID 1 of every container: idles forever and, being bash, reaps the orphans that killed
# process trees leave behind (a plain `sleep infinity` as PID 1 never reaps, so zombies of
# a fork bomb would keep the pids limit exhausted). PID 1 has no signal handlers, so the
# `kill -9 -1` in reset cannot hit it.
REAPER_MAIN = "while :; do sleep 3600 & wait $!; done"
SCRATCH_MOUNTS = ("/tmp", "/var/tmp")


def on_scratch(path: str) -> bool:
    """Is ``path`` (absolute) on a scratch tmpfs? ``docker cp`` cannot see those mounts."""
    return any(path == m or path.startswith(m + "/") for m in SCRATCH_MOUNTS)


# Once per container, as root, before any script: scratch dirs for the sandbox user
# (SCRATCH_SETUP, on the container's own tmpfs); once per image (HARDEN, kept in a
# prepared image, see prepared.py): a system git config so *its* git accepts the root-owned repo (ours ignores system config);
# nothing outside the work tree and the scratch mounts left writable by it; the tracked
# files as in the base commit (an image's install steps edit some: reset, which restores
# only what scripts change, must start from the base); in the work
# tree, directories root-owned and sticky (it may add files, never move .git or the
# image's untracked files), tracked files its own, .git and kept files root's; the
# index's stat data refreshed after those chowns (else the first reset re-reads every file).
# Only what needs it is changed: a chown or chmod copies a file up into the container's
# layer even when nothing changes, and `chmod -R` follows a kept symlink (sphinx images keep
# `.tox/py39/lib`, a link to the whole conda environment). The revert to the base compares
# size and mtime only (the image's index holds another layer's inodes and ctimes, so the
# default would re-read every file; an edit racing the index's own write is still caught).
SCRATCH_SETUP = r"""
mkdir -p -m 755 /tmp/codemonkeys && mkdir -p -m 700 /tmp/home && chown "$U:$U" /tmp/home || exit 1
"""
HARDEN = r"""
for t in setpriv timeout find xargs install base64 stat; do
  command -v $t > /dev/null || { echo "the image lacks $t (util-linux/coreutils/findutils), which the sandbox needs to run scripts unprivileged" >&2; exit 1; }
done
command git config --system --get-all safe.directory 2>/dev/null | grep -qx '[*]' || command git config --system --add safe.directory '*' 2>/dev/null
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /var/tmp -o -path "$WD" \) -prune -o ! -type l \( \( -user "$U" -exec chown -h 0:0 {} + \) , \( -perm -0002 -exec chmod o-w {} + \) \)
git -c core.checkStat=minimal reset -q --hard || exit 1
find . -path ./.git -prune -o -type d -exec chown 0:0 {} + -exec chmod 1777 {} + || exit 1
git ls-files -z | xargs -0r chown -h "$U:$U" || exit 1
chown -R 0:0 .git && chmod -R go-w .git || exit 1
if [ -s "$KEEP" ]; then xargs -0r -a "$KEEP" sh -c 'n=$#; for p; do set -- "$@" "./$p"; done; shift $n; find "$@" \( ! -user 0 -exec chown -h 0:0 {} + \) , \( ! -type l -perm /022 -exec chmod go-w {} + \)' keep || exit 1; fi
git update-index -q --refresh > /dev/null 2>&1; true
"""


def kill_strays_script(uid: int) -> str:
    """Shell: kill every process of the sandbox user, if any is left (twice, for forks in
    flight); a /proc/<pid> not owned by us (root) belongs to the sandbox user."""
    setpriv = f"setpriv --reuid={uid} --regid={uid} --clear-groups"
    return (
        'for d in /proc/[0-9]*; do if [ ! -O "$d" ] && [ -e "$d" ]; then '
        f"{setpriv} bash -c 'kill -9 -1; kill -9 -1' 2>/dev/null; break; fi; done\n"
    )


def reset_extra_script(uid: int) -> str:
    """Shell run by reset after git: scratch mounts emptied (rm never follows a symlink it
    is given), System V IPC objects and POSIX message queues removed; then the list of
    what changed starts afresh (``TOUCHED_LIST``). ``/tmp/codemonkeys`` (root's, 755: the
    script user can neither write in it nor move it) is kept; everything else on scratch
    goes, ``/tmp/home`` is made anew."""
    u = uid
    return (
        "shopt -s dotglob nullglob; set -- /tmp/* /var/tmp/* /dev/shm/* /dev/mqueue/*; shopt -u dotglob nullglob\n"
        "k=/tmp/codemonkeys; ok=; if [ -d $k ] && [ ! -L $k ] && [ -O $k ]; then ok=1; fi\n"
        'del=(); for f in "$@"; do [ -n "$ok" ] && [ "$f" = $k ] && continue; del+=("$f"); done\n'
        'if [ ${#del[@]} -gt 0 ]; then rm -rf -- "${del[@]}" || exit 1; fi\n'
        f'{{ [ -n "$ok" ] || install -d -m 755 $k; }} && install -d -m 700 -o {u} -g {u} /tmp/home || exit 1\n'
        "for f in shm msg sem; do mapfile -t l < /proc/sysvipc/$f 2>/dev/null; if [ ${#l[@]} -gt 1 ]; then ipcrm -a 2>/dev/null; break; fi; done\n"
        + f"echo ok > {TOUCHED_STATE} || exit 1\n"
    )


TRACKING_START = f": > {TOUCHED_LIST} && echo ok > {TOUCHED_STATE} || exit 1\n"
"""The work tree is the base now: the list of what changed starts empty and valid."""


def after_apply_script(uid: int) -> str:
    """Shell run after a patch applied (``$paths``): patched files belong to the script
    user again; directories the patch created become sticky and writable like the rest
    of the tree; both go on reset's list of what changed (``TOUCHED_LIST``): paths that
    existed before the patch (``$pre``) as ``c`` (restored from the base if tracked,
    never cleaned: an untracked one was listed by whatever made it), new ones and new
    directories as ``o`` (cleaned too)."""
    return (
        'nd=(); for f in "${paths[@]}"; do d=$f; while [ "${d%/*}" != "$d" ]; do d=${d%/*}; '
        'if [ -d "$d" ] && [ ! -k "$d" ]; then nd+=("$d"); fi; done; done; '
        '[ ${#nd[@]} -eq 0 ] || chmod 1777 -- "${nd[@]}"; '
        f'chown -h {uid}:{uid} -- "${{paths[@]}}" 2>/dev/null; '
        'declare -A was; for f in "${pre[@]}"; do was[x$f]=1; done; new=(); '
        'for f in "${paths[@]}"; do [ -n "${was[x$f]}" ] || new+=("$f"); done; new+=("${nd[@]}"); '
        '[ ${#pre[@]} -eq 0 ] || printf "c%s\\0" "${pre[@]}" >> '
        f"{TOUCHED_LIST}; "
        '[ ${#new[@]} -eq 0 ] || printf "o%s\\0" "${new[@]}" >> '
        f"{TOUCHED_LIST};"
    )


def _labels(spec: SandboxSpec) -> dict[str, str]:
    return {
        MANAGED_LABEL: "1",
        PID_LABEL: str(os.getpid()),
        HOST_LABEL: socket.gethostname(),
        **spec.labels,
    }


def _name(spec: SandboxSpec) -> str:
    hint = "".join(
        ch if ch.isalnum() or ch in "-_." else "_"
        for ch in spec.labels.get(PROBLEM_LABEL, "sandbox")
    )
    return f"codemonkeys-{hint[:40]}-{uuid.uuid4().hex[:8]}"


def _missing_image_error(image: str) -> SandboxError:
    hint = (
        GENERIC_IMAGE_HELP.format(image=image)
        if "codemonkeys-sandbox" in image
        else f"pull it with `docker pull {image}` (or call ensure_image)"
    )
    return SandboxError(f"Docker image {image} not found; {hint}")


def create_container(client: DockerClient, spec: SandboxSpec) -> Container:
    """A created (not started) container for ``spec``, limits and labels set.

    Create, not run: ``run`` pulls a missing image implicitly, and pulling is
    ``ensure_image``'s decision (tried only when asked, with a clear error)."""
    import docker

    scratch = f"rw,exec,nosuid,nodev,size={parse_size(spec.scratch_size)},mode=1777"
    environment = {**EXEC_ENV, **{k: os.environ[k] for k in spec.pass_env if k in os.environ}}
    try:
        return client.containers.create(
            spec.image,
            entrypoint=["bash", "-c", REAPER_MAIN],
            command=[],
            user="0:0",
            tmpfs={m: scratch for m in SCRATCH_MOUNTS},
            name=_name(spec),
            labels=_labels(spec),
            network_mode=None if spec.network else "none",
            mem_limit=spec.memory,
            memswap_limit=spec.memory,
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids_limit,
            privileged=False,
            cap_drop=CAP_DROP,
            security_opt=["no-new-privileges"],
            environment=environment,
        )
    except docker.errors.ImageNotFound as e:
        raise _missing_image_error(spec.image) from e
    except docker.errors.DockerException as e:
        raise SandboxError(f"could not start a container from {spec.image}: {e}") from e


EXEC_END = b"@@codemonkeys-exec-end@@"


def exec_framed(
    container: Container, script: str, timeout: float | None
) -> tuple[int | None, bytes, bytes]:
    """``script`` as root through a plain ``docker exec`` (the path without the agent):
    exit status, stdout, stderr. Its stdout must end in ``EXEC_END``: an exec can lose a
    short command's output whole (see archive.py), and an empty stdout must never pass for
    the command's answer. ``timeout=None``: no ``timeout`` wrapper (needed when the
    script kills every process but itself, as reset does)."""
    argv = ["bash", "-c", 'bash -c "$1"; rc=$?; printf %s "$2"; exit $rc', "_", script]
    argv.append(EXEC_END.decode())
    if timeout is not None:
        argv = ["timeout", "-s", "KILL", f"{timeout:.3f}", *argv]
    try:
        res = container.exec_run(argv, demux=True, environment=EXEC_ENV, user="0")
    except Exception as e:
        raise SandboxError(f"docker exec failed in {container.name}: {e}") from e
    # demux=True: a (stdout, stderr) pair, which the SDK's types cannot say
    stdout, stderr = cast("tuple[bytes | None, bytes | None]", res.output or (None, None))
    stdout = stdout or b""
    if stdout.endswith(EXEC_END):
        return res.exit_code, stdout[: -len(EXEC_END)], stderr or b""
    if res.exit_code == KILL_EXIT:  # killed (its timeout): no end mark to expect
        return res.exit_code, stdout, stderr or b""
    raise SandboxError(
        f"docker exec in {container.name} lost the command's output "
        f"(exit {res.exit_code}, {len(stdout)} bytes, no end mark)"
    )
