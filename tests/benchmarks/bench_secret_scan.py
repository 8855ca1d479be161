"""Benchmark: what the secret check (``codemonkeys/secret_check.py``, detect-secrets
plugins) costs, and which ordinary files it would drop, on the real SWE-bench trees of
``../shared/data/instances`` (``--instances DIR``; each tarball is the tree at its base
commit, committed into a scratch git repository).

Per tree, in the same run, on the same files:
- the context stage's enumeration (``enumerate_files``) with the new check vs the same
  enumeration with the check of commit c71d4d8 (a private-key regex and rc files with a
  credential line; copied below), alternating order over ``--repeat`` rounds, median;
- a sandbox's copy of the repository: ``repo_copy`` (scan every tracked file, replace and
  mask, tar) vs ``host_tree_tar`` (the copy as it was: read and tar);
- false positives: every file the new check flags, split into those its name flags
  (``context.secret_globs``: expected) and those flagged by content, each with the path.

Last line: one JSON object of named figures.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import codemonkeys.context.files as files_module  # noqa: E402
from codemonkeys.config import ContextConfig  # noqa: E402
from codemonkeys.sandbox.gittree import host_tree_tar  # noqa: E402
from codemonkeys.sandbox.secret_copy import repo_copy  # noqa: E402
from codemonkeys.sandbox.spec import SandboxSpec  # noqa: E402
from codemonkeys.secret_check import SecretCheck  # noqa: E402

# -- the check before issue 26 (commit c71d4d8, context/files.py), verbatim -------------
_OLD_RC = frozenset(
    [".npmrc", ".pypirc", ".netrc", ".yarnrc", ".yarnrc.yml", ".git-credentials", ".dockercfg"]
)
_OLD_CREDENTIAL_LINE = re.compile(
    rb"(?im)(_authtoken|_auth|password|passwd|token|secret|machine\s+\S+\s+login)\s*[=:\s]\s*\S"
)
_OLD_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")


def old_secret_content(path: str, data: bytes) -> bool:
    if _OLD_PRIVATE_KEY.search(data):
        return True
    name = PurePosixPath(path).name.lower()
    return name in _OLD_RC and bool(_OLD_CREDENTIAL_LINE.search(data))


class OldCheck:
    """The old content check behind the new check's interface (``inspect``)."""

    def __init__(self, globs: list[str]):
        self.globs = globs

    def inspect(self, path: str, data: bytes) -> object | None:
        return True if old_secret_content(path, data) else None


# -- trees ---------------------------------------------------------------------------------
def make_repo(tarball: Path, dest: Path) -> list[str]:
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b", "PATH": "/usr/bin:/bin"}  # fmt: skip
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base", "--no-verify"]):
        subprocess.run(["git", "-C", str(dest), *cmd], check=True, env=env)
    out = subprocess.run(["git", "-C", str(dest), "ls-files", "-z"], capture_output=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def enumerate_with(check: type, repo: Path, paths: list[str], cfg: ContextConfig) -> object:
    saved = files_module.SecretCheck
    files_module.SecretCheck = check  # type: ignore[misc]
    try:
        return files_module.enumerate_files(repo, paths, cfg)
    finally:
        files_module.SecretCheck = saved  # type: ignore[misc]


def flagged(repo: Path, paths: list[str], cfg: ContextConfig) -> dict[str, list[str]]:
    check = SecretCheck(cfg.secret_globs)
    out: dict[str, list[str]] = {"by_name": [], "by_content": []}
    for p in paths:
        f = repo / p
        if f.is_symlink() or not f.is_file():
            continue
        verdict = check.inspect(p, f.read_bytes())
        if verdict is not None:
            out["by_name" if check.by_name(p) else "by_content"].append(p)
    return out


def bench_tree(tarball: Path, repeat: int) -> dict:
    cfg = ContextConfig()
    with tempfile.TemporaryDirectory(prefix="bench-secrets-") as tmp:
        repo = Path(tmp) / "repo"
        paths = make_repo(tarball, repo)
        size_mb = sum((repo / p).stat().st_size for p in paths if (repo / p).is_file()) / 1e6
        spec = SandboxSpec(kind="local", repo_path=repo, secret_globs=cfg.secret_globs)
        runs: dict[str, list[float]] = {"enum_new": [], "enum_old": [], "copy_new": [], "copy_old": []}  # fmt: skip
        for i in range(repeat):
            order = [("new", SecretCheck), ("old", OldCheck)]
            for side, check in order if i % 2 == 0 else order[::-1]:
                seconds, _ = timed(partial(enumerate_with, check, repo, paths, cfg))
                runs[f"enum_{side}"].append(seconds)
            copies = [("new", lambda: repo_copy(spec)), ("old", lambda: host_tree_tar(repo))]
            for side, fn in copies if i % 2 == 0 else copies[::-1]:
                runs[f"copy_{side}"].append(timed(fn)[0])
        found = flagged(repo, paths, cfg)
    med = {k: statistics.median(v) for k, v in runs.items()}
    name = tarball.name.removesuffix(".tar.gz")
    return {
        "tree": name,
        "files": len(paths),
        "mb": round(size_mb, 1),
        **{f"{k}_s": round(v, 3) for k, v in med.items()},
        "enum_ratio": round(med["enum_new"] / med["enum_old"], 2),
        "copy_ratio": round(med["copy_new"] / med["copy_old"], 2),
        "flagged_by_name": found["by_name"],
        "flagged_by_content": found["by_content"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", default=str(ROOT.parent / "shared" / "data" / "instances"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tarballs = sorted(Path(args.instances).glob("*.tar.gz"))
    if not tarballs:
        sys.exit(f"no instance tarballs in {args.instances}")
    rows = []
    for tarball in tarballs:
        row = bench_tree(tarball, args.repeat)
        rows.append(row)
        print(json.dumps(row))
    summary = {
        "trees": len(rows),
        "files": sum(r["files"] for r in rows),
        "enum_new_s": round(sum(r["enum_new_s"] for r in rows), 2),
        "enum_old_s": round(sum(r["enum_old_s"] for r in rows), 2),
        "copy_new_s": round(sum(r["copy_new_s"] for r in rows), 2),
        "copy_old_s": round(sum(r["copy_old_s"] for r in rows), 2),
        "false_positive_files_by_content": sum(len(r["flagged_by_content"]) for r in rows),
        "flagged_by_name": sum(len(r["flagged_by_name"]) for r in rows),
    }
    summary["enum_ratio"] = round(summary["enum_new_s"] / summary["enum_old_s"], 2)
    summary["copy_ratio"] = round(summary["copy_new_s"] / summary["copy_old_s"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
