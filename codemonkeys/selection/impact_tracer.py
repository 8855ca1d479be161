"""A pytest plugin that records, per test, which watched lines of the edited files it ran.

``regression_impact.py`` writes this file's source into the sandbox's ``OUT_DIR`` and loads
it into the repository's own pytest run on the original code (``-p cm_impact_tracer``
through ``PYTEST_ADDOPTS``, the ``OUT_DIR`` on ``PYTHONPATH``). Two environment variables
name its input and output:

- ``CM_IMPACT_WATCH``: a JSON file ``{repo-relative path: [line numbers]}``: the lines
  the candidates change and the bodies of the functions they touch;
- ``CM_IMPACT_OUT``: a JSON-lines file it appends to: a header line once pytest is
  configured (``{"tracer": "started"}``: the plugin loaded), then one line per test,
  ``{"id": <path::Class::test relative to the working directory>, "hits": {path: [lines]},
  "seconds": <the test's setup + call + teardown>}``, written as each test ends so a run
  cut by its timeout keeps what finished.

How: ``sys.settrace`` (and ``threading.settrace`` for threads the test starts) from a
test's start to its end. The global trace function only looks the frame's file up in a
dict and returns no local tracer for any other file, so code outside the edited files runs
without line events; lines of the edited files are checked against the watched set. The
tracer a test finds in place (a debugger, coverage) is put back after it. Nothing here
raises into the test: the trace functions do set and dict operations only.

Standard library only, no ``import pytest`` (plain hook functions, no hook wrappers), and no
syntax newer than Python 3.6 (the oldest an instance image has). It never runs in this
process: the file is read as text.
"""

import json
import os
import sys
import threading
import time

_MISSING = object()


class _Recorder:
    """The watched lines per real path, and what the current test hit."""

    def __init__(self, watched, root):
        self.root = root
        self.by_real = {}
        for rel, lines in watched.items():
            real = os.path.realpath(os.path.join(root, rel))
            self.by_real[real] = (rel, frozenset(lines))
        self.by_code_file = {}
        self.hits = {}
        self.started = 0.0

    def lookup(self, filename):
        """(repo path, watched lines) for a code object's file name, or None."""
        found = self.by_code_file.get(filename, _MISSING)
        if found is _MISSING:
            found = self.by_real.get(os.path.realpath(os.path.abspath(filename)))
            self.by_code_file[filename] = found
        return found

    def trace(self, frame, event, arg):
        found = self.lookup(frame.f_code.co_filename)
        if found is None:
            return None
        rel, lines = found
        hits = self.hits.setdefault(rel, set())

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno in lines:
                hits.add(frame.f_lineno)
            return local

        return local


_session = {}  # type: dict
"""The recorder, the output file, the test running and the tracer it found in place."""


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
    watch, out = os.environ.get("CM_IMPACT_WATCH"), os.environ.get("CM_IMPACT_OUT")
    if not watch or not out or hasattr(config, "workerinput"):
        return
    try:
        with open(watch) as f:
            recorder = _Recorder(json.load(f), os.getcwd())
        with open(out, "a") as f:
            f.write(json.dumps({"tracer": "started", "python": sys.version.split()[0]}) + "\n")
    except (OSError, ValueError, AttributeError):
        return  # no header line: the verifier falls back to whole files
    _session.update(recorder=recorder, out=out, config=config, test="")


def pytest_runtest_logstart(nodeid, location):
    recorder = _session.get("recorder")
    if recorder is None:
        return
    recorder.hits = {}
    recorder.started = time.perf_counter()
    _session["test"] = nodeid
    _session["previous"] = sys.gettrace()
    threading.settrace(recorder.trace)
    sys.settrace(recorder.trace)


def pytest_runtest_logfinish(nodeid, location):
    recorder = _session.get("recorder")
    if recorder is None or _session.get("test") != nodeid:
        return
    sys.settrace(_session.get("previous"))
    threading.settrace(None)
    seconds = time.perf_counter() - recorder.started
    hits = {rel: sorted(lines) for rel, lines in recorder.hits.items() if lines}
    line = {"id": _test_id(_session["config"], nodeid), "hits": hits, "seconds": round(seconds, 4)}
    _append(_session["out"], line)
    _session["test"] = ""
