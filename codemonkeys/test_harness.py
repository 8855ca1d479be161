"""Runs one model-written Python test inside the sandbox and vouches that it finished.

``execution.run_script`` starts ``python -s -c <this file's source> <script>`` from the
repository root, with the repository root *not* on ``PYTHONPATH``, and a per-run nonce in
``CODEMONKEYS_TEST_MARK``. This code then:

- puts the repository root on ``sys.path`` itself, after the interpreter started (the
  import semantics of ``PYTHONPATH``, but a candidate's root ``sitecustomize.py`` is not run
  at start-up), and gives ``PYTHONPATH`` back to the test's child processes;
- runs the script as ``__main__``;
- prints the completion mark only when the script ended by itself (it returned, or a
  ``SystemExit`` left it without passing through the repository's code). A ``SystemExit``
  raised in the repository's code (``sys.exit(0)`` at the end of an edited module) or an
  ``os._exit`` leaves no mark: the host then treats the run as a crash, whatever its exit
  code, so a candidate that ends the interpreter early earns no vote.

Standard library only, and no syntax newer than Python 3.6 (the oldest an instance image
has). Run as a script only: importing it does nothing.
"""

import os
import runpy
import sys
import traceback
import types


def _main() -> None:
    mark = os.environ.pop("CODEMONKEYS_TEST_MARK", "")
    root = os.path.realpath(os.getcwd())
    script = os.path.abspath(sys.argv[1])
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(script)
    sys.path.insert(1, root)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    try:
        runpy.run_path(script, run_name="__main__")
        code: str | int | None = 0
    except SystemExit as e:
        where = _repository_frame(e.__traceback__, root + os.sep)
        if where:
            sys.stdout.flush()
            sys.stderr.write(
                f"codemonkeys: the repository's code ended the test (SystemExit({e.code!r}) "
                f"at {where}); the test did not finish\n"
            )
            sys.stderr.flush()
            os._exit(e.code if isinstance(e.code, int) else 1)
        code = e.code
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
            tb = tb.tb_next  # the script's frames only, as when run directly
        traceback.print_exception(type(e), e, tb or e.__traceback__)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write(f"\n{mark}\n")
    sys.stdout.flush()
    sys.exit(code)


def _repository_frame(tb: "types.TracebackType | None", root: str) -> str:
    for frame, line in traceback.walk_tb(tb):
        name = frame.f_code.co_filename
        if not os.path.isabs(name):
            continue  # <frozen runpy>, <string>: not a file of the repository
        path = os.path.realpath(name)
        if path.startswith(root):
            return f"{path[len(root) :]}:{line}"
    return ""


if __name__ == "__main__":
    _main()
