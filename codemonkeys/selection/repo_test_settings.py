"""The repository's own test settings, read from its configuration files, so that the
regression verifier finds and runs tests the way the repository does.

- **What pytest collects**: ``python_files`` and ``testpaths`` from the file pytest itself
  would read (``pytest.ini``, else ``pyproject.toml`` ``[tool.pytest.ini_options]``, else
  ``tox.ini`` ``[pytest]``, else ``setup.cfg`` ``[tool:pytest]``: pytest's own order). Other
  ini options (``filterwarnings``, ``addopts``...) need nothing from us: pytest reads them
  when it runs from the repository root.
- **How the repository runs pytest**: tox's ``[testenv]`` (the section every ``py3x``
  environment inherits), when its command runs pytest: its ``setenv`` (e.g. sphinx's
  ``PYTHONWARNINGS``), the interpreter's ``-X``/``-W`` options (``python -X dev -m pytest``)
  and pytest's own options (pylint's ``--benchmark-disable``). tox substitutions are resolved
  to their defaults; a value that needs anything else is left out, and so are the variables
  the verifier sets itself (``PYTHONPATH``: the runner starts isolated from the repository
  root; ``PYTEST_ADDOPTS``: colour and coverage are reporting, not behaviour).
- **The command-line entry points** (``console_scripts`` in ``setup.cfg``, ``[project.scripts]``
  in ``pyproject.toml``, ``entry_points`` in ``setup.py``): a test that drives them guards
  what they reach (``regression_discovery``).

Only configuration files are read, never the dataset's gold fields.
"""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field

Read = Callable[[str], str | None]
"""A repository path -> its text (None when absent)."""

_OWN_VARIABLES = frozenset({"PYTHONPATH", "PYTHONNOUSERSITE", "PYTEST_ADDOPTS"})
_REPORTING_OPTIONS = ("--cov", "--color", "--junitxml", "--junit-xml", "--basetemp")
_PYTEST_RUNNERS = frozenset({"pytest", "py.test"})


class RepoTestSettings(BaseModel):
    """What the repository's configuration says about its tests (empty: nothing said)."""

    python_files: list[str] = Field(default_factory=list)
    """pytest's ``python_files`` globs (a glob with ``/`` matches the path's end)."""
    testpaths: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    """Environment of the repository's test command (tox ``setenv``)."""
    interpreter_options: list[str] = Field(default_factory=list)
    """``python -X dev -m pytest`` -> ``["-X", "dev"]``."""
    pytest_options: list[str] = Field(default_factory=list)
    entry_points: dict[str, str] = Field(default_factory=dict)
    """Console script name -> ``module:function``."""


def _ini(text: str | None) -> configparser.ConfigParser | None:
    if not text:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser


def _toml(text: str | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError:
        return {}


def _table(doc: Any, *keys: str) -> dict[str, Any]:
    """``doc[k1][k2]...`` when each is a table, else ``{}`` (a malformed file says nothing)."""
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc if isinstance(doc, dict) else {}


def _ini_list(value: str) -> list[str]:
    return [w for line in value.splitlines() for w in line.split() if not w.startswith("#")]


def _pytest_ini_options(read: Read) -> Mapping[str, Any]:
    """The ini options of the first file pytest would take, as {name: value or list}."""
    ini = _ini(read("pytest.ini"))
    if ini is not None and ini.has_section("pytest"):
        return dict(ini["pytest"])
    pyproject = _table(_toml(read("pyproject.toml")), "tool", "pytest")
    if "ini_options" in pyproject:
        return _table(pyproject, "ini_options")
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        ini = _ini(read(name))
        if ini is not None and ini.has_section(section):
            return dict(ini[section])
    return {}


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return _ini_list(value)
    return [str(v) for v in value] if isinstance(value, list) else []


_TOX_SUBSTITUTION = re.compile(r"\{([^{}]*)\}")


def _tox_value(value: str) -> str | None:
    """A tox value with ``{toxinidir}``, ``{env:X:default}`` resolved (to ``.`` and the
    default), or None when it needs anything else (``{envdir}``, ``{posargs}``...)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "toxinidir":
            return "."
        if key.startswith("env:"):
            return key.split(":", 2)[2] if key.count(":") >= 2 else ""
        raise KeyError(key)

    try:
        return _TOX_SUBSTITUTION.sub(sub, value).strip()
    except KeyError:
        return None


def _setenv(value: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in value.splitlines():
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name) or name in _OWN_VARIABLES:
            continue
        resolved = _tox_value(raw)
        if resolved is not None:
            env[name] = resolved
    return env


def _split_pytest_command(words: list[str]) -> tuple[list[str], list[str]] | None:
    """``python -X dev -m pytest --durations 25 {posargs}`` -> (``-X dev``, ``--durations
    25``); None when the command does not run pytest."""
    if words and words[0] in _PYTEST_RUNNERS:
        return [], words[1:]
    if not words or not re.fullmatch(r"python[\d.]*", words[0]):
        return None
    interpreter: list[str] = []
    i = 1
    while i < len(words) - 1 and words[i] in ("-X", "-W"):
        interpreter += words[i : i + 2]
        i += 2
    if words[i : i + 2] != ["-m", "pytest"]:
        return None
    return interpreter, words[i + 2 :]


def _is_option_value(word: str, previous: str) -> bool:
    """A word after an option without ``=`` is its value, unless it looks like a path."""
    return previous.startswith("-") and "=" not in previous and "/" not in word and "." not in word


def _pytest_options(args: list[str]) -> list[str]:
    """The options among a tox command's pytest arguments (paths and substitutions left out;
    a word after an option is its value unless it looks like a path)."""
    out: list[str] = []
    for i, word in enumerate(args):
        if "{" in word:
            continue
        if word.startswith("-") or _is_option_value(word, args[i - 1] if i else ""):
            out.append(word)
    kept: list[str] = []
    for word in out:
        if word.startswith(_REPORTING_OPTIONS):
            continue
        if not word.startswith("-") and kept and kept[-1].startswith(_REPORTING_OPTIONS):
            continue
        kept.append(word)
    return kept


def _tox_runner(read: Read) -> tuple[dict[str, str], list[str], list[str]]:
    """(env, interpreter options, pytest options) of tox's ``[testenv]`` when it runs pytest."""
    ini = _ini(read("tox.ini"))
    if ini is None or not ini.has_section("testenv"):
        return {}, [], []
    section = ini["testenv"]
    for line in section.get("commands", "").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        split = _split_pytest_command(words)
        if split is not None:
            return _setenv(section.get("setenv", "")), split[0], _pytest_options(split[1])
    return {}, [], []


_SETUP_PY_SCRIPT = re.compile(r"""["']\s*([\w.-]+)\s*=\s*([\w.]+:[\w.]+)\s*["']""")


def _entry_points(read: Read) -> dict[str, str]:
    scripts = _table(_toml(read("pyproject.toml")), "project", "scripts")
    found = {str(k): str(v) for k, v in scripts.items()}
    cfg = _ini(read("setup.cfg"))
    if cfg is not None and cfg.has_option("options.entry_points", "console_scripts"):
        for line in cfg["options.entry_points"]["console_scripts"].splitlines():
            name, sep, target = line.partition("=")
            if sep and ":" in target:
                found[name.strip()] = target.strip()
    setup_py = read("setup.py") or ""
    if "console_scripts" in setup_py:
        found.update({m.group(1): m.group(2) for m in _SETUP_PY_SCRIPT.finditer(setup_py)})
    return {k: v.split("[")[0].strip() for k, v in found.items()}


def known_pytest_options(settings: RepoTestSettings, pytest_help: str) -> RepoTestSettings:
    """``settings`` without the pytest options the installed pytest does not list in its
    ``--help`` (a plugin the repository's tox environment has and the sandbox lacks would
    make every run a usage error)."""
    kept: list[str] = []
    dropped = False  # a value goes with its option
    for word in settings.pytest_options:
        if word.startswith("-"):
            known = re.search(
                rf"(^|[\s,]){re.escape(word.split('=')[0])}([\s=,]|$)", pytest_help, re.M
            )
            dropped = known is None
        if not dropped:
            kept.append(word)
    return settings.model_copy(update={"pytest_options": kept})


def read_test_settings(read: Read, files: set[str] | frozenset[str]) -> RepoTestSettings:
    """Read the settings from the repository's configuration files (those in ``files``)."""
    configs = {"pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "setup.py"} & set(files)

    def read_config(path: str) -> str | None:
        return read(path) if path in configs else None

    options = _pytest_ini_options(read_config)
    env, interpreter, pytest_options = _tox_runner(read_config)
    return RepoTestSettings(
        python_files=_as_list(options.get("python_files", [])),
        testpaths=_as_list(options.get("testpaths", [])),
        env=env,
        interpreter_options=interpreter,
        pytest_options=pytest_options,
        entry_points=_entry_points(read_config),
    )
