"""Behaviour shared by the Docker and local sandboxes, written once as shell scripts.

Both backends only need to (1) run a bash script and collect stdout/stderr, (2) stream a
script's stdout, (3) run a user command with a timeout into a ``BoundedOutput``, and
(4) read/write single files. Patch application, diff, reset and export are then the same
git commands everywhere, so the two backends cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

from codemonkeys.diffs import file_sections
from codemonkeys.sandbox.base import ExecResult, PatchResult, SandboxError
from codemonkeys.sandbox.gittree import (
    ChunkReader,
    blob_entries,
    iter_cat_file_batch,
    parse_ls_tree,
    write_blobs,
)
from codemonkeys.sandbox.output import BoundedOutput
from codemonkeys.sandbox.patching import check_patch_paths

SCRIPT_TMP = "/tmp/codemonkeys"

# Our own git calls: never run repository hooks or an fsmonitor, never read system or
# global config (only our -c settings and the repository's own), never ask for identity,
# never trip over "dubious ownership" (the repo may belong to another uid than ours).
# core.fsmonitor= (empty), not =false: git < 2.36 (the SWE-bench images carry 2.30) reads
# the value as a hook program and would run one named `false`; empty is off in every git.
GIT_UNSET = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
]
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
GIT_ARGS = [
    *("-c", "safe.directory=*", "-c", "user.name=codemonkeys"),
    *("-c", "user.email=sandbox@codemonkeys.invalid", "-c", "commit.gpgsign=false"),
    *("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=", "-c", "core.untrackedCache=false"),
    *("-c", "core.autocrlf=false", "-c", "core.quotepath=on"),
]
GIT_PRELUDE = (
    f"\nunset {' '.join(GIT_UNSET)}\n"
    f"export {' '.join(f'{k}={v}' for k, v in GIT_ENV.items())}\n"
    f'git() {{ command git {shlex.join(GIT_ARGS)} "$@"; }}\n'
)

# Make everything later than the base commit unreachable: a new .git holding only the
# base commit (same hash, marked shallow) and its tree, so `git log --all`, reflogs,
# tags, stashes, remotes and packed objects of an image repo show nothing from the future.
# The old index (stat cache) and info/ (exclude, attributes) are carried over. The new
# repository is made beside the tree and moved in: renaming the image's own .git (a lower
# overlay layer) copies it whole; the pack skips the delta search (a few more bytes).
PURGE_FUTURE = r"""
base=$(git rev-parse --verify -q "$REF^{commit}") || { echo "no commit $REF" >&2; exit 1; }
branch=$(git symbolic-ref -q --short HEAD) || branch=main
N="$PRIV/new-repo"; rm -rf "$N"; git init -q "$N" || exit 1
git rev-list --objects --no-walk "$base" | cut -d' ' -f1 | git pack-objects -q --window=0 "$N/.git/objects/pack/pack" > /dev/null || exit 1
if [ -d .git/info ]; then cp -r .git/info/. "$N/.git/info/"; fi
if [ -f .git/index ]; then cp .git/index "$N/.git/index"; fi
rm -rf .git && mv "$N/.git" .git && rmdir "$N" || exit 1
echo "$base" > .git/shallow
git update-ref "refs/heads/$branch" "$base" && git symbolic-ref HEAD "refs/heads/$branch" || exit 1
git ls-files > /dev/null 2>&1 || rm -f .git/index
[ -f .git/index ] || { git read-tree "$base" && git update-index -q --refresh > /dev/null; }
"""

q = shlex.quote


class SandboxFileNotFound(SandboxError, FileNotFoundError):
    """``read_file`` of a path that does not exist in the sandbox."""


METHOD_TAG = "@@codemonkeys-method "
MAX_KEEP_PATTERNS = 5000


def _pattern_escape(path: str) -> str:
    """A path as an anchored, literal gitignore-style pattern."""
    return "/" + re.sub(r"([\\*?\[])", r"\\\1", path.lstrip("/"))


def _attribute_pattern(path: str) -> str:
    """A gitattributes pattern matching ``path`` only: every byte outside ``[A-Za-z0-9._/-]``
    becomes ``?`` (git matches bytes, so a two-byte UTF-8 character is two ``?``)."""
    safe = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-")
    raw = path.encode("utf-8", "surrogateescape")
    return "/" + "".join(chr(b) if b in safe else "?" for b in raw)


def _has_surrogates(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (decoded with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class ShellGitSandbox:
    """Base class: subclasses implement the ``_sh*`` primitives and file I/O."""

    workdir: str
    tmp_dir: str = SCRIPT_TMP
    private_dir: str = "/var/lib/codemonkeys/work"
    """Our own temporary files (patches, index copies): out of the scripts' reach."""
    restore_git_config: bool = False
    """reset() puts back the .git/config saved at start (where scripts can write it)."""
    base_commit: str = ""
    max_output_chars: int = 8192
    default_timeout: float = 100.0
    env_setup: str = ""
    keep_untracked: list[str]
    """Untracked/ignored paths present when the sandbox started (image repos: build
    artefacts, egg-info); reset keeps them instead of ``git clean``-ing them away."""
    keep_visible: list[str] = []
    """The non-ignored part of keep_untracked: excluded from diff() explicitly."""

    # -- primitives (backend-specific) ---------------------------------------------------
    def _sh(self, script: str, timeout: float | None = 300.0) -> tuple[int | None, bytes, bytes]:
        """Run a bash script; (exit code, stdout, stderr). timeout None = no limit."""
        raise NotImplementedError

    def _sh_stream(self, script: str) -> Iterator[bytes]:
        raise NotImplementedError

    def _run_capture(
        self, script: str, timeout: float, sink: BoundedOutput
    ) -> tuple[int | None, bool]:
        raise NotImplementedError

    def _kill_strays(self) -> str:
        """Shell snippet that kills every process a previous run left behind."""
        return ""

    def _reset_extra(self) -> str:
        """Shell run by reset() after the git reset: forget everything else a script left."""
        return f"rm -rf {q(self.tmp_dir)}\n"

    def _restore_script(self) -> str:
        """Shell run by reset(): the tracked files as in the base commit, every untracked
        file but the kept ones removed (the Docker sandbox narrows this to what changed)."""
        return (
            f"git reset -q --hard {q(self.base_commit)} || exit 1\n"
            f"git clean -ffdqx {self._keep_args('-e')} || exit 1\n"
        )

    def _after_apply(self) -> str:
        """Shell run after a patch applied (``$paths`` holds the touched paths, ``$pre``
        those of them that existed before)."""
        return ""

    def write_file(self, path: str, content: str | bytes) -> None:
        raise NotImplementedError

    def read_file(self, path: str) -> bytes:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    def _git_ok(self, script: str, what: str, timeout: float | None = 300.0) -> bytes:
        code, out, err = self._sh(
            GIT_PRELUDE + f"cd {q(self.workdir)} || exit 1\n" + script, timeout
        )
        if code != 0:
            detail = (err or out).decode("utf-8", "replace").strip()[-2000:]
            raise SandboxError(f"{what} failed (exit {code}): {detail}")
        return out

    def _keep_args(self, flag: str) -> str:
        return " ".join(f"{flag} {q(_pattern_escape(p))}" for p in self.keep_untracked)

    def _init_copied_repo(self) -> None:
        """Turn the freshly copied tree into a one-commit repository: the base."""
        out = self._git_ok(
            "rm -rf .git && git init -q && git add -A -f && "
            "git commit -q --no-verify --allow-empty -m 'codemonkeys base' && git rev-parse HEAD",
            "initialising the copied repository",
        )
        self.base_commit = out.decode().strip()
        self.keep_untracked = []

    def _adopt_image_repo(self, base_commit: str | None) -> None:
        """Use the repository already in the image, with nothing later than its base
        reachable (PURGE_FUTURE); remember what is untracked right now."""
        ref = base_commit or "HEAD"
        sep = "@@codemonkeys-sep@@"
        out = self._git_ok(
            f'REF={q(ref)}; PRIV={q(self.private_dir)}; mkdir -p -m 700 "$PRIV" || exit 1\n'
            + PURGE_FUTURE
            + f"git rev-parse --verify {q(ref + '^{commit}')} && git ls-files -z -o "
            f"&& echo {sep} && git ls-files -z -o --exclude-standard",
            f"finding the git repository at {self.workdir} (commit {ref})",
        )
        first, _, rest = out.partition(b"\n")
        every, _, visible = rest.partition(f"{sep}\n".encode())
        self.base_commit = first.decode().strip()
        decode = lambda raw: [p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p]  # noqa: E731
        self.keep_untracked = decode(every)
        self.keep_visible = decode(visible)
        if len(self.keep_untracked) > MAX_KEEP_PATTERNS:
            # Too many to name one by one: keep whole untracked directories instead (new
            # files inside them then survive reset too).
            self.keep_untracked = decode(
                self._git_ok("git ls-files -z -o --directory", "listing untracked directories")
            )

    # -- Sandbox protocol ----------------------------------------------------------------
    def run(self, cmd: str, timeout: float | None = None) -> ExecResult:
        timeout = self.default_timeout if timeout is None else float(timeout)
        # The repo root is importable, as if the script sat there (scripts live in
        # /tmp/codemonkeys so that they never show up in diff()).
        script = (
            f"cd {q(self.workdir)} || exit 126\n"
            f'export PYTHONPATH={q(self.workdir)}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
            f"{self.env_setup}\n{cmd}\n"
        )
        sink = BoundedOutput(self.max_output_chars)
        start = time.monotonic()
        exit_code, timed_out = self._run_capture(script, timeout, sink)
        return ExecResult(
            exit_code=None if timed_out else exit_code,
            output=sink.render(),
            timed_out=timed_out,
            seconds=round(time.monotonic() - start, 4),
            truncated=sink.truncated,
        )

    def apply_patch(self, patch: str) -> PatchResult:
        if not patch.strip():
            return PatchResult(ok=True, method="empty")
        paths, refusal = check_patch_paths(patch)
        if refusal:
            return PatchResult(ok=False, error=refusal)
        if not paths:
            return PatchResult(
                ok=False, error="no file paths found in the patch (not a unified diff?)"
            )
        if not patch.endswith("\n"):
            patch += "\n"
        data = patch.encode("utf-8", "surrogateescape")
        pfile = f"{self.private_dir}/.patch-{hashlib.sha256(data).hexdigest()[:12]}.diff"
        bk = f"{self.private_dir}/.patch-backup.tar"
        arr = " ".join(q(p) for p in paths)
        script = (
            GIT_PRELUDE
            + f"""
cd {q(self.workdir)} || exit 1
P={q(pfile)}; BK={q(bk)}
paths=({arr})
WDR=$(pwd -P)
for f in "${{paths[@]}}"; do
  r=$(realpath -m -- "$f")
  case "$r" in "$WDR"/.git|"$WDR"/.git/*) echo "refused: $f resolves into .git (to $r)"; exit 3;;
    "$WDR"/*) ;; *) echo "refused: $f resolves outside the repository (to $r)"; exit 3;; esac
done
backup() {{ ex=(); for f in "${{paths[@]}}"; do if [ -e "$f" ] || [ -L "$f" ]; then ex+=("$f"); fi; done
  tar -cf "$BK" --no-recursion -T /dev/null "${{ex[@]}}" 2>/dev/null; }}
restore() {{ for f in "${{paths[@]}}"; do if [ -f "$f" ] || [ -L "$f" ]; then rm -f -- "$f"; fi; done
  tar -xf "$BK" 2>/dev/null; git reset -q -- "${{paths[@]}}" >/dev/null 2>&1; true; }}
pre=(); for f in "${{paths[@]}}"; do if [ -e "$f" ] || [ -L "$f" ]; then pre+=("$f"); fi; done
applied() {{ {self._after_apply()} echo "{METHOD_TAG}$1"; exit 0; }}
if e1=$(git apply --whitespace=nowarn "$P" 2>&1); then applied git-apply; fi
backup
if e2=$(git apply --3way --whitespace=nowarn "$P" 2>&1); then applied git-apply-3way; fi
restore
if e3=$(patch --batch --forward --fuzz=3 -p1 --dry-run -i "$P" 2>&1) && e3=$(patch --batch --forward --fuzz=3 -p1 --no-backup-if-mismatch -r - -i "$P" 2>&1); then applied patch-fuzz; fi
restore
printf '== git apply ==\\n%s\\n== git apply --3way ==\\n%s\\n== patch --fuzz=3 ==\\n%s\\n' "$e1" "$e2" "$e3"
exit 1
"""
        )
        code, out, err = self._apply_sh(script, pfile, data, paths)
        text = (out + err).decode("utf-8", "backslashreplace")
        if code == 0 and METHOD_TAG in text:
            return PatchResult(ok=True, method=text.split(METHOD_TAG, 1)[1].split()[0])
        return PatchResult(
            ok=False, error=text.strip() or f"patch application failed (exit {code})"
        )

    def _apply_sh(
        self, script: str, pfile: str, data: bytes, paths: list[str]
    ) -> tuple[int | None, bytes, bytes]:
        """Runs apply_patch's ``script``, the patch (``data``) written at ``pfile`` first."""
        self.write_file(pfile, data)
        return self._sh(script, timeout=120)

    def diff(self) -> str:
        raw = self._diff_bytes([])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        # Some changed text file is not UTF-8: emit those files as git binary patches so
        # the diff is valid text, stores as JSON and still applies byte-exactly.
        text = raw.decode("utf-8", "surrogateescape")  # undecodable bytes -> surrogates
        bad = [path for path, section in file_sections(text) if path and _has_surrogates(section)]
        raw = self._diff_bytes(bad or [path for path, _ in file_sections(text) if path])
        return raw.decode("utf-8", "backslashreplace")

    def _index_setup(self) -> str:
        """Shell: a throw-away index holding base + every change, incl. new files."""
        excludes = " ".join(q(f":(exclude,literal){p.rstrip('/')}") for p in self.keep_visible)
        return f"""
mkdir -p {q(self.private_dir)}
idx={q(self.private_dir)}/.index.$$
gd=$(git rev-parse --git-dir) || exit 1
cp -p "$gd/index" "$idx" 2>/dev/null || true
export GIT_INDEX_FILE="$idx"
adderr=$(git add -A -- . {excludes} 2>&1 >/dev/null) || {{ rm -f "$idx"; echo "git add failed: $adderr" >&2; exit 1; }}
"""

    def _diff_bytes(self, binary_paths: list[str]) -> bytes:
        attr = ""
        if binary_paths:
            lines = "\n".join(_attribute_pattern(p) + " -diff -text" for p in binary_paths)
            attr = f'mkdir -p "$gd/info"; [ -e "$gd/info/attributes" ] && cp "$gd/info/attributes" {q(self.private_dir)}/.attr.bak\nprintf %s {q(lines + chr(10))} >> "$gd/info/attributes"\n'
        cleanup = 'rm -f "$idx"\n'
        if binary_paths:
            cleanup += f'if [ -e {q(self.private_dir)}/.attr.bak ]; then mv {q(self.private_dir)}/.attr.bak "$gd/info/attributes"; else rm -f "$gd/info/attributes"; fi\n'
        script = (
            self._index_setup()
            + attr
            + f"git diff --cached --binary --no-color --no-ext-diff --no-textconv --no-renames {q(self.base_commit)}\nrc=$?\n"
            + cleanup
            + "exit $rc\n"
        )
        return self._git_ok(script, "computing the diff")

    def reset(self) -> None:
        """Back to the base tree, and nothing of the previous scripts left: processes,
        files (in and outside the repo), the repo's git config and hooks."""
        priv = q(self.private_dir)
        self._git_ok(
            self._kill_strays()
            # when the reset began, 2 s early: a file git writes within the clock's tick of
            # it still counts as newer (_reset_extra)
            + f"{{ [ -d {priv} ] || mkdir -p -m 700 {priv}; }} && printf -v now '%(%s)T' -1 "
            + "&& RESET_SINCE=$((now - 2)) || exit 1\n"
            # .git/config as it was at start, where a script could write it (local)
            + (f"cp {priv}/.git-config .git/config || exit 1\n" if self.restore_git_config else "")
            + self._restore_script()
            + self._reset_extra(),
            "resetting to the base commit",
            timeout=None,
        )

    def _save_git_config(self) -> None:
        priv = q(self.private_dir)
        self._git_ok(
            f"mkdir -p -m 700 {priv} && cp .git/config {priv}/.git-config",
            "saving the repository's git config",
        )

    def export_repo(self, dest: Path) -> list[str]:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        listing = self._git_ok(f"git ls-tree -r -z {q(self.base_commit)}", "listing the base tree")
        entries = blob_entries(parse_ls_tree(listing))
        if not entries:
            return []
        stream = self._sh_stream(
            GIT_PRELUDE
            + f"cd {q(self.workdir)} && git ls-tree -r {q(self.base_commit)} | awk '$2==\"blob\"{{print $3}}' | git cat-file --batch"
        )
        reader = ChunkReader(stream)
        written = write_blobs(entries, iter_cat_file_batch(reader, len(entries)), dest)
        reader.drain()
        return written
