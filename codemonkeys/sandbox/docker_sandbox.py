"""DockerSandbox: one long-lived container holding the repository at its base commit.

The container's main process is a bash loop that reaps orphans; our commands go through
the in-container agent (agent.py) or ``docker exec``, as root. Model-written scripts run
as an unprivileged uid that can write only the work tree and the scratch tmpfs mounts
(``_harden``), so ``reset()`` can forget everything they did. Limits are enforced by the
engine (memory without swap, CPUs, pids, no network, no new privileges, a reduced
capability set, size-limited tmpfs) and by the run wrapper (disk); every container carries
the ``org.codemonkeys.managed=1`` label so a crash leaves nothing that ``clean`` cannot find.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import io
import logging
import os
import posixpath
import shlex
import socket
import tarfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from posixpath import normpath
from typing import Any

from codemonkeys.sandbox.agent import (
    PRELUDE_FAILED,
    PRIVATE_ROOT,
    RUN_LIB,
    SANDBOX_UID,
    Agent,
    AgentBroken,
)
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.common import SandboxFileNotFound, ShellGitSandbox
from codemonkeys.sandbox.docker_client import docker_client
from codemonkeys.sandbox.gittree import host_tree_tar
from codemonkeys.sandbox.images import GENERIC_IMAGE_HELP
from codemonkeys.sandbox.output import BoundedOutput
from codemonkeys.sandbox.spec import (
    HOST_LABEL,
    MANAGED_LABEL,
    PID_LABEL,
    PROBLEM_LABEL,
    SandboxSpec,
    parse_size,
)

log = logging.getLogger(__name__)

EXEC_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
# Capabilities nobody's test script needs; CHOWN/DAC_OVERRIDE/SETUID etc. stay because
# test suites and package installs running as root inside the container rely on them.
CAP_DROP = ["NET_RAW", "NET_BIND_SERVICE", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"]
WATCHDOG_GRACE_S = 5.0
# PID 1 of every container: idles forever and, being bash, reaps the orphans that killed
# process trees leave behind (a plain `sleep infinity` as PID 1 never reaps, so zombies of
# a fork bomb would keep the pids limit exhausted). PID 1 has no signal handlers, so the
# `kill -9 -1` in reset cannot hit it.
# `timeout` makes itself the leader of a new process group and SIGKILLs the group when the
# time is up; when the command ends on its own we kill what is left of its group
# (background jobs, a fork bomb's children), so nothing outlives the run.
REAPER_MAIN = "while :; do sleep 3600 & wait $!; done"
KILL_EXIT = 137  # 128 + SIGKILL
SCRATCH_MOUNTS = ("/tmp", "/var/tmp")
RUN_FILE = "/tmp/codemonkeys/.run.sh"

# Once per container, as root, before any script: scratch dirs for the sandbox user; a
# system git config so *its* git accepts the root-owned repo (ours ignores system config);
# nothing outside the work tree and the scratch mounts left writable by it; in the work
# tree, directories root-owned and sticky (it may add files, never move .git or the
# image's untracked files), tracked files its own, .git and kept files root's.
HARDEN = r"""
for t in setpriv timeout find xargs install base64 stat; do
  command -v $t > /dev/null || { echo "the image lacks $t (util-linux/coreutils/findutils), which the sandbox needs to run scripts unprivileged" >&2; exit 1; }
done
mkdir -p -m 755 /tmp/codemonkeys && mkdir -p -m 700 /tmp/home && chown "$U:$U" /tmp/home || exit 1
command git config --system --get-all safe.directory 2>/dev/null | grep -qx '[*]' || command git config --system --add safe.directory '*' 2>/dev/null
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /var/tmp -o -path "$WD" \) -prune -o ! -type l \( \( -user "$U" -exec chown -h 0:0 {} + \) , \( -perm -0002 -exec chmod o-w {} + \) \)
find . -path ./.git -prune -o -type d -exec chown 0:0 {} + -exec chmod 1777 {} + || exit 1
git ls-files -z | xargs -0r chown -h "$U:$U" || exit 1
chown -R 0:0 .git && chmod -R go-w .git || exit 1
if [ -s "$KEEP" ]; then xargs -0r -a "$KEEP" chown -hR 0:0 && xargs -0r -a "$KEEP" chmod -R go-w; fi
"""
INLINE_WRITE_LIMIT = 48 * 1024  # base64 of it stays well under Linux's 128 KiB per-argument limit

_live: weakref.WeakSet[DockerSandbox] = weakref.WeakSet()
_live_lock = threading.Lock()


def close_all_live() -> None:
    """Remove every container this process still holds (atexit, SIGTERM)."""
    with _live_lock:
        boxes = list(_live)
    for box in boxes:
        with contextlib.suppress(Exception):
            box.close()


atexit.register(close_all_live)


class DockerSandbox(ShellGitSandbox):
    def __init__(self, spec: SandboxSpec, client: Any = None, *, repo_tar: bytes | None = None):
        """Create and prepare the container. ``repo_tar`` lets a pool compute the copy of a
        local repository once for all its containers."""
        import docker

        self.spec = spec
        self.workdir = spec.workdir.rstrip("/") or "/"
        self.env_setup = spec.env_setup
        self.max_output_chars = spec.max_output_chars
        self.default_timeout = spec.default_timeout
        self.keep_untracked = []
        self.client = client if client is not None else docker_client()
        self.api = self.client.api
        self._closed = False
        self._pending: list[tuple[str, bytes]] = []
        self._agent: Agent | None = None
        self._agent_usable = spec.agent
        self._agent_lock = threading.RLock()
        self._pending_lock = threading.Lock()
        self.private_dir = f"{PRIVATE_ROOT}/work"
        self.uid = SANDBOX_UID
        self.disk_limit = parse_size(spec.disk_limit)
        self.broken = False
        """Set when the sandbox itself failed (not the script): the pool discards it."""
        scratch = f"rw,exec,nosuid,nodev,size={parse_size(spec.scratch_size)},mode=1777"
        environment = {
            **EXEC_ENV,
            **{k: os.environ[k] for k in spec.pass_env if k in os.environ},
        }
        labels = {
            MANAGED_LABEL: "1",
            PID_LABEL: str(os.getpid()),
            HOST_LABEL: socket.gethostname(),
            **spec.labels,
        }
        name_hint = "".join(
            ch if ch.isalnum() or ch in "-_." else "_"
            for ch in spec.labels.get(PROBLEM_LABEL, "sandbox")
        )
        try:
            # create + start, not run: `run` pulls a missing image implicitly, and pulling
            # is ensure_image's decision (tried only when asked, with a clear error).
            self.container = self.client.containers.create(
                spec.image,
                entrypoint=["bash", "-c", REAPER_MAIN],
                command=[],
                user="0:0",
                tmpfs={m: scratch for m in SCRATCH_MOUNTS},
                name=f"codemonkeys-{name_hint[:40]}-{uuid.uuid4().hex[:8]}",
                labels=labels,
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
            hint = (
                GENERIC_IMAGE_HELP.format(image=spec.image)
                if "codemonkeys-sandbox" in spec.image
                else (f"pull it with `docker pull {spec.image}` (or call ensure_image)")
            )
            raise SandboxError(f"Docker image {spec.image} not found; {hint}") from e
        except docker.errors.DockerException as e:
            raise SandboxError(f"could not start a container from {spec.image}: {e}") from e
        with _live_lock:
            _live.add(self)
        try:
            self.container.start()
            if spec.repo_path is not None:
                self._copy_repo_in(repo_tar)
            else:
                self._adopt_image_repo(spec.base_commit)
            self._harden()
        except BaseException:
            self.close()
            raise

    @property
    def id(self) -> str:
        return self.container.id

    def _copy_repo_in(self, repo_tar: bytes | None) -> None:
        assert self.spec.repo_path is not None
        data = (
            repo_tar
            if repo_tar is not None
            else host_tree_tar(self.spec.repo_path, self.spec.base_commit, self.spec.subdir)
        )
        wd = shlex.quote(self.workdir)
        code, _, err = self._sh(
            f"mkdir -p {wd} && find {wd} -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +", 60
        )
        if code != 0:
            raise SandboxError(
                f"cannot prepare {self.workdir} in the container: {err.decode(errors='replace')}"
            )
        if not self.container.put_archive(self.workdir, data):
            raise SandboxError(f"copying the repository into {self.workdir} failed")
        self._init_copied_repo()

    def _vars(self) -> str:
        return f"U={self.uid}; WD={shlex.quote(self.workdir)}; DISK={self.disk_limit}; D={PRIVATE_ROOT}/run\n"

    def _harden(self) -> None:
        """Once, before any script runs: see HARDEN."""
        keep = f"{self.private_dir}/.keep"
        self.write_file(
            keep,
            b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in self.keep_untracked),
        )
        self._git_ok(
            f"KEEP={shlex.quote(keep)}; "
            + self._vars()
            + HARDEN
            + f"mkdir -p -m 700 {self.private_dir} && cp .git/config {self.private_dir}/.git-config",
            "preparing the sandbox (permissions, scratch)",
        )

    def _kill_strays(self) -> str:
        # Every process of the sandbox user, if any is left (twice, for forks in flight);
        # a /proc/<pid> not owned by us (root) belongs to the sandbox user.
        setpriv = f"setpriv --reuid={self.uid} --regid={self.uid} --clear-groups"
        return (
            'for d in /proc/[0-9]*; do if [ ! -O "$d" ] && [ -e "$d" ]; then '
            f"{setpriv} bash -c 'kill -9 -1; kill -9 -1' 2>/dev/null; break; fi; done\n"
        )

    def _reset_extra(self) -> str:
        # Scratch mounts emptied (rm never follows a symlink it is given), System V IPC
        # objects removed, and every tracked file given back to the sandbox user (git
        # rewrites files as root; after a fork bomb it was seen to leave the whole tree
        # root-owned, so honest scripts could not edit it).
        u = self.uid
        return (
            "shopt -s dotglob nullglob; set -- /tmp/* /var/tmp/* /dev/shm/*; shopt -u dotglob nullglob\n"
            'if [ $# -gt 0 ]; then rm -rf -- "$@" || exit 1; fi\n'
            f"install -d -m 755 /tmp/codemonkeys && install -d -m 700 -o {u} -g {u} /tmp/home || exit 1\n"
            "for f in shm msg sem; do mapfile -t l < /proc/sysvipc/$f 2>/dev/null; if [ ${#l[@]} -gt 1 ]; then ipcrm -a 2>/dev/null; break; fi; done\n"
            f"git ls-files -z | xargs -0r chown -h {u}:{u} || exit 1\n"
        )

    def _after_apply(self) -> str:
        # Patched files belong to the script user again; directories the patch created
        # become sticky and writable like the rest of the tree.
        u = self.uid
        return (
            'nd=(); for f in "${paths[@]}"; do d=$f; while [ "${d%/*}" != "$d" ]; do d=${d%/*}; '
            'if [ -d "$d" ] && [ ! -k "$d" ]; then nd+=("$d"); fi; done; done; '
            '[ ${#nd[@]} -eq 0 ] || chmod 1777 -- "${nd[@]}"; '
            f'chown -h {u}:{u} -- "${{paths[@]}}" 2>/dev/null;'
        )

    # -- primitives ------------------------------------------------------------------------
    def _take_pending(self) -> str:
        """Shell snippet materialising the queued small writes (see write_file)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        parts = []
        for target, data in pending:
            b64 = base64.b64encode(data).decode()
            parts.append(
                f"mkdir -p {shlex.quote(posixpath.dirname(target))} && base64 -d > {shlex.quote(target)} "
                f"<<'CODEMONKEYS_EOF' || {{ echo 'codemonkeys: cannot write {target}' >&2; exit 125; }}\n"
                f"{b64}\nCODEMONKEYS_EOF\n"
            )
        return "".join(parts)

    def _flush_pending(self) -> None:
        snippet = self._take_pending()
        if snippet:
            code, out, err = self._sh_raw(snippet, 60)
            if code != 0:
                raise SandboxError(f"writing files failed: {(err or out).decode(errors='replace')}")

    def _sh(self, script: str, timeout: float | None = 300.0) -> tuple[int | None, bytes, bytes]:
        return self._sh_raw(self._take_pending() + script, timeout)

    def _get_agent(self) -> Agent | None:
        """The in-container command server (see agent.py), started on first use; None
        when it cannot run in this image (then every call is a plain docker exec)."""
        if self._agent is None and self._agent_usable:
            try:
                agent = Agent(
                    self.api,
                    self.container.id,
                    EXEC_ENV,
                    workdir=self.workdir,
                    disk_limit=self.disk_limit,
                    uid=self.uid,
                )
                rc, out, _, _ = agent.call("sh", 30, 0, "echo ok", io_timeout=60)
                if rc != 0 or out != b"ok\n":
                    raise AgentBroken(f"agent self-test answered {rc} {out!r}")
                self._agent = agent
            except Exception as e:
                log.info(
                    "sandbox agent unavailable in %s, using docker exec: %s", self.spec.image, e
                )
                self._agent_usable = False
        return self._agent

    def _drop_agent(self) -> None:
        if self._agent is not None:
            self._agent.close()
            self._agent = None

    def _sh_raw(
        self, script: str, timeout: float | None = 300.0
    ) -> tuple[int | None, bytes, bytes]:
        with self._agent_lock:
            agent = self._get_agent()
            if agent is not None:
                try:
                    rc, out, err, _ = agent.call(
                        "sh", timeout, 0, script, io_timeout=(timeout or 600.0) + 30
                    )
                    return rc, out, err
                except AgentBroken as e:
                    raise self._infra_failure("lost the sandbox agent", e) from e
        # timeout=None: no `timeout` wrapper (needed when the script kills every process
        # but itself, as reset does).
        argv = ["bash", "-c", script]
        if timeout is not None:
            argv = ["timeout", "-s", "KILL", f"{timeout:.3f}", *argv]
        try:
            res = self.container.exec_run(argv, demux=True, environment=EXEC_ENV, user="0")
        except Exception as e:
            raise SandboxError(f"docker exec failed in {self.container.name}: {e}") from e
        out, err = res.output if res.output else (None, None)
        return res.exit_code, out or b"", err or b""

    def _sh_stream(self, script: str) -> Iterator[bytes]:
        self._flush_pending()
        eid = self.api.exec_create(
            self.container.id,
            ["bash", "-c", script],
            stdout=True,
            stderr=False,
            environment=EXEC_ENV,
            user="0",
        )["Id"]
        yield from self.api.exec_start(eid, stream=True, demux=False)
        code = self.api.exec_inspect(eid).get("ExitCode")
        if code not in (0, None):
            raise SandboxError(f"streaming command failed with exit {code}")

    def _kill_everything(self) -> None:
        """Last resort (a hung stream): kill every process but PID 1, the agent too."""
        self._drop_agent()
        with contextlib.suppress(Exception):
            self.container.exec_run(["bash", "-c", "kill -9 -1"], detach=True, user="0")

    def _alive(self) -> bool:
        """Does the container still run commands? (A killed run looks like exit 137.)"""
        try:
            ok = self.container.exec_run(["true"], user="0").exit_code == 0
            self.container.reload()
            return ok and self.container.status == "running"
        except Exception:
            return False

    def _infra_failure(self, what: str, cause: Exception) -> SandboxError:
        """The sandbox failed, not the script: mark it for the pool to discard."""
        self.broken = True
        self._kill_everything()
        state = "gone"
        with contextlib.suppress(Exception):
            self.container.reload()
            state = self.container.status
        return SandboxError(f"{what} in {self.container.name} (container {state}): {cause}")

    def _run_capture(
        self, script: str, timeout: float, sink: BoundedOutput
    ) -> tuple[int | None, bool]:
        # The script runs as the sandbox user under `timeout` in its own process group
        # (RUN_LIB's cm_run); output streams out as produced, so nothing printed before a
        # kill is lost. The agent cannot be reached by the script, so a broken stream is
        # the sandbox's failure (container killed, engine gone), never the script's.
        start = time.monotonic()
        with self._agent_lock:
            agent = self._get_agent()
            if agent is not None:
                try:
                    rc, head, tail, total = agent.call(
                        "run",
                        timeout,
                        sink.max_chars,
                        script,
                        io_timeout=timeout + WATCHDOG_GRACE_S + 10,
                        prelude=self._take_pending(),
                    )
                except AgentBroken as e:
                    raise self._infra_failure("lost the sandbox agent during a run", e) from e
                if rc == PRELUDE_FAILED:
                    self.broken = True
                    raise SandboxError(
                        f"could not write the script in {self.container.name}: "
                        + head.decode("utf-8", "replace")[-2000:]
                    )
                sink.feed(head)
                sink.feed(tail)
                sink.total = max(sink.total, total)
                elapsed = time.monotonic() - start
                return rc, rc == KILL_EXIT and elapsed >= timeout * 0.98
        self.write_file(RUN_FILE, script)
        argv = [
            "bash",
            "-c",
            self._take_pending()
            + self._vars()
            + 'mkdir -p -m 700 "$D"\n'
            + RUN_LIB
            + 'cm_run "$1" "$2" 2>&1',
            "run",
            f"{timeout:.3f}",
            RUN_FILE,
        ]
        try:
            eid = self.api.exec_create(
                self.container.id,
                argv,
                stdout=True,
                stderr=True,
                environment=EXEC_ENV,
                user="0",
            )["Id"]
            stream = self.api.exec_start(eid, stream=True, demux=False)
        except Exception as e:
            raise self._infra_failure("docker exec failed", e) from e
        watchdog = threading.Timer(timeout + WATCHDOG_GRACE_S, self._kill_everything)
        watchdog.daemon = True
        watchdog.start()
        try:
            for chunk in stream:
                sink.feed(chunk)
        except Exception as e:
            raise self._infra_failure("lost the output stream of a command", e) from e
        finally:
            watchdog.cancel()
        elapsed = time.monotonic() - start
        try:
            code = self.api.exec_inspect(eid).get("ExitCode")
        except Exception as e:
            raise self._infra_failure("cannot read a command's exit code", e) from e
        if (code is None or (code == KILL_EXIT and elapsed < timeout * 0.98)) and not self._alive():
            raise self._infra_failure(
                "the container stopped during a run", RuntimeError(f"exit {code}")
            )
        timed_out = (code == KILL_EXIT or code is None) and elapsed >= timeout * 0.98
        return code, timed_out

    def _abs(self, path: str) -> str:
        p = path if path.startswith("/") else f"{self.workdir}/{path}"
        return normpath(p)

    def write_file(self, path: str, content: str | bytes) -> None:
        data = (
            content.encode("utf-8", "surrogateescape")
            if isinstance(content, str)
            else bytes(content)
        )
        target = self._abs(path)
        # Small files are queued and written by the next command's own exec (one Docker
        # round trip instead of two per script run); large ones go through put_archive.
        with self._pending_lock:
            queued = sum(len(d) for _, d in self._pending)
            if len(data) + queued <= INLINE_WRITE_LIMIT:
                self._pending = [(t, d) for t, d in self._pending if t != target]
                self._pending.append((target, data))
                return
        self._flush_pending()
        if self._on_scratch(target):
            # docker cp (put/get_archive) cannot see tmpfs mounts: append in chunks.
            for i in range(0, max(1, len(data)), INLINE_WRITE_LIMIT):
                chunk = base64.b64encode(data[i : i + INLINE_WRITE_LIMIT]).decode()
                redirect = ">" if i == 0 else ">>"
                code, _, err = self._sh_raw(
                    f"mkdir -p {shlex.quote(posixpath.dirname(target))} && "
                    f"printf %s {chunk} | base64 -d {redirect} {shlex.quote(target)}",
                    60,
                )
                if code != 0:
                    raise SandboxError(f"cannot write {target}: {err.decode(errors='replace')}")
            return
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(target.lstrip("/"))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            ok = self.container.put_archive("/", buf.getvalue())
        except Exception as e:
            raise SandboxError(f"cannot write {target} in {self.container.name}: {e}") from e
        if not ok:
            raise SandboxError(f"cannot write {target} in {self.container.name}")

    @staticmethod
    def _on_scratch(target: str) -> bool:
        return any(target == m or target.startswith(m + "/") for m in SCRATCH_MOUNTS)

    def read_file(self, path: str) -> bytes:
        import docker

        target = self._abs(path)
        self._flush_pending()
        if self._on_scratch(target):
            code, out, err = self._sh_raw(
                f't={shlex.quote(target)}; if [ ! -e "$t" ]; then exit 3; fi; '
                f'if [ ! -f "$t" ]; then exit 4; fi; cat -- "$t"',
                120,
            )
            if code == 3:
                raise SandboxFileNotFound(f"{target} does not exist in the sandbox")
            if code != 0:
                raise SandboxError(
                    f"cannot read {target}: {err.decode(errors='replace')} (exit {code})"
                )
            return out
        try:
            stream, stat = self.container.get_archive(target)
        except docker.errors.NotFound as e:
            raise SandboxFileNotFound(f"{target} does not exist in the sandbox") from e
        except Exception as e:
            raise SandboxError(f"cannot read {target}: {e}") from e
        raw = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise SandboxError(f"{target} is not a regular file")
            f = tar.extractfile(member)
            assert f is not None
            return f.read()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _live_lock:
            _live.discard(self)
        self._drop_agent()
        with contextlib.suppress(Exception):  # already gone
            self.container.remove(force=True)

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
