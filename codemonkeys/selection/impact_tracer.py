"""A pytest plugin that records, per test, which watched lines of the edited files it ran.

``regression_impact.py`` writes this file's source into the sandbox's ``OUT_DIR`` and loads
it into the repository's own pytest run on the original code (``-p cm_impact_tracer``
through ``PYTEST_ADDOPTS``, the ``OUT_DIR`` on ``PYTHONPATH``). Two environment variables
name its input and output:

- ``CM_IMPACT_WATCH``: a JSON file ``{repo-relative path: {"entries": [...], "changed":
  [...], "lines": [...]}}``: the first body line of each function the candidates edit, the
  lines they change, and every watched line (those functions' bodies and the changes);
- ``CM_IMPACT_OUT``: a JSON-lines file it appends to: a header line once pytest is
  configured (``{"tracer": "started"}``: the plugin loaded), then one line per test,
  ``{"id": <path::Class::test relative to the working directory>, "hits": {path: [lines]},
  "seconds": <the test's setup + call + teardown>}``, written as each test ends so a run
  cut by its timeout keeps what finished.

How, at almost no cost: an import hook (first on ``sys.meta_path``, installed when pytest
loads this plugin, before the conftests) compiles each edited file from its source with a
probe call added at the start of each edited function (after its docstring) and before
each statement on a changed line; everything else runs untouched, and no instrumented
bytecode is ever written to ``__pycache__``. A watched file that was imported before the
hook, or that another import hook loads, is traced instead with ``sys.settrace`` (and
``threading.settrace``), from a test's start to its end, line events only in that file (the
tracer a test finds in place is put back after it); a global trace function costs every
Python call, so this is only the fallback. Probes and trace functions do set and dict
operations only: nothing raises into a test. If instrumenting a file fails, it loads as
usual and is traced.

Standard library only, no ``import pytest`` (plain hook functions), and no syntax newer than
Python 3.6 (the oldest an instance image has). It never runs in this process: the file is
read as text.
"""

import ast
import builtins
import importlib.machinery
import json
import os
import sys
import threading
import time

PROBE = "__cm_impact_probe__"
_MISSING = object()


class _Recorder:
    """The watched files, what the current test hit, and which files need the tracer."""

    def __init__(self, watched, root):
        self.watch = {}
        for rel, spec in watched.items():
            real = os.path.realpath(os.path.join(root, rel))
            self.watch[real] = (rel, spec)
        self.rels = [rel for rel, _ in self.watch.values()]
        self.stems = {_stem(real) for real in self.watch}
        self.instrumented = set()
        self.traced = {}
        self.by_code_file = {}
        self.hits = None
        self.started = 0.0

    def probe(self, index, line):
        hits = self.hits
        if hits is not None:
            hits.setdefault(self.rels[index], set()).add(line)

    def needs_tracing(self, real):
        if real in self.watch and real not in self.instrumented:
            rel, spec = self.watch[real]
            self.traced[real] = (rel, frozenset(spec.get("lines", ())))

    def lookup(self, filename):
        """(repo path, watched lines) for a traced file's code, or None."""
        found = self.by_code_file.get(filename, _MISSING)
        if found is _MISSING:
            found = self.traced.get(os.path.realpath(os.path.abspath(filename)))
            self.by_code_file[filename] = found
        return found

    def trace(self, frame, event, arg):
        found = self.lookup(frame.f_code.co_filename)
        if found is None or self.hits is None:
            return None
        rel, lines = found
        hits = self.hits.setdefault(rel, set())

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno in lines:
                hits.add(frame.f_lineno)
            return local

        return local


def _stem(real):
    name = os.path.splitext(os.path.basename(real))[0]
    return os.path.basename(os.path.dirname(real)) if name == "__init__" else name


def _probe_stmt(index, line, at):
    stmt = ast.parse(f"{PROBE}({index:d}, {line:d})").body[0]
    for node in ast.walk(stmt):
        for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if hasattr(at, attr):
                setattr(node, attr, getattr(at, attr))
    return stmt


def _is_docstring(stmt):
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value  # ast.Constant (3.8+) or ast.Str (3.6, 3.7)
    return isinstance(getattr(value, "value", None), str) or isinstance(
        getattr(value, "s", None), str
    )


def _header(stmt):
    """The lines of a statement that are its own (a compound statement's header)."""
    body = getattr(stmt, "body", None)
    end = getattr(stmt, "end_lineno", None) or stmt.lineno
    if isinstance(body, list) and body:
        end = max(stmt.lineno, body[0].lineno - 1)
    return range(stmt.lineno, end + 1)


def _with_probes(stmts, index, changed, entry):
    """``stmts`` with a probe before each statement holding a changed line (never before a
    docstring), and the function's entry probe after its docstring."""
    out = []
    for i, stmt in enumerate(stmts):
        docstring = i == 0 and _is_docstring(stmt)
        if not docstring:
            for line in sorted(changed.intersection(_header(stmt))):
                out.append(_probe_stmt(index, line, stmt))
        out.append(stmt)
        if entry is not None and i == 0:
            if docstring:
                out.append(_probe_stmt(index, entry, stmt))
            else:
                out.insert(0, _probe_stmt(index, entry, stmt))
    return out


def instrument(tree, index, spec):
    """Probes into the bodies of the module's functions (``spec``: entries and changed)."""
    entries, changed = set(spec.get("entries", ())), set(spec.get("changed", ()))
    functions = [
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    inside = set()
    for fn in functions:
        for node in ast.walk(fn):
            inside.add(id(node))
    for node in list(ast.walk(tree)):
        if id(node) not in inside:
            continue
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list) or not stmts or not isinstance(stmts[0], ast.stmt):
                continue
            is_fn = field == "body" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            entry = stmts[0].lineno if is_fn and stmts[0].lineno in entries else None
            setattr(node, field, _with_probes(stmts, index, changed, entry))
    return ast.fix_missing_locations(tree)


class _ProbeLoader(importlib.machinery.SourceFileLoader):
    """Compiles an edited file with probes, from source every time (no bytecode cache)."""

    def get_code(self, fullname):
        recorder = _session["recorder"]
        real = os.path.realpath(self.path)
        try:
            rel, spec = recorder.watch[real]
            source = self.get_data(self.path)
            tree = instrument(ast.parse(source, self.path), recorder.rels.index(rel), spec)
            code = compile(tree, self.path, "exec", dont_inherit=True)
        except Exception:
            recorder.needs_tracing(real)
            return super().get_code(fullname)
        recorder.instrumented.add(real)
        return code


class _Finder:
    """First on ``sys.meta_path``: for a module that may be an edited file, asks the other
    finders for its spec and hands plain source files of edited paths to ``_ProbeLoader``."""

    def __init__(self, recorder):
        self.recorder = recorder

    def find_spec(self, fullname, path=None, target=None):
        if fullname.rpartition(".")[2] not in self.recorder.stems:
            return None
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or not spec.origin:
            return spec
        real = os.path.realpath(spec.origin)
        if real not in self.recorder.watch:
            return spec
        if type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _ProbeLoader(spec.loader.name, spec.loader.path)
        else:
            self.recorder.needs_tracing(real)
        return spec


_session = {}  # type: dict
"""The recorder, the output file, the config, the test running and the tracer found."""


def _install():
    """Read the watch list and put the import hook in place (when pytest imports this)."""
    watch, out = os.environ.get("CM_IMPACT_WATCH"), os.environ.get("CM_IMPACT_OUT")
    if not watch or not out:
        return
    try:
        with open(watch) as f:
            recorder = _Recorder(json.load(f), os.getcwd())
    except (OSError, ValueError, AttributeError):
        return  # no header line: the verifier falls back to whole files
    setattr(builtins, PROBE, recorder.probe)
    sys.meta_path.insert(0, _Finder(recorder))
    for module in list(sys.modules.values()):  # imported before the hook: traced
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str):
            recorder.needs_tracing(os.path.realpath(origin))
    _session.update(recorder=recorder, out=out, test="")


def _test_id(config, nodeid):
    """The node id with its file relative to the working directory (pytest's own ids are
    relative to its rootdir), so the verifier can pass it back on the command line."""
    path, sep, rest = nodeid.partition("::")
    full = os.path.join(str(config.rootdir), path)
    return os.path.relpath(full, os.getcwd()) + sep + rest


def _append(path, record):
    """One JSON line, the file opened for it alone (nothing is left open between tests)."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError:
        pass  # a full disk loses the record, never the test


def pytest_configure(config):
    if "recorder" not in _session or hasattr(config, "workerinput"):
        return
    _session["config"] = config
    _append(_session["out"], {"tracer": "started", "python": sys.version.split()[0]})


def pytest_runtest_logstart(nodeid, location):
    recorder = _session.get("recorder")
    if recorder is None or "config" not in _session:
        return
    recorder.hits = {}
    recorder.started = time.perf_counter()
    _session["test"] = nodeid
    if recorder.traced:
        _session["previous"] = sys.gettrace()
        threading.settrace(recorder.trace)
        sys.settrace(recorder.trace)


def pytest_runtest_logfinish(nodeid, location):
    recorder = _session.get("recorder")
    if recorder is None or _session.get("test") != nodeid:
        return
    if "previous" in _session:
        sys.settrace(_session.pop("previous"))
        threading.settrace(None)
    seconds = time.perf_counter() - recorder.started
    hits = {rel: sorted(lines) for rel, lines in recorder.hits.items() if lines}
    recorder.hits = None
    line = {"id": _test_id(_session["config"], nodeid), "hits": hits, "seconds": round(seconds, 4)}
    if recorder.traced:
        line["traced"] = sorted(rel for rel, _ in recorder.traced.values())
    _append(_session["out"], line)
    _session["test"] = ""


_install()
