"""Secrets of a repository: found by name and by content (detect-secrets), kept out of the
relevance scan, replaced in a sandbox's copy of a local repository, and redacted from what
a script prints (the local sandbox, which needs no Docker; the Docker sandbox and `solve`
end to end are in tests/integration/test_secrets.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from codemonkeys.config import ContextConfig
from codemonkeys.context.files import enumerate_files
from codemonkeys.sandbox.pool import SandboxPool
from codemonkeys.sandbox.secret_copy import repo_copy
from codemonkeys.sandbox.spec import SandboxSpec
from codemonkeys.secret_check import REDACTED, Redactor, SecretCheck
from tests.conftest import make_git_repo
from tests.fixtures.planted_secrets import FILES, NEEDLES, WHOLE_FILES

CODE = {
    "app/__init__.py": "",
    "app/core.py": "def total(xs):\n    return sum(xs)\n",
    "README.md": "# app\n",
}


def _leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def test_every_planted_secret_is_left_out_of_the_relevance_scan(tmp_path):
    """The gaps of issue 26 (.git-credentials, AWS credentials, .pgpass, api_key in a YAML
    file, sk_live_ in a .py, a GitHub or Slack token in code) were read into prompts."""
    for rel, text in {**FILES, **CODE}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    enum = enumerate_files(tmp_path, [*FILES, *CODE], ContextConfig())
    assert {p for p, r in enum.excluded.items() if r == "secret"} == set(FILES)
    assert sorted(f.path for f in enum.files) == sorted(p for p in CODE if CODE[p])


def test_ordinary_source_and_documentation_examples_are_not_secrets():
    check = SecretCheck(ContextConfig().secret_globs)
    ordinary = {
        "sphinx/ext/intersphinx.py": '"""E.g.: https://user:pass@example.com => https://example.com"""\n',
        "tests/test_linkcheck.py": 'headers = {"X-Secret": "open sesami"}\n',
        "app/settings.py": 'PASSWORD_FIELD = "password"\ntoken = get_token()\n',
        "conf/app.yml": "password: ${DB_PASSWORD}\napi_key: <your key here>\n",
        "app/hashes.py": 'SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"\n',
    }
    for path, text in ordinary.items():
        assert check.inspect(path, text.encode()) is None, path


def test_redactor_replaces_each_exact_value_and_each_line_of_a_key():
    check = SecretCheck(ContextConfig().secret_globs)
    values = [v for p, t in FILES.items() if (f := check.inspect(p, t.encode())) for v in f.values]
    red = Redactor(values)
    everything = "\n".join(FILES.values())
    assert _leaks(red.text(everything)) == []
    one_line = FILES["deploy/id_rsa"].splitlines()[2]  # a script printing line by line
    assert red.text(f"got {one_line}!") == f"got {REDACTED}!"
    assert red.data(FILES[".pgpass"].encode()).count(REDACTED.encode()) == 1
    assert red.text("nothing secret here") == "nothing secret here"


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    make_git_repo(repo, {**FILES, **CODE})
    return repo


def _members(tar: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return {
            m.name: t.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in t.getmembers()
            if m.isfile()
        }


def test_the_sandbox_copy_replaces_secret_files_and_masks_secret_values(tmp_path):
    spec = SandboxSpec(
        kind="local", repo_path=_repo(tmp_path), secret_globs=ContextConfig().secret_globs
    )
    copy = repo_copy(spec)
    files = _members(copy.tar)
    assert set(files) == set(FILES) | set(CODE)  # every file is there: code opening one works
    assert _leaks("\n".join(files.values())) == []
    assert sorted(copy.replaced) == sorted(WHOLE_FILES)
    for path in WHOLE_FILES:
        assert "codemonkeys" in files[path]
    # code around a masked value is kept as it was
    assert files["app/billing.py"].startswith(f'STRIPE_KEY = "{REDACTED}"\n\n\ndef charge(amount):')
    assert files["config/config.yml"] == f"service:\n  name: billing\n  api_key: {REDACTED}\n"
    assert "Then run `make deploy`." in files["docs/setup.md"]
    assert files["app/core.py"] == CODE["app/core.py"]


def test_copy_secret_files_copies_the_named_files_as_they_are(tmp_path):
    spec = SandboxSpec(
        kind="local",
        repo_path=_repo(tmp_path),
        secret_globs=ContextConfig().secret_globs,
        copy_secret_files=["certs/*.pem"],
    )
    copy = repo_copy(spec)
    assert _members(copy.tar)["certs/server.pem"] == FILES["certs/server.pem"]
    assert copy.kept == ["certs/server.pem"] and "certs/server.pem" not in copy.replaced


PRINT_ALL = """import os, sys
roots = ["."] + sys.argv[1:]
for root in roots:
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if "/.git/" in p + "/":
                continue
            try:
                print(p, open(p, errors="replace").read())
            except OSError:
                pass
"""


def test_local_sandbox_output_is_redacted_even_when_the_script_reads_the_original(tmp_path):
    """The local sandbox has no isolation: a script can read the user's checkout by its
    host path. What it prints is redacted at the lease."""
    repo = _repo(tmp_path)
    spec = SandboxSpec(
        kind="local",
        repo_path=repo,
        secret_globs=ContextConfig().secret_globs,
        max_output_chars=500_000,
    )
    with SandboxPool(spec, size=1) as pool, pool.lease() as box:
        box.write_file("/tmp/codemonkeys/print_all.py", PRINT_ALL)
        res = box.run(f"python /tmp/codemonkeys/print_all.py {repo}", timeout=60)
        read = box.read_file(f"{box.workdir}/app/billing.py").decode()
    assert res.exit_code == 0, res.output
    assert _leaks(res.output) == []
    assert REDACTED in res.output and "def total(xs)" in res.output
    assert REDACTED in read


def test_the_literal_gates_name_live_detector_patterns_and_keep_their_tokens():
    """A gate skips a detector's regex on a file without its literal; it must name a
    pattern detect-secrets still has, and tokens of the gated kinds are still found."""
    from codemonkeys.secret_check import _GATES, _TOKEN_PLUGINS, find_values

    live = {rx.pattern for plugin in _TOKEN_PLUGINS for rx in plugin.denylist}
    assert set(_GATES) <= live
    samples = [
        "KEY = 'AKIAQWERTYUIOPASDF12'",
        'aws_secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYq1w2e3r4t5y6"',
        "MC = '0123456789abcdef0123456789abcdef-us14'",
        "hook = 'https://hooks.slack.com/services/T0001/B0002/XyZ123abc'",
        "T = 'xoxp-1111-2222-abcdef'",
        "S = 'rk_live_4eC39HqLyjWDarjtT1zdp7dc'",
        "G = 'glpat-Abcdefghij0123456789xy'",
    ]
    for line in samples:
        assert find_values("app/settings.py", line), line


def test_a_secret_cut_by_the_output_cap_is_redacted_on_both_sides():
    from codemonkeys.sandbox.output import omitted_marker

    secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    red = Redactor([secret])
    cut = "key=" + secret[:20] + omitted_marker(5000) + secret[-9:] + " done"
    shown = red.text(cut)
    assert secret[:20] not in shown and secret[-9:] not in shown
    assert shown == f"key={REDACTED}{omitted_marker(5000)}{REDACTED} done"
