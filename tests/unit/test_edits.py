"""Search/replace edits: tolerant parsing, strict application, diffs that git accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codemonkeys.generation.edits import (
    EditError,
    edit_to_patch,
    normalize_repo_path,
    parse_edit_blocks,
)
from tests.conftest import make_git_repo

FILES = {
    "pkg/calc.py": "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n",
    "pkg/tabs.py": "def f(x):\n\tif x:\n\t\treturn 1\n\treturn 0\n",
    "pkg/nonl.py": "A = 1\nB = 2",
    "README": "hello\n",
}


def block(path: str, search: str, replace: str, divider: str = "=======") -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}\n{divider}\n{replace}\n>>>>>>> REPLACE\n"


def reader(files: dict[str, str]):
    return lambda p: files.get(p)


def git_apply_check(
    tmp_path: Path, files: dict[str, str], patch: str, *, apply: bool = True
) -> Path:
    repo = tmp_path / "repo"
    make_git_repo(repo, files)
    (tmp_path / "p.diff").write_text(patch)
    args = ["git", "apply", str(tmp_path / "p.diff")]
    check = subprocess.run(
        ["git", "apply", "--check", str(tmp_path / "p.diff")],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr + "\n" + patch
    if apply:
        subprocess.run(args, cwd=repo, check=True)
    return repo


@pytest.mark.parametrize("divider", ["===", "=====", "======", "=======", "=========="])
def test_any_divider_of_three_or_more(divider, tmp_path):
    text = block(
        "pkg/calc.py",
        "def add(a, b):\n    return a - b",
        "def add(a, b):\n    return a + b",
        divider,
    )
    res = edit_to_patch(text, reader(FILES))
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert (repo / "pkg/calc.py").read_text().startswith("def add(a, b):\n    return a + b\n")
    assert res.files == ["pkg/calc.py"]


def test_fences_and_decorated_path(tmp_path):
    text = "Fix:\n```python\n### `pkg/calc.py`\n<<<<<<< SEARCH\ndef add(a, b):\n    return a - b\n=======\ndef add(a, b):\n    return a + b\n>>>>>>> REPLACE\n```\n"
    res = edit_to_patch(text, reader(FILES))
    git_apply_check(tmp_path, FILES, res.patch)


def test_follow_up_block_reuses_path():
    text = block(
        "pkg/calc.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b"
    )
    text += "<<<<<<< SEARCH\ndef sub(a, b):\n=======\ndef sub(a, b):  # minus\n>>>>>>> REPLACE\n"
    blocks = parse_edit_blocks(text)
    assert [b.path for b in blocks] == ["pkg/calc.py", "pkg/calc.py"]


def test_ambiguous_match_reports_count_and_lines():
    text = block("pkg/calc.py", "    return a - b", "    return a + b")
    with pytest.raises(EditError) as e:
        edit_to_patch(text, reader(FILES))
    msg = str(e.value)
    assert "matches 2 places" in msg and "lines 2, 6" in msg


def test_whitespace_insensitive_unique_match_tabs_vs_spaces(tmp_path):
    # the model wrote spaces, the file uses tabs
    text = block(
        "pkg/tabs.py",
        "def f(x):\n    if x:\n        return 1\n    return 0",
        "def f(x):\n    if x:\n        return 2\n    return 0",
    )
    res = edit_to_patch(text, reader(FILES))
    assert res.notes and "ignoring whitespace" in res.notes[0]
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert (repo / "pkg/tabs.py").read_text() == "def f(x):\n\tif x:\n\t\treturn 2\n\treturn 0\n"


def test_fuzzy_candidates_reported_and_capped():
    content = "".join(f"def func_{i}(a, b):\n    return a + b + {i}\n\n" for i in range(10))
    text = block("m.py", "def func_3(a, c):\n    return a + c + 3", "x")
    with pytest.raises(EditError) as e:
        edit_to_patch(text, reader({"m.py": content}))
    msg = str(e.value)
    assert "not found" in msg and "def func_3(a, b):" in msg
    assert msg.count("% similar") <= 3


def test_not_found_without_similar_text():
    with pytest.raises(EditError, match="Nothing similar"):
        edit_to_patch(block("README", "zzzzzzzzzzzzzzz qqqqqqq", "x"), reader(FILES))


def test_overlapping_blocks():
    text = block("pkg/calc.py", "def add(a, b):\n    return a - b", "x") + block(
        "pkg/calc.py", "    return a - b\n\n\ndef sub(a, b):", "y"
    )
    with pytest.raises(EditError, match=r"Blocks 1 and 2 \(pkg/calc.py\) overlap"):
        edit_to_patch(text, reader(FILES))


@pytest.mark.parametrize(
    "path", ["../etc/passwd", "/etc/passwd", "pkg/../../x.py", ".git/config", "~/x"]
)
def test_paths_outside_repo(path):
    with pytest.raises(EditError) as e:
        edit_to_patch(block(path, "", "x"), reader(FILES))
    assert path in str(e.value)
    assert any(w in str(e.value) for w in ("outside the repository", "absolute", ".git"))


def test_normalize_path():
    assert normalize_repo_path("./pkg//calc.py") == "pkg/calc.py"
    assert normalize_repo_path("pkg/sub/../calc.py") == "pkg/calc.py"


def test_missing_file_with_search_text():
    with pytest.raises(EditError, match="does not exist"):
        edit_to_patch(block("pkg/nope.py", "a = 1", "a = 2"), reader(FILES))


def test_new_file(tmp_path):
    res = edit_to_patch(block("pkg/new_mod.py", "", "X = 1\nY = 2"), reader(FILES))
    assert "new file mode" in res.patch
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert (repo / "pkg/new_mod.py").read_text() == "X = 1\nY = 2\n"


def test_line_deletion(tmp_path):
    text = block("pkg/calc.py", "\n\ndef sub(a, b):\n    return a - b", "")
    res = edit_to_patch(text, reader(FILES))
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert (repo / "pkg/calc.py").read_text() == "def add(a, b):\n    return a - b\n"


def test_file_without_trailing_newline(tmp_path):
    res = edit_to_patch(block("pkg/nonl.py", "B = 2", "B = 3"), reader(FILES))
    assert "\\ No newline at end of file" in res.patch
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert (repo / "pkg/nonl.py").read_text() == "A = 1\nB = 3"


def test_editing_middle_of_file_without_trailing_newline(tmp_path):
    res = edit_to_patch(block("pkg/nonl.py", "A = 1", "A = 10"), reader(FILES))
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert (repo / "pkg/nonl.py").read_text() == "A = 10\nB = 2"


def test_crlf_file(tmp_path):
    files = {"w.txt": "one\r\ntwo\r\nthree\r\n"}
    res = edit_to_patch(block("w.txt", "two", "TWO"), reader(files))
    assert res.patch.count("\r\n") >= 2
    # git apply on a CRLF file: compare bytes
    repo = tmp_path / "repo"
    make_git_repo(repo, {"w.txt": files["w.txt"].encode()})
    (tmp_path / "p.diff").write_bytes(res.patch.encode())
    subprocess.run(["git", "apply", str(tmp_path / "p.diff")], cwd=repo, check=True)
    assert (repo / "w.txt").read_bytes() == b"one\r\nTWO\r\nthree\r\n"


def test_multiple_files_and_blocks(tmp_path):
    text = (
        block("pkg/calc.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b")
        + block("pkg/calc.py", "def sub(a, b):", "def sub(a, b):  # noqa")
        + block("README", "hello", "hello world")
    )
    res = edit_to_patch(text, reader(FILES))
    assert res.files == ["pkg/calc.py", "README"]
    repo = git_apply_check(tmp_path, FILES, res.patch)
    assert "# noqa" in (repo / "pkg/calc.py").read_text()


def test_all_errors_reported_together():
    text = block("../x", "", "a") + block("pkg/calc.py", "no such line at all anywhere", "b")
    with pytest.raises(EditError) as e:
        edit_to_patch(text, reader(FILES))
    assert len(e.value.errors) == 2


def test_structural_errors():
    with pytest.raises(EditError, match="No search/replace block"):
        parse_edit_blocks("just prose")
    with pytest.raises(EditError, match="no matching"):
        parse_edit_blocks("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n")
    with pytest.raises(EditError, match="no '=======' divider"):
        parse_edit_blocks("a.py\n<<<<<<< SEARCH\nx\ny\n>>>>>>> REPLACE\n")
    with pytest.raises(EditError, match="no file path"):
        parse_edit_blocks("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n")


def test_no_op_edit_rejected():
    with pytest.raises(EditError, match="changes nothing"):
        edit_to_patch(block("README", "hello", "hello"), reader(FILES))


def test_divider_line_inside_content_prefers_canonical():
    files = {"doc.rst": "Title\n=====\n\ntext\n"}
    text = "doc.rst\n<<<<<<< SEARCH\nTitle\n=====\n=======\nNew title\n=========\n>>>>>>> REPLACE\n"
    res = edit_to_patch(text, reader(files))
    assert "+New title\n+=========\n" in res.patch
