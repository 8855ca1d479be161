"""The Python agent's parts (``sandbox/agent_server``), run on the host against a real git
repository in a temporary directory: inotify tracking, the in-process reset and its list.
The same code runs in every sandbox container; the Docker tests run it there
(``test_sandbox_hostile.py``, ``test_sandbox_docker.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from codemonkeys.sandbox.agent import python_agent_argv
from codemonkeys.sandbox.agent_server.listing import relative
from codemonkeys.sandbox.agent_server.processes import user_pids
from codemonkeys.sandbox.agent_server.restore import Restorer
from codemonkeys.sandbox.agent_server.server import Capped
from codemonkeys.sandbox.agent_server.settings import Settings
from codemonkeys.sandbox.agent_server.tracking import Tracker
from tests.conftest import make_git_repo

FILES = {"a.py": "a = 1\n", "pkg/b.py": "b = 2\n", "pkg/c.py": "c = 3\n", "notes.txt": "n\n"}


@pytest.fixture
def setup(tmp_path) -> tuple[Path, Settings]:
    repo = tmp_path / "repo"
    make_git_repo(repo, FILES)
    given = json.loads(python_agent_argv(os.getuid(), str(repo), 10**9)[-1])
    private = tmp_path / "private"
    private.mkdir()
    given.update(
        agent_dir=str(private),
        touched_list=str(private / "touched"),
        touched_state=str(private / "touched.state"),
    )
    return repo, Settings(json.dumps(given))


def changes(tracker: Tracker) -> tuple[set[tuple[str, str]], bool]:
    tracker.sync()
    entries, sound = tracker.taken()
    return set(entries), sound


def test_a_write_through_a_hard_link_is_seen_under_the_files_own_path(setup):
    repo, s = setup
    tracker = Tracker(s)
    tracker.begin()
    (repo / "new").mkdir()  # a directory the run makes is not watched inside...
    os.link(repo / "a.py", repo / "new" / "link")
    with open(repo / "new" / "link", "a") as f:
        f.write("poison\n")
    shutil.rmtree(repo / "new")  # ...and gone again: only a.py's own watch saw the write
    entries, sound = changes(tracker)
    assert sound
    assert ("o", f"{repo}/a.py") in entries
    assert ("d", str(repo)) in entries  # `new` came and went


def test_a_removed_file_lists_its_directory_and_nothing_before_the_run_counts(setup):
    repo, s = setup
    tracker = Tracker(s)
    (repo / "notes.txt").write_text("before the run\n")
    tracker.begin()
    (repo / "pkg" / "c.py").unlink()
    entries, sound = changes(tracker)
    assert sound and ("d", f"{repo}/pkg") in entries
    assert entries <= {("d", f"{repo}/pkg"), ("o", f"{repo}/pkg/c.py")}  # (its link count)


def test_more_changes_than_the_list_holds_are_not_trusted(setup):
    repo, s = setup
    s.max_touched = 5
    tracker = Tracker(s)
    tracker.begin()
    for i in range(10):
        (repo / f"f{i}").write_text("x")
    entries, sound = changes(tracker)
    assert not sound and len(entries) <= 6


def git_status(repo: Path) -> str:
    args = ["git", "-C", str(repo), "status", "--porcelain", "--ignored"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def listed(s: Settings, *entries: str) -> None:
    Path(s.touched_list).write_bytes(b"".join(e.encode() + b"\0" for e in entries))


def test_reset_in_process_restores_the_base_and_keeps_the_kept(setup):
    repo, s = setup
    (repo / "a.py").write_text("changed\n")
    (repo / "pkg" / "b.py").unlink()
    (repo / "pkg" / "new").mkdir()
    (repo / "pkg" / "new" / "deep.txt").write_text("x")
    (repo / "notes.txt").unlink()
    (repo / "notes.txt").symlink_to("/etc/passwd")
    (repo / "kept.egg-info").write_text("the image's own\n")
    (repo / "made.txt").write_text("a run made me\n")
    listed(s, f"o{repo}/a.py", f"d{repo}/pkg", f"o{repo}/pkg/new", f"c{repo}/notes.txt")
    listed(s, *Path(s.touched_list).read_text().split("\0")[:-1], f"o{repo}/made.txt")
    listed(s, *Path(s.touched_list).read_text().split("\0")[:-1], f"o{repo}/kept.egg-info")
    assert Restorer(s).reset(keep=["kept.egg-info"])
    assert git_status(repo) == "?? kept.egg-info\n"
    assert (repo / "a.py").read_text() == "a = 1\n" and not (repo / "notes.txt").is_symlink()
    assert Path(s.touched_list).read_bytes() == b""


def test_a_base_directory_gone_is_left_to_the_whole_reset(setup):
    repo, s = setup
    shutil.rmtree(repo / "pkg")
    listed(s, f"d{repo}")
    assert not Restorer(s).reset(keep=[])
    assert not (repo / "pkg").exists()  # untouched: the bash script resets it all


def test_listed_paths_outside_the_tree_make_the_list_unusable(setup):
    repo, s = setup
    assert relative(str(repo), f"{repo}/pkg/../a.py") == "a.py"
    assert relative(str(repo), "pkg/b.py") == "pkg/b.py"
    for outside in ("/etc/passwd", f"{repo}-other/x", "../x", f"{repo}/../x"):
        assert relative(str(repo), outside) is None
    listed(s, "o/etc/passwd")
    assert not Restorer(s).reset(keep=[])


def test_capped_output_keeps_the_head_the_tail_and_the_size():
    out = Capped(4)
    for chunk in (b"HEAD", b"middle" * 100, b"xTAIL"):
        out.feed(chunk)
    assert out.parts() == (b"HEAD", b"TAIL") and out.total == 4 + 600 + 5


ZOMBIE_LEADER = (
    "import ctypes, sys, threading, time\n"
    "threading.Thread(target=time.sleep, args=(30,)).start()\n"
    "print('ready', flush=True)\n"
    "ctypes.CDLL(None).pthread_exit(None)\n"
)


def test_a_process_whose_leader_exited_while_a_thread_runs_is_alive():
    # Its /proc/<pid>/stat says Z (the leader's state), yet a thread of it still runs and
    # may write: the run's list must not be closed while it lives.
    p = subprocess.Popen(["python3", "-c", ZOMBIE_LEADER], stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        for _ in range(200):  # the leader's exit is asynchronous to its output
            if (Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z":
                break
            time.sleep(0.01)
        assert p.pid in user_pids(os.getuid(), True)
    finally:
        p.kill()
        p.wait()
