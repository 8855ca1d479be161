"""The Docker sandbox on a real SWE-bench Verified instance image (sphinx-doc__sphinx-8721,
built offline from ../shared/data/instances; CI builds it): a sandbox starts at the base
commit, and reset, which restores only what scripts changed, brings a real tree back to it
whatever a script did to tracked and untracked files."""

from __future__ import annotations

import pytest

from codemonkeys.config import Config
from codemonkeys.swebench.dataset import to_problem

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IID = "sphinx-doc__sphinx-8721"

# Edits in place (the module and, through a hard link, a test file), removals (a file, a
# whole directory's files), a mode change, a file replaced by a directory, byte-code and
# build output the way a test run leaves them.
SCRIPT = (
    "set -e; echo '# poison' >> sphinx/ext/viewcode.py; ln tests/conftest.py poison-link; "
    "echo '# poison' >> poison-link; rm tests/test_ext_viewcode.py; rm sphinx/locale/ar/LC_MESSAGES/*; "
    "chmod 600 sphinx/ext/todo.py; rm sphinx/ext/napoleon/iterators.py; "
    "mkdir sphinx/ext/napoleon/iterators.py; echo x > sphinx/ext/napoleon/iterators.py/poison; "
    "python -c 'import sphinx.ext.viewcode'; mkdir -p poison-dir/a && echo y > poison-dir/a/b; echo done"
)
STATE = "git status --porcelain --ignored; git ls-files -s | git hash-object --stdin"
WRITABLE = 'git ls-files -z | while read -rd "" f; do [ -w "$f" ] || echo "read-only: $f"; done'


@pytest.fixture
def spec(instance_row):
    from codemonkeys.sandbox.spec import spec_from_config

    problem, _ = to_problem(instance_row(IID))
    return spec_from_config(problem, Config())


def test_a_real_image_sandbox_starts_at_the_base_and_reset_restores_what_a_script_did(spec):
    from codemonkeys.sandbox import open_sandbox

    with open_sandbox(spec) as sb:
        # the image's install steps edited setup.py and tox.ini; the sandbox starts at base
        assert sb.diff() == ""
        at_open = sb.run(STATE).output
        for _ in range(2):  # the second round starts from a reset tree
            assert sb.run(SCRIPT).output.endswith("done\n")
            assert sb.diff() != ""
            sb.reset()
            assert sb.diff() == ""
            assert sb.run(STATE).output == at_open
            assert sb.run(WRITABLE).output == ""
            assert "poison" not in sb.run("find . -name '*poison*' -not -path './.git/*'").output
