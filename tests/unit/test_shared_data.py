"""Data tests read ../shared/data through one fixture: absent data skips locally and is a
failure under CI=true (CI clones beside a copy of shared/)."""

from __future__ import annotations

import pytest

from tests.conftest import need_shared


def test_present_shared_data_is_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    (tmp_path / "leaderboard").mkdir()
    assert need_shared("leaderboard", root=tmp_path) == tmp_path / "leaderboard"


def test_absent_shared_data_skips_outside_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="rows.jsonl is not present"):
        need_shared("rows.jsonl", root=tmp_path)


def test_absent_shared_data_fails_under_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but shared data .*rows.jsonl"):
        need_shared("rows.jsonl", root=tmp_path)
