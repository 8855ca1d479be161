"""Outcomes per test from a regression run (``parse_outcomes``): JUnit XML where the runner
wrote it, the runner's own report otherwise (unittest/Django verbose lines, sympy's report,
pytest's ``-rA`` summary, ``go test -json``), the exit code as the last resort."""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

Outcome = Literal["passed", "failed", "error", "skipped"]
FAILING: tuple[str, ...] = ("failed", "error")
SUITE = "<suite>"
"""Test id used when only the exit code tells the outcome."""


def parse_junit(xml_text: str) -> dict[str, str]:
    """JUnit XML (pytest ``--junitxml``, most runners) -> {``classname.name``: outcome}."""
    root = ET.fromstring(xml_text)
    out: dict[str, str] = {}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        cls = case.get("classname", "")
        tid = f"{cls}.{name}" if cls else name  # the dotted id unittest prints too
        tags = {child.tag for child in case}
        if "error" in tags:
            status = "error"
        elif "failure" in tags:
            status = "failed"
        elif "skipped" in tags:
            status = "skipped"
        else:
            status = "passed"
        out[tid] = _worse(out.get(tid), status)
    return out


_SEVERITY = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}


def _worse(old: str | None, new: str) -> str:
    """Two results for one id (e.g. a pytest teardown error): the worse one counts."""
    if old is None:
        return new
    return old if _SEVERITY[old] >= _SEVERITY[new] else new


_UNITTEST_LINE = re.compile(
    r"^(?P<name>\w+) \((?P<cls>[\w.]+)\)(?:\n.*?)? \.\.\. ?(?P<status>ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)\s*$",
    re.M,
)
_UNITTEST_STATUS = {
    "ok": "passed",
    "FAIL": "failed",
    "ERROR": "error",
    "expected failure": "passed",
}


def parse_unittest(output: str) -> dict[str, str]:
    """``unittest -v`` / Django ``--verbosity 2`` lines: ``test_x (mod.Class) ... ok``."""
    out: dict[str, str] = {}
    for m in _UNITTEST_LINE.finditer(output):
        raw = m.group("status")
        status = "skipped" if raw.startswith("skipped") else _UNITTEST_STATUS.get(raw, "failed")
        cls, name = m.group("cls"), m.group("name")
        tid = (
            cls if cls.endswith(f".{name}") else f"{cls}.{name}"
        )  # Python >= 3.11 prints the full id
        out[tid] = _worse(out.get(tid), status)
    return out


_SYMPY_FILE = re.compile(r"^(?P<file>\S+\.py)\[\d+\]", re.M)
_SYMPY_TEST = re.compile(r"^(?P<name>test_\w+) (?P<status>ok|F|E|f|X|s|w|Skipped.*)\s*$", re.M)


def parse_sympy(output: str) -> dict[str, str]:
    """sympy ``bin/test --verbose``: a ``path.py[N]`` header, then ``test_x ok`` / ``F`` / ``E``."""
    out: dict[str, str] = {}
    current = ""
    marks: list[tuple[int, str, re.Match[str]]] = sorted(
        [(m.start(), "file", m) for m in _SYMPY_FILE.finditer(output)]
        + [(m.start(), "test", m) for m in _SYMPY_TEST.finditer(output)],
        key=lambda x: x[0],
    )
    for _, kind, m in marks:
        if kind == "file":
            current = m.group("file")
            continue
        raw = m.group("status")
        status = {"ok": "passed", "F": "failed", "E": "error", "f": "passed", "X": "failed"}.get(
            raw, "skipped"
        )
        out[f"{current}::{m.group('name')}"] = status
    return out


_PYTEST_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+::\S+)", re.M)


def parse_pytest_report(output: str) -> dict[str, str]:
    """pytest's ``-rA`` short summary: ``PASSED path::test``."""
    table = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error", "SKIPPED": "skipped",
             "XFAIL": "passed", "XPASS": "failed"}  # fmt: skip
    out: dict[str, str] = {}
    for m in _PYTEST_SUMMARY.finditer(output):
        out[m.group(2)] = _worse(out.get(m.group(2)), table[m.group(1)])
    return out


def parse_go_json(output: str) -> dict[str, str]:
    """``go test -json`` events: the final pass/fail/skip action of each test."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("Test") and ev.get("Action") in ("pass", "fail", "skip"):
            status = {"pass": "passed", "fail": "failed", "skip": "skipped"}[ev["Action"]]
            out[f"{ev.get('Package', '')}::{ev['Test']}"] = status
    return out


TEXT_PARSERS: list[tuple[str, Callable[[str], dict[str, str]]]] = [
    ("pytest-report", parse_pytest_report),
    ("unittest", parse_unittest),
    ("sympy", parse_sympy),
    ("go-json", parse_go_json),
]


def parse_outcomes(
    output: str, junit_xml: str | None, exit_code: int | None
) -> tuple[str, dict[str, str]]:
    """(parser name, per-test outcomes): JUnit XML when present and readable, else the
    first runner report found in the output, else the exit code as one ``<suite>`` test."""
    if junit_xml:
        try:
            found = parse_junit(junit_xml)
        except ET.ParseError as e:
            log.warning("unreadable JUnit XML (%s); falling back to the runner's report", e)
        else:
            if found:
                return "junit", found
    for name, parser in TEXT_PARSERS:
        found = parser(output)
        if found:
            return name, found
    return "exit-code", {SUITE: "passed" if exit_code == 0 else "failed"}
