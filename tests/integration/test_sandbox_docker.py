"""DockerSandbox and SandboxPool against the real Docker engine.

One container serves most of the module (reset between tests, which itself is under test);
only the pool, crash-cleanup and image-repo tests start their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import docker
import pytest

from codemonkeys.sandbox import (
    MANAGED_LABEL,
    SandboxError,
    SandboxFileNotFound,
    SandboxPool,
    SandboxSpec,
    clean_containers,
    open_sandbox,
)
from codemonkeys.sandbox.prepared import remove_prepared_images
from tests.conftest import ROOT, make_git_repo

pytestmark = pytest.mark.docker

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
FILES: dict[str, str | bytes] = {
    "calc.py": CALC,
    "README.md": "a tiny repo\n",
    ".gitignore": "*.log\nbuild/\n",
    ".gitattributes": "tests export-ignore\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "data/blob.bin": bytes(range(256)) * 4,
    "lines.txt": "".join(f"line {i}\n" for i in range(1, 31)),
}
FIX = (
    textwrap.dedent(
        """\
    diff --git a/calc.py b/calc.py
    --- a/calc.py
    +++ b/calc.py
    @@ -1,3 +1,3 @@
     def add(a, b):
    -    return a - b
    +    return a + b
    """
    )
    + " \n"
)
TREE_HASH = (
    "find . -path ./.git -prune -o -print0 | sort -z | "
    'xargs -0 -I{} sh -c \'if [ -f "{}" ]; then sha256sum "{}"; else echo "dir {}"; fi\' | sha256sum'
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sandbox-repo")
    make_git_repo(path, FILES)
    return path


@pytest.fixture(scope="module", params=["python-agent", "bash-agent"])
def box(request, repo, sandbox_image):
    """Every test of a sandbox holds with either in-container agent (agent_server, or the
    bash one for images without a python3 fit to run as root)."""
    spec = SandboxSpec(
        image=sandbox_image,
        repo_path=repo,
        python_agent=request.param == "python-agent",
        memory="256m",
        pids_limit=128,
        max_output_chars=2000,
        default_timeout=30,
        labels={"org.codemonkeys.problem": "test-sandbox-docker"},
    )
    sb = open_sandbox(spec)
    agent = sb._get_agent()
    assert agent is not None and agent.python == spec.python_agent
    yield sb
    sb.close()


@pytest.fixture
def sb(box):
    """The shared sandbox, clean at the start of every test."""
    box.reset()
    return box


def test_exit_code_stdout_and_stderr_interleaved(sb):
    r = sb.run("echo out1; echo err1 >&2; echo out2; exit 3")
    assert r.exit_code == 3 and not r.timed_out
    assert r.output == "out1\nerr1\nout2\n"


def test_runs_in_workdir_with_repo_importable(sb):
    sb.write_file("/tmp/codemonkeys/t.py", "import calc\nprint(calc.mul(6, 7))\n")
    r = sb.run("pwd; python /tmp/codemonkeys/t.py")
    assert r.exit_code == 0
    assert r.output.split() == [sb.workdir, "42"]


def test_timeout_keeps_partial_output_and_kills_the_tree(sb):
    r = sb.run("echo before; (sleep 60; echo child-survived) & sleep 60; echo after", timeout=1.5)
    assert r.timed_out and r.exit_code is None
    assert r.output == "before\n"  # nothing of our wrapper (no "Killed" job notice)
    assert r.seconds < 6
    ps = sb.run("ps -eo args")
    assert "sleep 60" not in ps.output


def test_infinite_loop_is_stopped(sb):
    r = sb.run("python -c 'print(\"spinning\", flush=True)\nwhile True: pass'", timeout=1)
    assert r.timed_out and "spinning" in r.output
    assert "python -c" not in sb.run("ps -eo args").output


def test_fork_bomb_is_contained_and_sandbox_recovers(sb):
    count = "ps -e --no-headers | wc -l"
    before = int(sb.run(count).output)
    r = sb.run(":(){ :|:& };:", timeout=3)
    assert r.seconds < 10
    # The bomb's process group is gone when run() returns, even before any reset.
    assert int(sb.run(count).output) <= before
    assert sb.run("echo alive").output == "alive\n"


def test_command_killing_every_process_it_can_only_hits_its_own(sb):
    # As the sandbox user, `kill -9 -1` reaches only that user's processes: the command
    # server (root) survives and the script's own result comes back.
    r = sb.run("sleep 30 & kill -9 -1; echo still-here; exit 4", timeout=10)
    assert r.exit_code == 4 and r.output == "still-here\n" and not r.timed_out
    assert sb.run("python -c 'print(1 + 1)'").output == "2\n"


def test_memory_hog_is_killed_by_the_limit(sb):
    r = sb.run("python -c 'x = bytearray(1024 * 1024 * 1024); print(\"survived\")'", timeout=30)
    assert r.exit_code == 137 and not r.timed_out
    assert "survived" not in r.output.splitlines()
    assert sb.run("echo still-here").exit_code == 0


def test_100mb_of_output_is_fast_bounded_and_keeps_head_and_tail(sb):
    r = sb.run("echo HEAD-MARK; head -c 100000000 /dev/zero | tr '\\0' x; echo; echo TAIL-MARK")
    assert r.exit_code == 0 and r.truncated
    assert r.output.startswith("HEAD-MARK\n") and r.output.endswith("TAIL-MARK\n")
    assert "characters omitted" in r.output
    assert len(r.output) < 2000 + 100
    assert r.seconds < 20


def test_network_is_off(sb):
    r = sb.run(
        'python -c \'import socket; socket.create_connection(("1.1.1.1", 80), timeout=3); print("connected")\''
    )
    assert r.exit_code != 0 and "connected" not in r.output
    assert "lo" in sb.run("ls /sys/class/net").output.split()
    assert sb.run("ls /sys/class/net").output.split() == ["lo"]


def test_non_utf8_output_is_escaped_not_dropped(sb):
    r = sb.run("printf 'ok \\377\\376 end\\n'")
    assert r.exit_code == 0
    assert r.output == "ok \\xff\\xfe end\n"


def test_env_setup_runs_before_each_command(repo, sandbox_image):
    spec = SandboxSpec(
        image=sandbox_image, repo_path=repo, env_setup="export GREETING=hello-from-setup"
    )
    with open_sandbox(spec) as one:
        assert one.run("echo $GREETING").output == "hello-from-setup\n"


def test_agent_off_by_config_uses_docker_exec(repo, sandbox_image):
    """sandbox.agent = false (the config key that replaced an env read at import time)."""
    spec = SandboxSpec(image=sandbox_image, repo_path=repo, agent=False)
    with open_sandbox(spec) as one:
        assert one.run("echo via-exec").output == "via-exec\n"
        assert one._agent is None
    with open_sandbox(SandboxSpec(image=sandbox_image, repo_path=repo)) as default:
        assert default.run("echo via-agent").output == "via-agent\n"
        assert default._agent is not None


def test_an_image_whose_python3_others_may_write_gets_the_bash_agent(repo, sandbox_image):
    """The Python agent runs as root: an interpreter any user could replace is not used
    (agent.PY_LAUNCH), and every operation still works through the bash agent."""
    prep = docker.from_env().containers.run(
        sandbox_image, ["bash", "-c", "chmod o+w $(readlink -f /usr/bin/python3)"], detach=True
    )
    prep.wait()
    image = prep.commit(repository="codemonkeys-test-unsafe-python", tag="latest")
    prep.remove()
    try:
        with open_sandbox(SandboxSpec(image=image.id, repo_path=repo)) as one:
            agent = one._get_agent()
            assert agent is not None and not agent.python
            assert one.apply_patch(FIX).ok
            assert one.run("python -c 'import calc; print(calc.add(1, 2))'").output == "3\n"
            one.reset()
            assert one.diff() == ""
    finally:
        docker.from_env().images.remove(image.id, force=True)


def test_write_and_read_files(sb):
    sb.write_file("notes/new.txt", "relative\n")
    sb.write_file("/tmp/codemonkeys/x/abs.bin", b"\x00\xff")
    assert sb.read_file("notes/new.txt") == b"relative\n"
    assert sb.read_file(f"{sb.workdir}/notes/new.txt") == b"relative\n"
    assert sb.read_file("/tmp/codemonkeys/x/abs.bin") == b"\x00\xff"
    with pytest.raises(SandboxFileNotFound):
        sb.read_file("missing.txt")


def test_patch_that_applies_and_diff_round_trips(sb):
    res = sb.apply_patch(FIX)
    assert res.ok and res.method == "git-apply"
    assert sb.run("python -c 'import calc; print(calc.add(1, 2))'").output == "3\n"
    diff = sb.diff()
    assert "+    return a + b" in diff
    sb.reset()
    assert sb.apply_patch(diff).ok and sb.diff() == diff


def test_patch_that_does_not_apply_reports_every_strategy_and_changes_nothing(sb):
    bad = FIX.replace("return a - b", "return a // b")
    res = sb.apply_patch(bad)
    assert not res.ok
    for name in ("git apply", "--3way", "patch --fuzz"):
        assert name in res.error
    assert sb.diff() == ""


def test_fuzzy_patch_falls_back_to_patch_fuzz(sb):
    # Context line 'line 3' is wrong in the patch: git apply refuses, patch --fuzz copes.
    fuzzy = textwrap.dedent(
        """\
        --- a/lines.txt
        +++ b/lines.txt
        @@ -3,5 +3,5 @@
         line three
         line 4
         line 5
        -line 6
        +line six
         line 7
        """
    )
    res = sb.apply_patch(fuzzy)
    assert res.ok and res.method == "patch-fuzz", res.error
    assert "line six" in sb.read_file("lines.txt").decode()


@pytest.mark.parametrize(
    "patch",
    [
        "--- a/../outside\n+++ b/../outside\n@@ -0,0 +1 @@\n+x\n",
        "diff --git a/../outside b/../outside\nnew file mode 100644\n--- /dev/null\n+++ b/../outside\n@@ -0,0 +1 @@\n+x\n",
        "--- /dev/null\n+++ /tmp/abs-outside\n@@ -0,0 +1 @@\n+x\n",
        "--- a/.git/config\n+++ b/.git/config\n@@ -0,0 +1 @@\n+x\n",
    ],
)
def test_patches_leaving_the_repo_are_refused(sb, patch):
    res = sb.apply_patch(patch)
    assert not res.ok and res.error.startswith("refused")
    assert sb.run(f"ls {os.path.dirname(sb.workdir)}/outside /tmp/abs-outside 2>&1").exit_code != 0


def test_patch_through_a_symlink_out_of_the_repo_is_refused(sb):
    sb.run("mkdir -p /tmp/victim && echo keep > /tmp/victim/f && ln -s /tmp/victim escape")
    patch = "--- a/escape/f\n+++ b/escape/f\n@@ -1 +1 @@\n-keep\n+pwned\n"
    res = sb.apply_patch(patch)
    assert not res.ok and "outside the repository" in res.error
    assert sb.run("cat /tmp/victim/f").output == "keep\n"


def test_reset_restores_the_exact_base_tree(sb):
    base = sb.run(TREE_HASH).output
    sb.run(
        "echo changed >> calc.py && rm README.md && echo new > new.py && mkdir -p pkg/deep && "
        "echo n > pkg/deep/x.py && echo log > debug.log && mkdir build && echo o > build/a.o && "
        "git add -A && git checkout -q -b other && git commit -qm wip && echo staged > s.txt && git add s.txt"
    )
    assert sb.run(TREE_HASH).output != base
    start = time.monotonic()
    sb.reset()
    took = time.monotonic() - start
    assert sb.run(TREE_HASH).output == base
    assert sb.run("git status --porcelain --ignored").output == ""
    assert took < 2.0


def test_diff_includes_new_binary_and_non_utf8_files_and_reapplies_exactly(sb):
    sb.write_file("added/new_module.py", "X = 1\n")
    sb.write_file("added/raw.bin", bytes(range(256)))
    sb.write_file("latin1.txt", "caf\xe9\n".encode("latin-1"))
    sb.run("rm lines.txt && printf '\\001\\002' >> data/blob.bin")
    after = sb.run(TREE_HASH).output
    diff = sb.diff()
    assert isinstance(diff, str)
    diff.encode("utf-8")  # valid text: storable as JSON
    assert "added/new_module.py" in diff and "GIT binary patch" in diff
    sb.reset()
    res = sb.apply_patch(diff)
    assert res.ok, res.error
    assert sb.run(TREE_HASH).output == after


def test_diff_of_a_quoted_name_with_non_utf8_content_reapplies_exactly(sb):
    # git quotes the name ("caf\303\251 latin1.txt"); its section is found by that name.
    sb.write_file("caf\u00e9 latin1.txt", "caf\xe9\n".encode("latin-1"))
    sb.write_file("plain.txt", "ok\n")
    after = sb.run(TREE_HASH).output
    diff = sb.diff()
    diff.encode("utf-8")
    assert "GIT binary patch" in diff and "+ok" in diff  # only the non-UTF-8 file is binary
    sb.reset()
    res = sb.apply_patch(diff)
    assert res.ok, res.error
    assert sb.run(TREE_HASH).output == after


def test_export_repo_writes_every_tracked_file(sb, tmp_path):
    sb.write_file("not-tracked.txt", "x")
    paths = sb.export_repo(tmp_path / "export")
    assert paths == sorted(FILES)  # tests/ is export-ignore'd, still exported
    for rel, content in FILES.items():
        data = content if isinstance(content, bytes) else content.encode()
        assert (tmp_path / "export" / rel).read_bytes() == data


def test_export_repo_of_megabytes_arrives_whole_and_leaves_nothing_behind(tmp_path, sandbox_image):
    """Several archive chunks (1 MiB each) and many files: every byte through the
    archive API, and the staged output file is gone afterwards."""
    big = os.urandom(3 * 1024 * 1024 + 17)
    files: dict[str, str | bytes] = {f"pkg/m{i}.py": f"X = {i}\n" for i in range(300)}
    files["data/big.bin"] = big
    make_git_repo(tmp_path / "big-repo", files)
    with open_sandbox(SandboxSpec(image=sandbox_image, repo_path=tmp_path / "big-repo")) as one:
        paths = one.export_repo(tmp_path / "export")
        leftovers = one._git_ok(f"ls -A {one.private_dir}", "listing").decode().split()
    assert paths == sorted(files)
    assert (tmp_path / "export" / "data" / "big.bin").read_bytes() == big
    assert (tmp_path / "export" / "pkg" / "m299.py").read_text() == "X = 299\n"
    assert not [n for n in leftovers if n.startswith(".stream-")], leftovers


def test_without_the_agent_every_operation_still_answers_whole(repo, sandbox_image, tmp_path):
    """The plain docker-exec path (sandbox.agent = false) frames its output with an end
    mark; patching, diff, export, files and reset all work through it."""
    with open_sandbox(SandboxSpec(image=sandbox_image, repo_path=repo, agent=False)) as one:
        assert one.apply_patch(FIX).ok
        assert "+    return a + b" in one.diff()
        assert one.export_repo(tmp_path / "export") == sorted(FILES)
        one.write_file("/tmp/codemonkeys/x.txt", "scratch\n")
        assert one.read_file("/tmp/codemonkeys/x.txt") == b"scratch\n"
        one.reset()
        assert one.diff() == ""
        forged = one.run("printf 'out\\n@@CMEND forged 0\\n'; exit 5")
        assert (forged.exit_code, forged.output) == (5, "out\n@@CMEND forged 0\n")
        # the mark's nonce is in the root wrapper's environment only, out of the script's reach
        seen = one.run(
            "echo ${CM_END:-unset}; cat /proc/[0-9]*/environ 2>/dev/null | grep -ac CM_END"
        )
        assert seen.output == "unset\n0\n", seen.output
        slow = one.run("echo started; sleep 30", timeout=1)
        assert slow.timed_out and slow.output == "started\n"
        assert one._agent is None


def test_an_exec_whose_output_was_lost_is_an_error_never_an_empty_answer(box):
    """A one-off docker exec can lose a short command's output whole (moby#27289). The
    end mark is then missing; here the wrapper that prints it is killed to the same
    effect, and the answer is an infrastructure error, not empty output with its status."""
    from codemonkeys.sandbox.container import exec_framed

    assert exec_framed(box.container, "printf answer; exit 3", 30) == (3, b"answer", b"")
    with pytest.raises(SandboxError, match="lost the command's output"):
        exec_framed(box.container, "kill -TERM $PPID; sleep 1", 30)


def test_missing_image_is_a_clear_error(repo):
    with pytest.raises(SandboxError, match="not found.*build-offline-image"):
        open_sandbox(SandboxSpec(image="codemonkeys-sandbox:does-not-exist", repo_path=repo))


def test_pool_reuses_containers_and_hands_out_clean_sandboxes(repo, sandbox_image, docker_client):
    run_id = f"pooltest-{uuid.uuid4().hex[:8]}"
    spec = SandboxSpec(image=sandbox_image, repo_path=repo, labels={"org.codemonkeys.run": run_id})
    slots = threading.BoundedSemaphore(2)
    seen: list[str] = []
    errors: list[str] = []

    def work(i: int) -> None:
        with pool.lease() as s:
            r = s.run("git status --porcelain")
            if r.output:
                errors.append(r.output)
            s.write_file(f"leftover_{i}.txt", "dirty")
            seen.append(s.container.id)

    with SandboxPool(spec, size=2, container_slots=slots) as pool:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert (
            pool.stats["created"] <= 2 and pool.stats["leases"] == 8 and pool.stats["resets"] == 8
        )
        assert len(set(seen)) == pool.stats["created"]
        labelled = docker_client.containers.list(filters={"label": f"org.codemonkeys.run={run_id}"})
        assert len(labelled) == pool.stats["created"]
    assert (
        docker_client.containers.list(all=True, filters={"label": f"org.codemonkeys.run={run_id}"})
        == []
    )
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # slots were given back


def test_pool_replaces_a_sandbox_whose_reset_fails(repo, sandbox_image):
    spec = SandboxSpec(image=sandbox_image, repo_path=repo)
    with SandboxPool(spec, size=1) as pool:
        with pool.lease() as s:
            first = s.container.id
            s.container.kill()  # the container dies mid-lease: reset on return must fail
        assert pool.stats["discarded"] == 1
        with pool.lease() as s:
            assert s.container.id != first
            assert s.run("echo ok").output == "ok\n"


def test_image_repo_keeps_preexisting_untracked_files(repo, sandbox_image, docker_client):
    """SWE-bench style: the image holds the repo plus build artefacts (ignored files);
    reset must keep those and remove only what runs added. Kept files are made read-only
    for scripts, and a kept symlink is not followed out of the repository (sphinx images
    keep a link to the whole conda environment)."""
    spec = SandboxSpec(image=sandbox_image, repo_path=repo)
    tag = f"codemonkeys-test-imagerepo:{uuid.uuid4().hex[:8]}"
    with open_sandbox(spec) as s:
        s.run("mkdir -p build && echo artefact > build/ext.so && echo egg > pkg.log")
        code, _, err = s._sh(
            "mkdir -p /opt/outside && echo o > /opt/outside/f && chmod 666 /opt/outside/f"
            f" && ln -s /opt/outside {s.workdir}/build/env-lib && chmod 666 {s.workdir}/pkg.log"
        )
        assert code == 0, err
        s.container.commit(repository=tag.split(":")[0], tag=tag.split(":")[1])
    try:
        with open_sandbox(SandboxSpec(image=tag, workdir="/repo")) as img:
            img.run(
                "echo new > build/new.o && echo x > scratch.log && echo y > untracked.py && echo z >> calc.py"
            )
            assert "untracked.py" in img.diff() and "build/ext.so" not in img.diff()
            img.reset()
            out = img.run("cat build/ext.so pkg.log; ls build; git status --porcelain").output
            assert out == "artefact\negg\nenv-lib\next.so\n"
            assert img.run("[ -w pkg.log ] || echo read-only").output == "read-only\n"
            # only the write bit for others goes outside the tree (HARDEN's global pass), not
            # the group's as for kept files: the link was not followed
            assert img.run("stat -c %a /opt/outside/f").output == "664\n"
    finally:
        remove_prepared_images(docker_client, source=tag)
        docker_client.images.remove(tag, force=True)


OWNERSHIP = (
    "find . -path ./.git -prune -o -printf '%u %m %p\\n' | sort; git status --porcelain --ignored; "
    "git log --all --format=%H; ls -A /tmp /tmp/home; " + TREE_HASH
)


def test_image_repo_is_prepared_once_and_every_sandbox_starts_as_unprepared_ones_do(
    repo, sandbox_image, docker_client
):
    """The first sandbox of an image commits a prepared image; later ones start from it:
    same base, kept files, ownership and modes as a sandbox prepared on its own, and
    nothing of an earlier sandbox's scripts (it was committed before any ran)."""
    tag = f"codemonkeys-test-prepared:{uuid.uuid4().hex[:8]}"
    with open_sandbox(SandboxSpec(image=sandbox_image, repo_path=repo)) as s:
        s.run("mkdir -p build && echo artefact > build/ext.so && echo egg > pkg.log")
        s.container.commit(repository=tag.split(":")[0], tag=tag.split(":")[1])
    try:
        with open_sandbox(SandboxSpec(image=tag, workdir="/repo", prepare=False)) as plain:
            expected = plain.run(OWNERSHIP).output
        spec = SandboxSpec(image=tag, workdir="/repo", labels={"org.codemonkeys.run": "r1"})
        with open_sandbox(spec) as first:
            assert first.prepared is not None
            assert first.run(OWNERSHIP).output == expected
            first.run("echo poison >> calc.py; echo x > new.py; echo p > /tmp/p; echo h > build/h")
        with open_sandbox(spec.model_copy(update={"labels": {}})) as second:
            assert second.prepared == first.prepared  # reused, not made again
            assert second.run(OWNERSHIP).output == expected
            assert second.base_commit == plain.base_commit
            assert second.keep_untracked == plain.keep_untracked
            labels = second.container.labels
            assert "org.codemonkeys.run" not in labels  # nothing of the first one's labels
            assert labels["org.codemonkeys.pid"] == str(os.getpid())
        image_labels = docker_client.images.get(first.prepared).labels
        assert image_labels["org.codemonkeys.prepared.source"] == tag
        # the source image rebuilt (here: retagged to another image): the prepared image
        # is an orphan, and clean removes it
        docker_client.images.get(sandbox_image).tag(tag)
        assert remove_prepared_images(docker_client, orphans_only=True) >= 1
        assert not docker_client.images.list(filters={"reference": first.prepared})
    finally:
        remove_prepared_images(docker_client, source=tag)
        docker_client.images.remove(tag, force=True)


def test_clean_removes_containers_left_by_a_killed_process(
    tmp_path, repo, sandbox_image, docker_client
):
    run_id = f"crash-{uuid.uuid4().hex[:8]}"
    child = tmp_path / "child.py"
    child.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from pathlib import Path
            from codemonkeys.sandbox import SandboxSpec, open_sandbox
            sb = open_sandbox(SandboxSpec(image={sandbox_image!r}, repo_path=Path({str(repo)!r}),
                                          labels={{"org.codemonkeys.run": {run_id!r}}}))
            print("READY", flush=True)
            time.sleep(600)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(child)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    filters = {"label": [f"{MANAGED_LABEL}=1", f"org.codemonkeys.run={run_id}"]}
    assert len(docker_client.containers.list(all=True, filters=filters)) == 1  # SIGKILL leaks it
    assert clean_containers(docker_client, run_id=run_id) == 1
    assert docker_client.containers.list(all=True, filters=filters) == []


def test_clean_spares_containers_of_live_processes(box, docker_client):
    before = clean_containers(docker_client, run_id="no-such-run-" + uuid.uuid4().hex[:6])
    assert before == 0
    clean_containers(docker_client)  # may remove other dead runs' leftovers, never ours
    assert box.run("echo alive").output == "alive\n"


def test_sigterm_of_the_host_process_removes_its_containers(
    tmp_path, repo, sandbox_image, docker_client
):
    """The job's signal handling (installed at the job entry, main thread) stops work held
    in a worker thread; the pool then removes its containers and the exit code is 143."""
    run_id = f"term-{uuid.uuid4().hex[:8]}"
    child = tmp_path / "child_term.py"
    child.write_text(
        textwrap.dedent(
            f"""
            import sys, threading
            from pathlib import Path
            from codemonkeys.interrupts import JobSignals
            from codemonkeys.sandbox import SandboxPool, SandboxSpec
            spec = SandboxSpec(image={sandbox_image!r}, repo_path=Path({str(repo)!r}),
                               labels={{"org.codemonkeys.run": {run_id!r}}})

            def work(pool, stop):
                with pool.lease() as sb:
                    print("READY", flush=True)
                    stop.wait(600)

            with JobSignals() as signals:
                pool = SandboxPool(spec, size=1, stop=signals.stop)
                worker = threading.Thread(target=work, args=(pool, signals.stop))
                worker.start()
                while worker.is_alive():
                    worker.join(0.2)
                pool.close()
            sys.exit(signals.exit_code)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(child)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    filters = {"label": [f"{MANAGED_LABEL}=1", f"org.codemonkeys.run={run_id}"]}
    assert docker_client.containers.list(all=True, filters=filters) == []


def test_monorepo_subdir_with_a_symlink_out_of_it_starts(tmp_path, sandbox_image):
    """`--repo mono/pkg` where pkg/LICENSE -> ../LICENSE: Docker refused the tree ("invalid
    symlink"); the target's content is copied in instead."""
    import os

    mono = tmp_path / "mono"
    make_git_repo(mono, {"LICENSE": "MIT\n", "pkg/calc.py": "X = 1\n"})
    os.symlink("../LICENSE", mono / "pkg" / "LICENSE")
    make_git_repo(mono, {}, message="link the licence")
    with open_sandbox(SandboxSpec(image=sandbox_image, repo_path=mono, subdir="pkg")) as one:
        r = one.run("cat LICENSE && test ! -L LICENSE && cat calc.py")
        assert r.exit_code == 0, r.output
        assert r.output == "MIT\nX = 1\n"
