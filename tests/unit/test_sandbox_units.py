"""Sandbox pieces that need no Docker: output capping, patch path checks, git tree
export, specs, image names, and the opt-in LocalSandbox (host processes)."""

from __future__ import annotations

import io
import logging
import tarfile
import textwrap
from pathlib import Path

import pytest

from codemonkeys.config import Config, SandboxConfig
from codemonkeys.problem import Problem
from codemonkeys.sandbox import SandboxPool, SandboxSpec, spec_from_config, swebench_image_name
from codemonkeys.sandbox.gittree import host_tree_tar
from codemonkeys.sandbox.output import BoundedOutput, cap_text
from codemonkeys.sandbox.patching import check_patch_paths
from tests.conftest import make_git_repo


# -- output ---------------------------------------------------------------------------------
def test_bounded_output_keeps_everything_when_it_fits():
    out = BoundedOutput(100)
    out.feed(b"hello ")
    out.feed(b"world")
    assert out.render() == "hello world" and not out.truncated


def test_bounded_output_keeps_head_and_tail_with_exact_marker():
    out = BoundedOutput(100)
    data = b"H" * 50 + b"m" * 10_000 + b"T" * 50
    for i in range(0, len(data), 7):
        out.feed(data[i : i + 7])
    text = out.render()
    assert out.truncated
    assert text == "H" * 50 + "\n... [10000 characters omitted] ...\n" + "T" * 50


def test_bounded_output_memory_stays_bounded():
    out = BoundedOutput(1000)
    for _ in range(10_000):
        out.feed(b"x" * 1000)
    assert len(out.head) + len(out.tail) <= 3 * 1000
    assert out.total == 10_000_000


def test_bounded_output_escapes_non_utf8():
    out = BoundedOutput(100)
    out.feed(b"ok \xff\xfe end")
    assert out.render() == "ok \\xff\\xfe end"


def test_cap_text():
    assert cap_text("short", 100) == "short"
    capped = cap_text("a" * 10 + "b" * 100 + "c" * 10, 20)
    assert capped.startswith("a" * 10) and capped.endswith("c" * 10) and "100 characters" in capped


# -- patch paths ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ("--- a/../x\n+++ b/../x\n", ".."),
        ("--- /dev/null\n+++ /etc/passwd\n", "absolute"),
        ('diff --git "a/../x" "b/../x"\n', ".."),
        ("diff --git a/x b/y\nrename from x\nrename to ../../y\n", ".."),
        ("--- a/.git/hooks/pre-commit\n+++ b/.git/hooks/pre-commit\n", ".git"),
    ],
)
def test_unsafe_patch_paths_are_refused(patch, reason):
    paths, refusal = check_patch_paths(patch)
    assert refusal is not None and reason in refusal and paths == []


def test_patch_paths_are_repo_relative():
    patch = 'diff --git a/src/x.py b/src/x.py\n--- a/src/x.py\n+++ b/src/x.py\ndiff --git "a/caf\\303\\251.txt" "b/caf\\303\\251.txt"\n'
    paths, refusal = check_patch_paths(patch)
    assert refusal is None
    assert paths == ["src/x.py", "café.txt"]


# -- git tree ----------------------------------------------------------------------------------
def test_host_tree_tar_includes_export_ignored_files_and_subdirs(tmp_path):
    make_git_repo(
        tmp_path,
        {
            ".gitattributes": "tests export-ignore\n",
            "pkg/a.py": "A\n",
            "tests/t.py": "T\n",
            "run.sh": "#!/bin/sh\n",
        },
    )
    (tmp_path / "run.sh").chmod(0o755)
    make_git_repo(tmp_path, {}, message="chmod")
    with tarfile.open(fileobj=io.BytesIO(host_tree_tar(tmp_path))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {".gitattributes", "pkg/a.py", "tests/t.py", "run.sh"}
    assert members["run.sh"].mode == 0o755
    with tarfile.open(fileobj=io.BytesIO(host_tree_tar(tmp_path, subdir="pkg"))) as tar:
        assert tar.getnames() == ["a.py"]


def test_symlinks_leaving_the_exported_directory_are_copied_or_left_out(tmp_path, caplog):
    """Monorepo: `--repo mono/pkg` with pkg/LICENSE -> ../LICENSE. Docker refuses such a
    symlink ("invalid symlink"); a tracked target is copied as a file, anything else is
    left out, both with a warning. Links inside the directory stay links."""
    import os

    from codemonkeys.sandbox.gittree import export_host_tree

    make_git_repo(tmp_path, {"LICENSE": "MIT\n", "pkg/a.py": "A\n", "docs/x.md": "x\n"})
    links = {
        "pkg/LICENSE": "../LICENSE",  # a tracked file outside pkg: copied
        "pkg/docs": "../docs",  # a directory outside: left out
        "pkg/passwd": "/etc/passwd",  # absolute: never read from the host
        "pkg/gone": "../nope.txt",  # dangling
        "pkg/b.py": "a.py",  # inside pkg: stays a symlink
    }
    for name, target in links.items():
        os.symlink(target, tmp_path / name)
    make_git_repo(tmp_path, {}, message="links")
    with caplog.at_level(logging.WARNING):
        data = host_tree_tar(tmp_path, subdir="pkg")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"a.py", "b.py", "LICENSE"}
        assert members["LICENSE"].isfile()
        assert tar.extractfile("LICENSE").read() == b"MIT\n"
        assert members["b.py"].issym() and members["b.py"].linkname == "a.py"
    for name in ("pkg/LICENSE", "pkg/docs", "pkg/passwd", "pkg/gone"):
        assert name.removeprefix("pkg/") in caplog.text
    # the host export for the context stage gives the same files
    written = export_host_tree(tmp_path, None, tmp_path / "out", subdir="pkg")
    assert written == ["LICENSE", "a.py", "b.py"]
    assert (tmp_path / "out" / "LICENSE").read_text() == "MIT\n"


def test_host_tree_tar_of_a_non_repo_is_a_clear_error(tmp_path):
    from codemonkeys.sandbox import SandboxError

    with pytest.raises(SandboxError, match="not a git repository"):
        host_tree_tar(tmp_path)


# -- spec and names ---------------------------------------------------------------------------
def test_swebench_image_name_follows_the_official_rule():
    assert (
        swebench_image_name("django__django-11099")
        == "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
    )
    assert swebench_image_name("Foo__Bar-1") == "swebench/sweb.eval.x86_64.foo_1776_bar-1:latest"


def test_spec_from_config_uses_problem_image_and_config_limits():
    problem = Problem(
        id="a__b-1",
        repo="a/b",
        issue="x",
        image="img:1",
        workdir="/testbed",
        env_setup="source act",
    )
    cfg = SandboxConfig(memory="2g", pids_limit=100, script_timeout_s=50, max_output_chars=1000)
    spec = spec_from_config(problem, cfg, run_id="r1")
    assert (spec.image, spec.workdir, spec.env_setup) == ("img:1", "/testbed", "source act")
    assert (spec.memory, spec.pids_limit, spec.default_timeout, spec.max_output_chars) == (
        "2g",
        100,
        50,
        1000,
    )
    assert spec.labels == {"org.codemonkeys.problem": "a__b-1", "org.codemonkeys.run": "r1"}
    assert spec.python_agent  # the default; the config key turns it off
    assert not spec_from_config(problem, SandboxConfig(python_agent=False)).python_agent
    assert (
        spec_from_config(Problem(id="p", repo="r", issue="i"), Config()).image
        == "codemonkeys-sandbox:latest"
    )


# -- LocalSandbox --------------------------------------------------------------------------------
@pytest.fixture
def local_box(tmp_path):
    repo = tmp_path / "repo"
    make_git_repo(repo, {"calc.py": "def add(a, b):\n    return a - b\n", ".gitignore": "*.log\n"})
    pool = SandboxPool(SandboxSpec(kind="local", repo_path=repo, default_timeout=10), size=1)
    yield pool
    pool.close()


def test_local_sandbox_warns_and_runs_commands(local_box, caplog):
    with caplog.at_level(logging.WARNING), local_box.lease() as sb:
        r = sb.run("echo out; echo err >&2; exit 4")
        assert (r.exit_code, r.output) == (4, "out\nerr\n")
    assert "ON THIS HOST" in caplog.text


def test_local_sandbox_timeout_kills_group_and_keeps_output(local_box):
    with local_box.lease() as sb:
        r = sb.run("echo early; sleep 30 & sleep 30", timeout=1)
        assert r.timed_out and r.exit_code is None and r.output == "early\n" and r.seconds < 5


def test_local_sandbox_patch_diff_reset_and_private_tmp(local_box, tmp_path):
    fix = textwrap.dedent(
        """\
        --- a/calc.py
        +++ b/calc.py
        @@ -1,2 +1,2 @@
         def add(a, b):
        -    return a - b
        +    return a + b
        """
    )
    with local_box.lease() as sb:
        assert sb.apply_patch(fix).ok
        sb.write_file("/tmp/codemonkeys/t.py", "import calc\nprint(calc.add(2, 2))\n")
        # /tmp/codemonkeys is mapped to a private directory: parallel sandboxes never collide.
        assert sb.tmp_dir != "/tmp/codemonkeys"
        assert Path(sb.tmp_dir, "t.py").read_text().startswith("import calc")
        assert sb.run("python3 /tmp/codemonkeys/t.py").output == "4\n"
        sb.write_file("new.txt", "n\n")
        sb.write_file("x.log", "ignored\n")
        diff = sb.diff()
        assert "+    return a + b" in diff and "new.txt" in diff and "x.log" not in diff
        assert not sb.apply_patch("--- a/../out\n+++ b/../out\n@@ -0,0 +1 @@\n+x\n").ok
        with pytest.raises(Exception, match="only writes inside"):
            sb.write_file("/etc/codemonkeys-test", "x")
    with local_box.lease() as sb:  # reset on return: back to base
        assert sb.diff() == ""
        assert sb.run("ls -a").output.split() == [".", "..", ".git", ".gitignore", "calc.py"]
        assert sorted(sb.export_repo(tmp_path / "exp")) == [".gitignore", "calc.py"]


def test_local_sandbox_passes_an_env_allow_list_not_the_host_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-host-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_host_secret")
    monkeypatch.setenv("CODEMONKEYS_TEST_PASSED", "visible")
    monkeypatch.setenv("LANG", "C.UTF-8")
    repo = tmp_path / "repo"
    make_git_repo(repo, {"a.py": "A = 1\n"})
    spec = SandboxSpec(kind="local", repo_path=repo, pass_env=["CODEMONKEYS_TEST_PASSED"])
    with SandboxPool(spec, size=1) as pool, pool.lease() as sb:
        out = sb.run("env").output
        home = sb.run('echo "$HOME"').output.strip()
    assert "secret" not in out
    assert "ANTHROPIC_API_KEY" not in out and "GITHUB_TOKEN" not in out
    assert "CODEMONKEYS_TEST_PASSED=visible" in out and "LANG=C.UTF-8" in out
    assert home != str(Path.home()) and home.startswith(str(sb.root))


def test_spec_from_config_carries_env_allow_list_and_disk_limits():
    cfg = SandboxConfig(pass_env=["HTTP_PROXY"], disk_limit="64m", scratch_size="32m")
    spec = spec_from_config(Problem(id="p", repo="o/r", issue="i"), cfg)
    assert (spec.pass_env, spec.disk_limit, spec.scratch_size) == (["HTTP_PROXY"], "64m", "32m")


def test_end_marked_output_keeps_every_byte_and_reads_the_status_in_any_chunking():
    """The agent-less run path: the wrapper's closing mark is taken off wherever the
    stream is cut, the script's output stays byte for byte (a forged mark with another
    nonce included), and a stream without the mark says so."""
    import random

    from codemonkeys.sandbox.output import BoundedOutput, EndMarked

    nonce = "0123abcd" * 4
    script_out = b"line\n\n@@CMEND forged 0\nno newline at the end"
    stream = script_out + f"\n@@CMEND {nonce} 3\n".encode()
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(0, 6)))
        sink = BoundedOutput(10_000)
        marked = EndMarked(sink, nonce)
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            marked.feed(stream[a:b])
        assert marked.finish() == 3
        assert bytes(sink.head + sink.tail) == script_out
    lost = BoundedOutput(10_000)
    cut_short = EndMarked(lost, nonce)
    cut_short.feed(script_out)
    assert cut_short.finish() is None and bytes(lost.head + lost.tail) == script_out
