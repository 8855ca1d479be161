"""Enumeration: which tracked files the relevance scan reads, and git export."""

from __future__ import annotations

from pathlib import Path

import pytest

from codemonkeys.config import ContextConfig
from codemonkeys.context.files import enumerate_files, read_text
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.gittree import export_host_tree
from tests.fixtures.context_repo import FILES, build_context_repo


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("ctxrepo")
    sha = build_context_repo(root / "repo")
    dest = root / "export"
    return dest, export_host_tree(root / "repo", sha, dest)


def test_export_returns_tracked_files_only(exported):
    dest, paths = exported
    assert paths == sorted(FILES)  # every committed file, sorted
    assert "debug.log" not in paths  # git-ignored, never committed
    assert (dest / "assets/logo.png").read_bytes() == FILES["assets/logo.png"]
    assert (dest / "legacy/latin1.py").read_bytes() == FILES["legacy/latin1.py"]


def test_export_subdir_and_bad_commit(tmp_path):
    sha = build_context_repo(tmp_path / "repo")
    paths = export_host_tree(tmp_path / "repo", sha, tmp_path / "out", subdir="src/app")
    # paths are relative to the subdirectory, as the sandbox copies it and patches name files
    assert paths and not any(p.startswith("src/") for p in paths)
    assert all((tmp_path / "repo" / "src/app" / p).is_file() for p in paths)
    with pytest.raises(SandboxError):
        export_host_tree(tmp_path / "repo", "0" * 40, tmp_path / "out2")


def test_enumeration_filters_with_reasons(exported):
    dest, paths = exported
    enum = enumerate_files(dest, paths, ContextConfig(max_file_bytes=50_000))
    kept = [f.path for f in enum.files]
    assert kept == sorted(kept)
    assert kept == [
        ".gitignore",
        "cmd/tool.go",
        "crates/core/src/lib.rs",
        "docs/guide.md",
        "legacy/latin1.py",
        "lib/engine.c",
        "src/app/core.py",
        "src/app/dup_a.py",
        "src/app/dup_b.py",
        "src/app/util.py",
        "web/main.js",
    ]
    ex = enum.excluded
    assert ex["assets/logo.png"] == "binary"
    assert ex["tools/blob"] == "binary"  # no extension: NUL-byte sniffing
    assert ex["vendor/six.py"] == "vendored"
    assert ex["web/node_modules/left-pad/index.js"] == "vendored"
    assert ex["web/static/app.min.js"] == "minified"
    assert ex["package-lock.json"] == "lock_file"
    assert ex["gen/api_pb2.py"] == "generated"
    assert ex["data/minified.js"] == "long_lines"
    assert ex["big/huge.py"] == "too_large"
    assert ex["tests/test_core.py"] == "test"
    assert ex["src/app/tests/test_util.py"] == "test"  # nested test dir
    assert ex["pkg/sub/testing/helpers.py"] == "test"
    assert ex["src/app/__init__.py"] == "empty"
    # identical content, identical hash (the relevance scan asks once)
    by = {f.path: f for f in enum.files}
    assert by["src/app/dup_a.py"].sha256 == by["src/app/dup_b.py"].sha256
    assert all(f.tokens > 0 for f in enum.files)


def test_include_tests_and_exclude_globs(exported):
    dest, paths = exported
    cfg = ContextConfig(
        include_tests=True, exclude_globs=["*.md", "crates/"], max_file_bytes=50_000
    )
    kept = {f.path for f in enumerate_files(dest, paths, cfg).files}
    assert {
        "tests/test_core.py",
        "src/app/tests/test_util.py",
        "pkg/sub/testing/helpers.py",
    } <= kept
    assert "docs/guide.md" not in kept
    assert "crates/core/src/lib.rs" not in kept
    big = enumerate_files(dest, paths, ContextConfig(max_file_bytes=10_000_000))
    assert "big/huge.py" in {f.path for f in big.files}


def test_non_utf8_decodes_with_replacement(exported):
    dest, _ = exported
    text = read_text(dest, "legacy/latin1.py")
    assert "caf\ufffd" in text


def test_missing_path_is_excluded_not_fatal(exported):
    dest, paths = exported
    enum = enumerate_files(dest, [*paths, "no/such/file.py"], ContextConfig())
    assert enum.excluded["no/such/file.py"] == "missing"
