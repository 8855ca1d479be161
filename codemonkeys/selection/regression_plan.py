"""The regression plan for one problem, read from a sandbox: the repository's whole listing,
the greps discovery asks for, the repository's own test settings (``repo_test_settings``) and
the names each candidate's diff touches (``regression_discovery.py`` decides), then the
framework and the command (pytest's options the installed pytest does not know are dropped).

Everything read here is parsed, so it goes through ``run_whole`` (the whole stdout through
a file), never through the model-facing output cap: a cut listing silently finds nothing.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.diffs import changed_old_lines, file_sections, touched_files
from codemonkeys.sandbox.base import Sandbox, SandboxError
from codemonkeys.sandbox.whole import null_separated, run_whole
from codemonkeys.selection.regression_discovery import (
    Framework,
    build_command,
    custom_command,
    detect_framework,
    discover_tests,
    touched_definitions,
)
from codemonkeys.selection.repo_test_settings import (
    RepoTestSettings,
    known_pytest_options,
    read_test_settings,
)

_GREP_CHUNK = 1000
"""Paths per ``git grep`` (each path list is part of one script)."""


def parse_counts(raw: bytes, wanted: set[str], prefix: str = "") -> dict[str, int]:
    """``git grep -c -z`` output (``[<rev>:]path NUL count LF``) as {path: count}."""
    out: dict[str, int] = {}
    for line in raw.split(b"\n"):
        path, sep, n = line.partition(b"\0")
        name = path.decode("utf-8", "surrogateescape").removeprefix(prefix)
        if sep and n.strip().isdigit() and name in wanted:
            out[name] = int(n)
    return out


class SandboxRepo:
    """The repository at its base commit, read whole from a (clean) sandbox."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def files(self) -> list[str]:
        res = run_whole(self.sandbox, "git -c core.quotepath=off ls-files -z", timeout=120)
        if res.exit_code != 0:
            raise SandboxError(f"git ls-files failed (exit {res.exit_code}): {res.stderr}")
        return null_separated(res.stdout)

    def grep(self, regex: str, paths: Sequence[str]) -> list[str]:
        """The ``paths`` whose text matches the extended ``regex``."""
        return list(self.count(regex, paths))

    def count(self, regex: str, paths: Sequence[str]) -> dict[str, int]:
        """Matching lines per path (``git grep -c``), for the ``paths`` with any; the paths
        go in through a here-document, in chunks (no argument-length limit)."""
        found: dict[str, int] = {}
        wanted = set(paths)
        for i in range(0, len(paths), _GREP_CHUNK):
            chunk = [p for p in paths[i : i + _GREP_CHUNK] if "\n" not in p]
            end = f"CM_PATHS_{uuid.uuid4().hex[:8]}"
            res = run_whole(
                self.sandbox,
                f"xargs -d '\\n' -r git --literal-pathspecs grep -I -c -z -E -e {shlex.quote(regex)}"
                f" -- <<'{end}'\n"
                + "\n".join(chunk)
                + f"\n{end}\nrc=$?; [ $rc -le 123 ] || exit $rc",
                timeout=300,
            )
            if res.exit_code not in (0, 123) or "fatal:" in res.stderr:
                raise SandboxError(f"git grep failed (exit {res.exit_code}): {res.stderr}")
            found.update(parse_counts(res.stdout, wanted))
        return found

    def read(self, path: str) -> str | None:
        try:
            data = self.sandbox.read_file(f"{self.sandbox.workdir.rstrip('/')}/{path}")
        except SandboxError:
            return None
        return data.decode("utf-8", errors="replace")


def touched_names(
    candidates: Sequence[Candidate], read: Callable[[str], str | None]
) -> dict[str, list[str]]:
    """Per edited Python file, the functions and classes the candidates' diffs change
    (``read`` gives the original file's text)."""
    out: dict[str, list[str]] = {}
    originals: dict[str, str | None] = {}
    for c in candidates:
        for path, section in file_sections(c.patch):
            if not path.endswith(".py"):
                continue
            if path not in originals:
                originals[path] = read(path)
            text = originals[path]
            if text:
                names = touched_definitions(text, changed_old_lines(section))
                out[path] = list(dict.fromkeys([*out.get(path, []), *names]))
    return out


class Plan(BaseModel):
    source: Literal["discovered", "config", "none"]
    framework: Framework
    command: str
    test_files: list[str]
    reasons: dict[str, str]
    junit: bool
    settings: RepoTestSettings = RepoTestSettings()
    """The repository's own test settings the command follows (pytest)."""


def narrowed(plan: Plan, keep: int) -> Plan | None:
    """The plan with only its first ``keep`` (best) test files, or None when it cannot be
    cut (nothing would be left; a configured command or a runner without per-file tests)."""
    if keep < 1 or keep >= len(plan.test_files) or plan.framework in ("custom", "npm", "go"):
        return None
    tests = plan.test_files[:keep]
    return _running(plan, tests, {t: plan.reasons[t] for t in tests if t in plan.reasons})


def _running(plan: Plan, tests: list[str], reasons: dict[str, str]) -> Plan:
    """The plan running ``tests`` (files or node ids) the way the repository runs them."""
    return plan.model_copy(
        update={
            "test_files": tests,
            "reasons": reasons,
            "command": build_command(plan.framework, tests, plan.settings),
        }
    )


def plan_regression(
    sandbox: Sandbox,
    candidates: Sequence[Candidate],
    config: SelectionConfig,
    test_dirs: Sequence[str],
) -> Plan:
    """Choose the test files and the command, reading the repository in ``sandbox``."""
    repo = SandboxRepo(sandbox)
    files = repo.files()
    settings = read_test_settings(repo.read, set(files))
    source: Literal["discovered", "config", "none"]
    if config.regression_tests:
        tests = list(config.regression_tests)
        reasons = {t: "config" for t in tests}
        source = "config"
    else:
        edited: list[str] = []
        for c in candidates:
            edited += [p for p in touched_files(c.patch) if p not in edited]
        reasons = discover_tests(
            files,
            edited,
            repo.grep,
            test_dirs=test_dirs,
            limit=config.regression_max_test_files,
            touched_names=touched_names(candidates, repo.read),
            count=repo.count,
            settings=settings,
        )
        tests = list(reasons)
        source = "discovered" if tests else "none"
    if config.regression_command:
        command = custom_command(config.regression_command, tests)
        return Plan(source="config" if not tests else source, framework="custom", command=command,
                    test_files=tests, reasons=reasons, junit="{junit}" in config.regression_command)  # fmt: skip
    has_pytest = (
        any(t.endswith(".py") for t in tests)
        and sandbox.run("python -c 'import pytest'", timeout=60).exit_code == 0
    )
    framework = detect_framework(files, tests, has_pytest)
    if framework == "pytest" and settings.pytest_options:
        pytest_help = run_whole(sandbox, "python -m pytest -p no:cacheprovider --help", timeout=120)
        settings = known_pytest_options(settings, pytest_help.stdout.decode("utf-8", "replace"))
    return Plan(
        source=source,
        framework=framework,
        command=build_command(framework, tests, settings),
        settings=settings,
        test_files=tests,
        reasons=reasons,
        junit=framework == "pytest",
    )


def narrowed_to_tests(plan: Plan, test_ids: Sequence[str]) -> Plan:
    """The plan running single tests (``path::Class::test`` node ids) instead of whole
    files; each id keeps its file's reason."""
    ids = list(test_ids)
    return _running(plan, ids, {t: plan.reasons.get(t.split("::", 1)[0], "impact") for t in ids})
