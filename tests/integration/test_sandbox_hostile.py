"""Hostile scripts against the Docker sandbox (issue 12): a script cannot forge its own
result, leave anything behind for the next script, fill the host's disk, see commits
later than the base, or have the sandbox's own death recorded as its verdict.

Each test runs a hostile script, then honest ones, and checks that the honest ones get
their true results.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from pathlib import Path

import pytest

from codemonkeys.execution import ExecutionCache, Script
from codemonkeys.sandbox import SandboxError, SandboxPool, SandboxSpec, open_sandbox
from codemonkeys.sandbox.prepared import remove_prepared_images
from tests.conftest import make_git_repo

pytestmark = pytest.mark.docker

FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": "X = 1\n",
    "pkg/sub/deep.py": "Y = 2\n",
    "pkg/sub/other.py": "Z = 3\n",
    "notes.txt": "keep\n",
    "lib/a.txt": "a\n",
    "lib/b.txt": "b\n",
    "lines.txt": "".join(f"{i}\n" for i in range(1, 11)),
    "lines-variant.txt": "".join(f"{i}\n" for i in range(1, 11)).replace("3\n", "3x\n", 1),
}
HONEST = "python -c 'import calc; print(calc.add(2, 2))'"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile-repo")
    make_git_repo(path, FILES)
    return path


@pytest.fixture(scope="module", params=["python-agent", "bash-agent"])
def box(request, repo, sandbox_image):
    """Every guarantee holds with either in-container agent (agent_server.py, or the bash
    one for images without python3)."""
    spec = SandboxSpec(
        image=sandbox_image,
        repo_path=repo,
        python_agent=request.param == "python-agent",
        memory="512m",
        pids_limit=128,
        default_timeout=30,
        disk_limit="32m",
        scratch_size="32m",
        labels={"org.codemonkeys.problem": "test-sandbox-hostile"},
    )
    with open_sandbox(spec) as sb:
        agent = sb._get_agent()
        assert agent is not None and agent.python == spec.python_agent
        yield sb


@pytest.fixture
def sb(box):
    box.reset()
    return box


def assert_honest(sb) -> None:
    r = sb.run(HONEST + "; echo rc-follows; exit 2")
    assert (r.exit_code, r.output) == (2, "0\nrc-follows\n")


# -- 1. forged answers ------------------------------------------------------------------------
FORGE = r"""
for fd in /proc/[0-9]*/fd/1 /proc/[0-9]*/fd/2; do
  printf '@@CMRESP 0 0 0 0\n@@CMRESP 0 0 0 0 0\nforged\n' > "$fd" 2>/dev/null && echo "wrote $fd"
done
exit 3
"""


def test_a_script_cannot_forge_its_result_or_desync_the_channel(sb):
    r = sb.run(FORGE)
    assert r.exit_code == 3, r.output
    assert "wrote /proc/1/" not in r.output
    # the next honest commands on the same container get their own true results
    assert_honest(sb)
    assert sb.run("echo second; exit 5").exit_code == 5
    fix = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    assert sb.apply_patch(fix).ok
    assert sb.run(HONEST).output == "4\n"


def test_scripts_run_unprivileged_and_cannot_reach_the_command_server(sb):
    r = sb.run(
        "id -u; cat /proc/1/environ > /dev/null 2>&1 || echo no-proc; ls /var/lib/codemonkeys 2>&1 | head -c 0 || true; touch /etc/x 2>/dev/null || echo no-etc"
    )
    assert r.output.split() == ["65534", "no-proc", "no-etc"]


# -- 2. reset forgets everything ------------------------------------------------------------
POISON_PY = "import builtins, sys\nsys.stdout.write('POISONED ')\n"
VECTORS = {
    "sitecustomize": (
        "for d in $(python -c 'import site, sys; print(\" \".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path[1:]))'); do "
        f"mkdir -p $d 2>/dev/null; printf %s {POISON_PY!r} > $d/sitecustomize.py 2>/dev/null; "
        f"printf %s {POISON_PY!r} > $d/usercustomize.py 2>/dev/null; done; "
        f"printf %s {POISON_PY!r} > sitecustomize.py; true"
    ),
    "tmp-home-files": (
        "for d in /tmp /var/tmp /dev/shm $HOME /tmp/codemonkeys /run/lock /root; do "
        "echo poison > $d/poison-file 2>/dev/null; done; mkdir -p $HOME/.config && echo p > $HOME/.config/poison-file; "
        "head -c 5000000 /dev/zero > /tmp/partial-poison-file; true"
    ),
    "git-config-and-hooks": (
        "git config core.fsmonitor 'touch /tmp/poison-fsmonitor; false' 2>/dev/null; "
        "git config alias.reset '!touch /tmp/poison-alias' 2>/dev/null; "
        "printf '#!/bin/sh\\ntouch /tmp/poison-hook\\n' > .git/hooks/post-checkout 2>/dev/null; "
        "chmod +x .git/hooks/post-checkout 2>/dev/null; "
        "printf '[core]\\n\\tfsmonitor = touch /tmp/poison-fsmonitor\\n' >> $HOME/.gitconfig; true"
    ),
    "environment": (
        "echo 'export POISON=1' | tee -a $HOME/.bashrc $HOME/.profile /etc/bash.bashrc /etc/environment "
        "/etc/profile >/dev/null 2>&1; true"
    ),
    # reset cleans only what the runs listed as changed: names that are options to find,
    # pathspec magic to git, a newline; new nested directories; a moved, a linked and a
    # removed tracked file (git must restore them, owned by the script user again)
    "tree-tricks": (
        "mkdir -p poison-d/a/b && echo x > poison-d/a/b/poison-f; echo y > ./-poison-dash; "
        "echo z > ':(exclude)poison-magic'; echo w > \"$(printf 'poison\\nnl')\"; "
        "mv calc.py poison-moved.py; ln pkg/__init__.py pkg/poison-link; ln -s /etc pkg/poison-sym; "
        "rm -f pkg/__init__.py; true"
    ),
    # reset restores only the tracked files the list names (and those missing from the
    # directories it names): edits in place and through a hard link, a mode change, a
    # directory emptied, files replaced by a directory and by a symlink
    "tracked-rewrites": (
        "echo poison >> pkg/mod.py; chmod 755 notes.txt; ln notes.txt poison-hl; "
        "echo poison >> poison-hl; rm pkg/sub/deep.py pkg/sub/other.py; "
        "rm lib/a.txt && mkdir lib/a.txt && echo poison > lib/a.txt/poison-x; "
        "rm lib/b.txt && ln -s /etc/passwd lib/b.txt; true"
    ),
    # writes no directory event shows (what the Python agent's inotify must still see):
    # through a hard link in a directory the run made, through one removed again, and
    # through a shared memory map of a tracked file
    "hidden-writes": (
        "mkdir poison-dir && ln pkg/mod.py poison-dir/l && echo poison >> poison-dir/l && rm -r poison-dir; "
        "ln notes.txt .poison-tmp && echo poison >> .poison-tmp && rm .poison-tmp; "
        "python -c \"import mmap; f = open('calc.py', 'r+b'); m = mmap.mmap(f.fileno(), 0); "
        "f.close(); m[0:3] = b'zzz'; m.flush()\"; true"
    ),
    # more changed entries than reset's list holds: the whole tree is reset
    "many-entries": "touch poison-{1..2100}; echo poison >> pkg/mod.py; true",
    "processes": (
        "(setsid bash -c 'while :; do echo x > /tmp/poison-daemon 2>/dev/null; "
        "echo y > poison-daemon.py 2>/dev/null; sleep 0.05; done' &) ; "
        "(nohup sleep 300 > /dev/null 2>&1 &); true"
    ),
    # every pid of the container taken by processes that outlive the run: the agent
    # cannot fork to kill them (nor to run anything) until they are gone
    "fork-bomb": (
        '(setsid python3 -c "import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n'
        '            time.sleep(100)\n    except OSError:\n        time.sleep(0.001)" poison-bomb '
        "> /dev/null 2>&1 &); sleep 2; true"
    ),
}
CHECK = (
    "find / /tmp /var/tmp /dev/shm -xdev -path /proc -prune -o -name 'poison*' -print 2>/dev/null; "
    "ps -eo args | grep -e '[s]leep 300' -e '[p]oison'; "
    'echo "env:${POISON:-clean}"; git config --get core.fsmonitor; git config --get alias.reset; '
    "ls .git/hooks | grep -v sample; git status --porcelain --ignored; ls -A /dev/mqueue"
)
CLEAN = "env:clean\n"


@pytest.mark.parametrize("vector", sorted(VECTORS))
def test_reset_forgets_what_a_hostile_script_left(sb, vector, request):
    if vector == "fork-bomb" and "bash-agent" in request.node.callspec.id:
        reason = "open: the bash agent needs a fork to kill the bomb, and may die (a lost sandbox)"
        request.applymarker(pytest.mark.xfail(strict=False, reason=reason))
    sb.run(VECTORS[vector])
    sb.reset()
    # Our own git ran during reset: no hook, alias or fsmonitor fired; nothing survives.
    assert sb.run(CHECK).output == CLEAN
    # and every tracked file is the next script's to edit again
    writable = 'git ls-files -z | while read -rd "" f; do [ -w "$f" ] || echo "read-only: $f"; done'
    assert sb.run(writable).output == ""
    assert_honest(sb)


MQ_OPEN = (
    "python -c \"import ctypes; rt = ctypes.CDLL('librt.so.1'); "
    "print('queue', rt.mq_open(b'/poison-mq', 0o102, 0o600, None) >= 0)\"; ls -A /dev/mqueue"
)


def test_reset_removes_posix_message_queues(sb):
    # A message queue lives in the container's IPC namespace, outside every file tree
    # reset cleans; the next script could read what this one left in it.
    assert sb.run(MQ_OPEN).output == "queue True\npoison-mq\n"
    sb.reset()
    assert sb.run("ls -A /dev/mqueue").output == ""
    assert sb.run(CHECK).output == CLEAN


# -- 3. disk --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("write", "message"),
    [
        # one big file: RLIMIT_FSIZE (Python sees EFBIG) unless the watchdog is first
        (
            "python -c \"open('big.bin', 'wb').write(b'x' * 200_000_000)\"",
            "File too large|exceeded the sandbox disk limit",
        ),
        # many files under the per-file limit: the watchdog / end-of-run check
        (
            "for i in $(seq 50); do head -c 4000000 /dev/zero > f$i.bin; done",
            "exceeded the sandbox disk limit",
        ),
        # files under the limit each, dated into the past as soon as written (a script
        # owns its files and may set their mtime; it cannot set their ctime)
        (
            "for i in 1 2 3; do head -c 20000000 /dev/zero > old$i.bin; touch -d 2000-01-01 old$i.bin; done",
            "exceeded the sandbox disk limit",
        ),
        # the scratch tmpfs
        ("head -c 100000000 /dev/zero > /tmp/big.bin", "No space left on device"),
    ],
    ids=["one-file", "many-files", "back-dated", "scratch"],
)
def test_writing_past_the_disk_limit_is_the_scripts_failure(sb, write, message):
    r = sb.run(write + "; echo exit-was-$?")
    assert any(m in r.output for m in message.split("|")), r.output
    assert r.exit_code != 0 or "exit-was-0" not in r.output, r.output
    sb.reset()
    usage = sb.run("du -sk --exclude=.git . /tmp | awk '{s += $1} END {print s}'").output
    assert int(usage) < 4096  # kilobytes: nothing of it left
    assert_honest(sb)


def test_disk_written_through_a_link_to_a_patched_file_counts(sb):
    # A patch writes new inodes (git apply replaces the files it changes). Written through
    # a hard link in a directory the run made (and removed again), such a file changes no
    # watched directory; with 25 MB more in a new file, the run holds 50 MB of a 32 MB limit.
    fix = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    assert sb.apply_patch(fix).ok
    r = sb.run(
        "mkdir poison-dir && ln calc.py poison-dir/l && head -c 25000000 /dev/zero >> poison-dir/l "
        "&& rm -r poison-dir; head -c 25000000 /dev/zero > big.bin; echo exit-was-$?"
    )
    assert "exceeded the sandbox disk limit" in r.output and r.exit_code != 0, r.output
    sb.reset()
    assert sb.run(CHECK).output == CLEAN
    assert_honest(sb)


BLOAT = (
    'python3 -c "import os\nfor i in range(130000):\n'
    "    os.close(os.open('pkg/sub/poison' + 'x' * 200 + str(i), os.O_CREAT | os.O_WRONLY))\"; "
    "echo exit-was-$?"
)


def test_empty_files_count_against_the_disk_limit(sb, request):
    # Empty files hold no block but an inode each: 200,000 of them in one run (the host's
    # filesystem has a few million) must meet the disk limit like bytes do.
    if "bash-agent" in request.node.callspec.id:
        pytest.xfail("the bash agent counts only blocks")
    made = (
        'mkdir poison-e && python3 -c "import os\nfor i in range(200000): '
        "os.close(os.open('poison-e/%d' % i, os.O_CREAT | os.O_WRONLY))\"; echo exit-was-$?"
    )
    r = sb.run(made, timeout=120)
    assert "exceeded the sandbox disk limit" in r.output and r.exit_code != 0, r.output
    sb.reset()
    assert sb.run(CHECK).output == CLEAN


def test_a_base_directory_grown_by_its_entries_counts_against_the_disk_limit(sb, request):
    # 130,000 empty files with long names in a directory of the base (root's): the files
    # hold no block, their directory grows past 40 MB of the 32 MB limit.
    if "bash-agent" in request.node.callspec.id:
        pytest.xfail("the bash agent's walk counts only the sandbox user's entries")
    r = sb.run(BLOAT, timeout=120)
    assert "exceeded the sandbox disk limit" in r.output and r.exit_code != 0, r.output
    sb.reset()
    assert sb.run(CHECK).output == CLEAN
    # the next honest script that writes in that directory is not charged for its size
    r = sb.run("echo x > pkg/sub/new.txt && " + HONEST)
    assert (r.exit_code, r.output) == (0, "0\n"), r.output


UNLINKED = (
    'python3 -c "import os, time\nfds = []\nfor i in range(3):\n'
    "    fd = os.open('poison-u%d' % i, os.O_CREAT | os.O_WRONLY); os.write(fd, b'x' * 20_000_000)\n"
    "    os.unlink('poison-u%d' % i); fds.append(fd)\n"
    "try:\n    fd = os.open('.', os.O_TMPFILE | os.O_WRONLY, 0o600); os.write(fd, b'x' * 20_000_000)\n"
    "except OSError:\n    pass\n"
    'time.sleep(3)"; echo exit-was-$?'
)


@pytest.mark.xfail(
    strict=True,
    reason="open issue: neither agent sees a file no name leads to (root without "
    "CAP_SYS_PTRACE cannot read another uid's /proc/<pid>/fd; a non-dumpable process hides "
    "them from its own uid too); needs a size-limited filesystem for the work tree",
)
def test_files_removed_but_held_open_count_against_the_disk_limit(sb):
    # Removed while open (and one never linked, O_TMPFILE), 80 MB of files stay on the
    # work tree's disk until the run ends; no walk of the tree sees them.
    r = sb.run(UNLINKED)
    assert "exceeded the sandbox disk limit" in r.output and r.exit_code != 0, r.output
    sb.reset()
    assert sb.run(CHECK).output == CLEAN
    assert_honest(sb)


WATCHES = "for f in /proc/[0-9]*/fdinfo/*; do grep -c '^inotify wd' $f; done 2>/dev/null | sort -n | tail -1"


def _agent_watches(sb) -> int:
    return int(sb.container.exec_run(["bash", "-c", WATCHES], user="0").output or 0)


def test_a_run_that_removes_what_an_earlier_run_made_is_still_the_scripts_run(sb):
    # A directory of the script user's from an earlier run (no reset between) is walked
    # for the disk check; the later run removing it must not cost the sandbox (the Python
    # agent once died walking a directory that was gone: a lost sandbox).
    assert sb.run("mkdir -p poison-made/d && echo x > poison-made/d/f && echo ok").output == "ok\n"
    assert sb.run("rm -r poison-made && echo gone").output == "gone\n"
    sb.reset()
    assert sb.run(CHECK).output == CLEAN


def test_what_a_script_made_never_costs_the_agent_inotify_watches(sb):
    # Watches count against the host's per-user limit for root (fs.inotify.max_user_watches,
    # shared by every container): a directory of 5,000 files a run left, then another run
    # without a reset between, must not have the Python agent watch each of them (the bash
    # agent watches nothing); and what the later run writes there counts, with either.
    before = _agent_watches(sb)
    made = "mkdir poison-d && python3 -c \"import os\nfor i in range(5000): open('poison-d/%d' % i, 'w').close()\""
    assert sb.run(made + " && echo made").output == "made\n"
    assert sb.run("echo again").output == "again\n"
    assert _agent_watches(sb) < before + 1000
    # what a later run writes in that directory still counts against its disk limit
    r = sb.run(
        "for i in 1 2; do head -c 20000000 /dev/zero > poison-d/big$i; done; echo exit-was-$?"
    )
    assert "exceeded the sandbox disk limit" in r.output and r.exit_code != 0, r.output
    sb.reset()
    assert sb.run(CHECK).output == CLEAN


# -- 4. infrastructure vs the script -------------------------------------------------------------
SLOW_ON_FIRST = Script(
    content=(
        "import os, time\n"
        "open('/tmp/codemonkeys-started', 'w').close()\n"
        "if os.path.exists('/tmp/first-container'):\n"
        "    time.sleep(60)\n"
        "raise SystemExit(2)\n"
    )
)


def _kill_when_started(container) -> None:
    # Blocks (inside the container) until the script has started, then kills the container.
    container.exec_run(
        ["bash", "-c", "until [ -e /tmp/codemonkeys-started ]; do sleep 0.02; done"], user="0"
    )
    container.kill()


def test_a_killed_sandbox_is_retried_on_a_fresh_one_and_never_cached(repo, sandbox_image):
    run_id = f"hostile-{uuid.uuid4().hex[:8]}"
    spec = SandboxSpec(image=sandbox_image, repo_path=repo, labels={"org.codemonkeys.run": run_id})
    with SandboxPool(spec, size=1) as pool:
        killed: list[str] = []

        @contextlib.contextmanager
        def lease():
            with pool.lease() as box:
                if not killed:
                    killed.append(box.container.id)
                    box.run("touch /tmp/first-container")
                    threading.Thread(target=_kill_when_started, args=(box.container,)).start()
                yield box

        cache = ExecutionCache(lease, timeout=120)
        result = cache.run(None, SLOW_ON_FIRST)
        assert result.verdict == "unfixed" and result.exit_code == 2  # the script's true result
        assert pool.stats["discarded"] == 1 and pool.stats["created"] == 2
        assert cache.runs == 1


def test_a_sandbox_failure_is_raised_not_cached(repo, sandbox_image):
    spec = SandboxSpec(image=sandbox_image, repo_path=repo)
    with SandboxPool(spec, size=1) as pool:
        first = True

        @contextlib.contextmanager
        def lease():
            nonlocal first
            with pool.lease() as box:
                if first:
                    first = False
                    box.run("touch /tmp/first-container")
                    threading.Thread(target=_kill_when_started, args=(box.container,)).start()
                yield box

        cache = ExecutionCache(lease, timeout=120, infra_attempts=1)
        with pytest.raises(SandboxError):
            cache.run(None, SLOW_ON_FIRST)
        assert cache.run(None, SLOW_ON_FIRST).exit_code == 2  # asked again: really run


def test_a_script_that_crashes_itself_is_its_own_result(sb):
    r = sb.run("kill -9 $$")
    assert r.exit_code == 137 and not r.timed_out
    assert_honest(sb)


# -- 6. no answers from the future ------------------------------------------------------------
MARKER = "FUTURE-MARKER-4f1c9e"
FUTURE_REPO = f"""
set -e
cd /repo && rm -rf /repo/* /repo/.git
git init -q -b main . && git config user.email t@t && git config user.name t
echo 'def add(a, b):' > calc.py && echo '    return a - b' >> calc.py
git add -A && git commit -qm base && git rev-parse HEAD > /base-sha
echo '    # {MARKER}' >> calc.py && git commit -qam 'the fix {MARKER}' && git tag v-future
git branch future && echo stash-{MARKER} >> calc.py && git stash -q
git update-ref refs/remotes/origin/main HEAD && git notes add -m note-{MARKER} HEAD
git reset -q --hard $(cat /base-sha) && git repack -adq
echo '*.log' > .git/info/exclude && echo artefact > build.log
"""
LEAK_CHECKS = (
    "git log --all -p --reflog 2>&1; git reflog 2>&1; git tag; git branch -a; git stash list; "
    "git notes list 2>&1; git fsck --lost-found --unreachable --dangling 2>&1; "
    "cat .git/lost-found/*/* 2>/dev/null; "
    "git cat-file --batch-all-objects --batch 2>&1; grep -ra FUTURE .git 2>&1; "
    "for p in .git/objects/pack/*.pack; do git verify-pack -v ${p%.pack}.idx 2>/dev/null; done"
)


def test_nothing_later_than_the_base_commit_is_reachable(sandbox_image, docker_client):
    tag = f"codemonkeys-test-future:{uuid.uuid4().hex[:8]}"
    c = docker_client.containers.run(
        sandbox_image, ["bash", "-c", FUTURE_REPO], detach=True, network_mode="none"
    )
    try:
        assert c.wait(timeout=120)["StatusCode"] == 0, c.logs().decode()
        c.commit(repository=tag.split(":")[0], tag=tag.split(":")[1])
    finally:
        c.remove(force=True)
    try:
        probe = docker_client.containers.run(tag, ["cat", "/base-sha"], remove=True)
        base_sha = probe.decode().strip()
        with open_sandbox(SandboxSpec(image=tag, workdir="/repo")) as sb:
            # before any model-written code runs, the marker is out of reach
            out = sb.run(LEAK_CHECKS, timeout=60).output
            assert MARKER not in out
            assert sb.run("git rev-parse HEAD").output.strip() == base_sha  # genuine base
            assert sb.run("git log --format=%s").output == "base\n"
            assert sb.diff() == ""
            sb.run("echo x >> calc.py")
            sb.reset()
            assert sb.run("git status --porcelain --ignored").output == "!! build.log\n"
    finally:
        remove_prepared_images(docker_client, source=tag)
        docker_client.images.remove(tag, force=True)


def test_scripts_can_edit_patched_files_and_write_in_new_directories(sb):
    patch = (
        "diff --git a/pkg/new/mod.py b/pkg/new/mod.py\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/pkg/new/mod.py\n@@ -0,0 +1 @@\n+X = 1\n"
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    )
    assert sb.apply_patch(patch).ok
    r = sb.run("echo '# edited' >> calc.py && echo y > pkg/new/out.txt && echo ok")
    assert r.output == "ok\n", r.output
    sb.reset()
    assert sb.run("git status --porcelain --ignored; ls pkg").output == "__init__.py\nmod.py\nsub\n"


def test_a_patch_through_a_symlink_the_script_left_is_reset(sb):
    # The script points a new name in the tree at a directory of the base; a patch of a
    # file under that name (git apply refuses it, patch(1) follows the link) changes the
    # base's file, which no list names by its own path: reset must still restore it.
    assert sb.run("ln -s ../lib pkg/poison-s").exit_code == 0
    applied = sb.apply_patch(
        "--- a/pkg/poison-s/a.txt\n+++ b/pkg/poison-s/a.txt\n@@ -1 +1 @@\n-a\n+poison\n"
    )
    assert not applied.ok or applied.method != "git-apply", applied
    sb.reset()
    assert sb.run(CHECK).output == CLEAN
    assert sb.run("cat lib/a.txt").output == "a\n"


def test_a_patch_cannot_write_git_config_through_a_symlink(sb):
    # .git is refused by name; a symlink the script left to it must not open the way:
    # patch(1) as root would add an alias (or a filter, a hook path) that outlives reset.
    config = sb.run("cat .git/config").output.splitlines()
    assert sb.run("ln -s ../.git pkg/poison-g").exit_code == 0
    context = "".join(f" {line}\n" for line in config)
    patch = (
        f"--- a/pkg/poison-g/config\n+++ b/pkg/poison-g/config\n"
        f"@@ -1,{len(config)} +1,{len(config) + 2} @@\n{context}"
        "+[alias]\n+\treset = !touch /tmp/poison-alias\n"
    )
    applied = sb.apply_patch(patch)
    assert not applied.ok and "resolves into .git" in applied.error, applied
    sb.reset()
    assert sb.run(CHECK).output == CLEAN


def _line_patch(old: str, new: str, number: int, replacement: str) -> str:
    """A patch of lines.txt from ``old`` to ``new`` (line ``number`` replaced), with the
    blob ids git's 3-way fallback needs."""
    import difflib
    import hashlib

    def blob(text: str) -> str:
        data = text.encode()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    lines = old.splitlines(keepends=True)
    changed = [*lines[: number - 1], replacement, *lines[number:]]
    body = "".join(difflib.unified_diff(lines, changed, "a/lines.txt", "b/lines.txt", n=3))
    return f"diff --git a/lines.txt b/lines.txt\nindex {blob(old)}..{blob(new)} 100644\n" + body


def test_reset_after_a_three_way_patch_restores_the_index_too(sb):
    # A patch of lines.txt made against another version of it (lines-variant.txt's blob):
    # its context does not match, so only git's 3-way fallback applies it, and that writes
    # the index, which reset restores from.
    base, variant = FILES["lines.txt"], FILES["lines-variant.txt"]
    applied = sb.apply_patch(_line_patch(variant, variant.replace("6\n", "6b\n", 1), 6, "6b\n"))
    assert applied.ok and applied.method == "git-apply-3way", applied
    assert sb.run("cat lines.txt").output == base.replace("6\n", "6b\n", 1)
    sb.reset()
    assert sb.diff() == ""
    assert sb.run("git status --porcelain; cat lines.txt").output == base
