"""apply_patch's first try in process (``common.ShellGitSandbox.apply_patch`` with
``container.after_apply_script``): ``git apply`` of the patch, its paths given to the
sandbox user, the directories it made sticky and writable like the rest of the tree, all
of them listed for reset."""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from typing import Any

from .listing import ancestors
from .restore import run_git
from .settings import Settings


def apply_patch(s: Settings, spec: dict[str, Any]) -> bytes | None:
    """The answer's text when applied; None when the script must do it (a path leading
    out of the tree or into .git, which the script refuses; ``git apply`` refusing: the
    script then tries the other methods and says why). ``spec``: the patch (base64) and
    its paths, as the host checked them."""
    paths: list[str] = spec["paths"]
    top = os.path.realpath(s.workdir)
    for path in paths:
        real = os.path.realpath(os.path.join(s.workdir, path))
        if not real.startswith(top + "/") or (real + "/").startswith(top + "/.git/"):
            return None
    pre = [p for p in paths if os.path.lexists(os.path.join(s.workdir, p))]
    p = run_git(s, ["apply", "--whitespace=nowarn"], base64.b64decode(spec["patch"]))
    if p.returncode != 0:
        return None
    made = _after_apply(s, paths)  # applied: nothing below may send it to the script again
    new = [p for p in paths if p not in pre] + made
    with open(s.touched_list, "ab") as f:
        f.write(b"".join(b"c" + os.fsencode(p) + b"\0" for p in pre))
        f.write(b"".join(b"o" + os.fsencode(p) + b"\0" for p in new))
    return s.method_tag + b"git-apply\n"


def _after_apply(s: Settings, paths: list[str]) -> list[str]:
    """The patched paths the sandbox user's; the directories the patch made (returned)
    sticky and writable like the rest of the tree."""
    made = []
    for path in paths:
        for parent in ancestors(path):
            full = os.path.join(s.workdir, parent)
            with contextlib.suppress(OSError):  # a directory the patch emptied: git removed it
                mode = os.lstat(full).st_mode
                if stat.S_ISDIR(mode) and not mode & stat.S_ISVTX:
                    os.chmod(full, 0o1777)
                    made.append(parent)
        with contextlib.suppress(OSError):  # a file the patch deleted
            os.lchown(os.path.join(s.workdir, path), s.uid, s.uid)
    return made
