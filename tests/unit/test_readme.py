"""The README's commands are ones a user can paste: every job that calls a model names
one (without a configured model the job stops at once asking for it)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

JOBS = re.compile(r"codemonkeys (?:solve|swebench run|ensemble)\b")


def _commands(text: str) -> list[str]:
    """Inline code spans, fenced and indented code lines (continuation lines joined) that
    run a job with options (a bare `codemonkeys solve` in prose is a name, not a command)."""
    spans = re.findall(r"`([^`\n]+)`", text)
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S):
        spans += block.replace("\\\n", " ").splitlines()
    spans += re.findall(r"^    (\S.*)$", text, flags=re.M)
    return [s for s in spans if JOBS.search(s) and " --" in s]


def test_every_job_command_in_the_readme_names_a_model():
    for doc in (ROOT / "README.md", ROOT / "examples" / "README.md"):
        commands = _commands(doc.read_text())
        assert commands, doc
        for cmd in commands:
            assert "--model" in cmd or " -m " in cmd, f"{doc.name}: {cmd}"
