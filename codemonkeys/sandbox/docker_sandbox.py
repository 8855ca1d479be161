"""DockerSandbox: one long-lived container holding the repository at its base commit.

- **Container** (``container.py``): created with every limit set by the engine: network
  off, memory without swap, CPUs, a pids limit, ``no-new-privileges``, a reduced capability
  set, size-limited **scratch tmpfs** on ``/tmp`` and ``/var/tmp``, and the
  ``org.codemonkeys.managed=1`` label (plus run, problem and owner pid/host) so a crash
  leaves nothing ``codemonkeys clean`` cannot find. PID 1 is a bash loop that reaps
  orphans. The repository is copied in (a local repo) or adopted in place (an image repo,
  purged of commits later than the base).
- **Two users**: our own commands (git, patching, reset) run as root; model-written
  scripts run as the **unprivileged uid** ``SANDBOX_UID`` through ``setpriv``, on any
  image. ``HARDEN`` (once, before any script) leaves only the work tree and the scratch
  mounts writable by that uid, so ``reset()`` can forget everything a script did.
- **Agent** (``agent.py``): root commands and runs go over one attached exec to an
  in-container server (``agent_server`` under the image's python3, else a bash loop), with
  a random **nonce** per request that no script can reach (it can neither forge an answer
  nor desynchronise the channel). Without one, every call is a plain ``docker exec``.
- **Runs**: the script runs under the time limit in its own process group with
  ``RLIMIT_FSIZE`` at the **disk limit**; a watchdog in the container kills it when the
  uid has written more than the limit to the work tree; afterwards every process of the
  uid is killed. Output is capped (head + tail) inside the container. On the ``docker
  exec`` path a host-side **watchdog** (``WATCHDOG_GRACE_S`` past the timeout) kills
  everything but PID 1 if the in-container timeout did not.
- **Reset** (``ShellGitSandbox.reset``, ``tracked_reset.py``): the uid's processes killed;
  over just the paths the runs and patches listed as changed, when that list is sound,
  new entries removed (the image's untracked files kept) and the base's files written
  again from the index and re-owned; else ``git reset --hard`` and ``git clean`` of the
  whole tree; scratch, ``/dev/shm`` and IPC emptied.
- **Prepared images** (``prepared.py``): an image repo is adopted and hardened once per
  image, committed, and every later container starts from that.
- **Infrastructure vs the script**: a lost agent, a broken stream or a stopped container
  raises ``SandboxError`` and marks the sandbox ``broken`` (the pool discards it); it is
  never reported as the script's exit code.

Details and the tests of each guarantee: ``docs/sandbox.md``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import io
import logging
import posixpath
import secrets
import shlex
import tarfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from posixpath import normpath
from typing import TYPE_CHECKING

from codemonkeys.sandbox.agent import (
    PRELUDE_FAILED,
    PRIVATE_ROOT,
    RUN_LIB,
    SANDBOX_UID,
    Agent,
    AgentBroken,
)
from codemonkeys.sandbox.archive import archive_file_chunks, read_archive_file
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.common import SandboxFileNotFound
from codemonkeys.sandbox.container import (
    EXEC_ENV,
    HARDEN,
    KILL_EXIT,
    SCRATCH_SETUP,
    TRACKING_START,
    create_container,
    exec_framed,
    on_scratch,
)
from codemonkeys.sandbox.kinds import engine_client
from codemonkeys.sandbox.output import BoundedOutput, EndMarked
from codemonkeys.sandbox.secret_copy import repo_copy
from codemonkeys.sandbox.spec import SandboxSpec, parse_size
from codemonkeys.sandbox.tracked_reset import TrackedReset

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

WATCHDOG_GRACE_S = 5.0
"""A run still going this long past its limit: the host kills all but PID 1 (agent too)."""
RUN_FILE = "/tmp/codemonkeys/.run.sh"
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


class DockerSandbox(TrackedReset):
    def __init__(
        self,
        spec: SandboxSpec,
        client: DockerClient | None = None,
        *,
        repo_tar: bytes | None = None,
    ) -> None:
        """Create and prepare the container (``repo_tar``: a pool's copy of a local repo)."""
        self.spec = spec
        self.workdir = spec.workdir.rstrip("/") or "/"
        self.env_setup = spec.env_setup
        self.max_output_chars = spec.max_output_chars
        self.default_timeout = spec.default_timeout
        self.keep_untracked = []
        self.client = client if client is not None else engine_client(spec.kind)
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
        self.prepared = self._prepared_image()  # the image it starts from, if prepared
        image = {"image": self.prepared} if self.prepared else {}
        self.container = create_container(self.client, spec.model_copy(update=image))
        with _live_lock:
            _live.add(self)
        try:
            with self._trusted_calls():
                self._start(repo_tar)
            self._tree_written = False
        except BaseException:
            self.close()
            raise

    def _start(self, repo_tar: bytes | None) -> None:
        """Start the container, put the repository in place, harden it for scripts."""
        self.container.start()
        if self.prepared:  # what the preparation found, and this container's scratch
            from codemonkeys.sandbox.prepared import META_PATH, read_meta

            out = self._git_ok(
                self._vars() + SCRATCH_SETUP + TRACKING_START + f"cat {META_PATH}", "starting"
            )
            self.base_commit, self.keep_untracked, self.keep_visible = read_meta(out)
            return
        if self.spec.repo_path is not None:
            self._copy_repo_in(repo_tar)
        else:
            self._adopt_image_repo(self.spec.base_commit)
        self._harden()

    def _prepared_image(self) -> str | None:
        from codemonkeys.sandbox.prepared import prepared_image

        return prepared_image(self.client, self.spec, self.uid, type(self))

    @property
    def id(self) -> str:
        cid = self.container.id
        assert cid is not None, "a created container always has an id"
        return cid

    def _copy_repo_in(self, repo_tar: bytes | None) -> None:
        assert self.spec.repo_path is not None
        data = repo_tar if repo_tar is not None else repo_copy(self.spec).tar
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
            + SCRATCH_SETUP
            + HARDEN
            + TRACKING_START
            + f"mkdir -p -m 700 {self.private_dir} && cp .git/config {self.private_dir}/.git-config",
            "preparing the sandbox (permissions, scratch)",
        )

    # -- primitives ------------------------------------------------------------------------
    def _take_pending(self) -> str:
        """Shell snippet materialising the queued small writes (see write_file)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        parts = []
        for target, data in pending:
            b64 = base64.b64encode(data).decode()
            d = shlex.quote(posixpath.dirname(target))
            parts.append(
                f"{{ [ -d {d} ] || mkdir -p {d}; }} && base64 -d > {shlex.quote(target)} "
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
        for python in (True, False) if self.spec.python_agent else (False,):
            if self._agent is not None or not self._agent_usable:
                break
            try:
                self._agent = Agent(
                    self.api,
                    self.id,
                    EXEC_ENV,
                    workdir=self.workdir,
                    disk_limit=self.disk_limit,
                    uid=self.uid,
                    python=python,
                )
            except Exception as e:
                log.info(
                    "sandbox agent (python=%s) unavailable in %s: %s", python, self.spec.image, e
                )
        self._agent_usable = self._agent is not None
        return self._agent

    def _drop_agent(self) -> None:
        if self._agent is not None:
            self._agent.close()
            self._agent = None

    def _sh_raw(
        self, script: str, timeout: float | None = 300.0
    ) -> tuple[int | None, bytes, bytes]:
        self._note_root_command()
        with self._agent_lock:
            agent = self._get_agent()
            if agent is not None:
                try:
                    kind, extra = self._request
                    rc, out, err, _ = agent.call(
                        kind, timeout, 0, script, io_timeout=(timeout or 600.0) + 30, prelude=extra
                    )
                    return rc, out, err
                except AgentBroken as e:
                    raise self._infra_failure("lost the sandbox agent", e) from e
        return exec_framed(self.container, script, timeout)

    def _sh_stream(self, script: str) -> Iterator[bytes]:
        """The stdout of ``script``: written to a file in the container through the framed
        channel, then read back through the archive API (see archive.py: a one-off
        ``docker exec`` can lose a short command's output whole)."""
        out = f"{self.private_dir}/.stream-{uuid.uuid4().hex[:12]}"
        self._git_ok(
            f"mkdir -p -m 700 {shlex.quote(self.private_dir)} && ( {script}\n) > {shlex.quote(out)}",
            "running a command",
        )
        try:
            yield from archive_file_chunks(self.container, out)
        finally:
            with contextlib.suppress(SandboxError):  # never hides why the read failed
                self._sh_raw(f"rm -f {shlex.quote(out)}", 60)

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
                rc = self._run_with_agent(agent, script, timeout, sink)
                return rc, rc == KILL_EXIT and time.monotonic() - start >= timeout * 0.98
        code = self._run_with_exec(script, timeout, sink)
        elapsed = time.monotonic() - start
        if (code is None or (code == KILL_EXIT and elapsed < timeout * 0.98)) and not self._alive():
            raise self._infra_failure(
                "the container stopped during a run", RuntimeError(f"exit {code}")
            )
        return code, (code == KILL_EXIT or code is None) and elapsed >= timeout * 0.98

    def _run_with_agent(
        self, agent: Agent, script: str, timeout: float, sink: BoundedOutput
    ) -> int | None:
        """One run through the agent (output capped in the container); its exit code."""
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
        return rc

    def _run_with_exec(self, script: str, timeout: float, sink: BoundedOutput) -> int | None:
        """One run through a plain ``docker exec`` of the same wrapper, with a host-side
        watchdog; its exit code (None when the engine does not know it). The output must
        end in the wrapper's mark (``EndMarked``), whose nonce reaches the root wrapper in
        its environment, which the script user cannot read."""
        self.write_file(RUN_FILE, script)
        nonce = secrets.token_hex(16)
        wrapper = (
            "E=$CM_END; unset CM_END\n"
            + self._take_pending()
            + self._vars()
            + 'mkdir -p -m 700 "$D"\n'
            + RUN_LIB
            + 'cm_run "$1" "$2" 2>&1; rc=$?; printf \'\\n@@CMEND %s %s\\n\' "$E" "$rc"; exit $rc'
        )
        argv = ["bash", "-c", wrapper, "run", f"{timeout:.3f}", RUN_FILE]
        env = {**EXEC_ENV, "CM_END": nonce}
        try:
            eid = self.api.exec_create(
                self.id, argv, stdout=True, stderr=True, environment=env, user="0"
            )["Id"]
            stream = self.api.exec_start(eid, stream=True, demux=False)
        except Exception as e:
            raise self._infra_failure("docker exec failed", e) from e
        marked = EndMarked(sink, nonce)
        watchdog = threading.Timer(timeout + WATCHDOG_GRACE_S, self._kill_everything)
        watchdog.daemon = True
        watchdog.start()
        try:
            for chunk in stream:
                marked.feed(chunk)
        except Exception as e:
            raise self._infra_failure("lost the output stream of a command", e) from e
        finally:
            watchdog.cancel()
        try:
            code = self.api.exec_inspect(eid).get("ExitCode")
        except Exception as e:
            raise self._infra_failure("cannot read a command's exit code", e) from e
        if marked.finish() is None and code not in (KILL_EXIT, None):  # killed: no mark due
            raise self._infra_failure("lost the output of a run", RuntimeError(f"exit {code}"))
        return code

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
        if not on_scratch(target) and not target.startswith(PRIVATE_ROOT + "/"):
            self._tree_written = True  # root writes it: reset must look at the whole tree
        # Small files are queued and written by the next command's own exec (one Docker
        # round trip instead of two per script run); large ones go through put_archive.
        with self._pending_lock:
            queued = sum(len(d) for _, d in self._pending)
            if len(data) + queued <= INLINE_WRITE_LIMIT:
                self._pending = [(t, d) for t, d in self._pending if t != target]
                self._pending.append((target, data))
                return
        with self._trusted_calls():
            self._flush_pending()
        if on_scratch(target):
            # docker cp (put/get_archive) cannot see tmpfs mounts: append in chunks.
            for i in range(0, max(1, len(data)), INLINE_WRITE_LIMIT):
                chunk = base64.b64encode(data[i : i + INLINE_WRITE_LIMIT]).decode()
                redirect = ">" if i == 0 else ">>"
                with self._trusted_calls():
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

    def read_file(self, path: str) -> bytes:
        target = self._abs(path)
        with self._trusted_calls():
            self._flush_pending()
        if on_scratch(target):
            with self._trusted_calls():
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
        return read_archive_file(self.container, target)

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
