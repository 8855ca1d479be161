"""`solve --estimate` prints the relevance scan's tokens and price per model, with and without
batch and prefilter, and names the default small relevance model. No model is called."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, ROOT


def _estimate(tmp_path: Path, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    # a key so the provider can be built; nothing is sent (the estimate stops first)
    env.update(
        PYTHONPATH=str(ROOT),
        COLUMNS="200",
        ANTHROPIC_API_KEY="sk-ant-never-used",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
    )
    proc = subprocess.run(
        [
            CLI, "solve", "--repo", "examples/inventory",
            "--issue-file", "examples/inventory/ISSUE.md",
            "--model", "anthropic/claude-sonnet-4-5", "--run-dir", str(tmp_path / "run"),
            "--estimate", *extra,
        ],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "run").exists()
    return proc.stdout + proc.stderr


def _line(out: str, start: str) -> re.Match:
    m = re.search(
        rf"^  {re.escape(start)}: (\d+) files, ([\d,]+) prompt tokens, \$([\d.]+), "
        rf"\$([\d.]+) batch(.*)$",
        out,
        re.M,
    )
    assert m, out
    return m


def test_solve_estimate_prints_the_scan_per_model_with_and_without_batch_and_prefilter(tmp_path):
    out = _estimate(tmp_path, "--set", "context.prefilter_min_files=2")
    assert "estimate: 10 files to scan" in out
    assert (
        "relevance scan with anthropic/claude-haiku-4-5 (the provider's small model, by default"
        in out
    )
    haiku = _line(out, "every file")
    sonnet = _line(out, "every file with anthropic/claude-sonnet-4-5")
    assert haiku.group(1) == sonnet.group(1) == "10"  # 10 files to scan, as the estimate says
    h_usd, h_batch = float(haiku.group(3)), float(haiku.group(4))
    assert h_batch == pytest.approx(h_usd / 2, abs=1e-4) and float(sonnet.group(3)) > 2.5 * h_usd
    assert "this run" in haiku.group(5)  # the prefilter is off by default
    kept = _line(out, "prefilter 60%")  # the default share
    assert int(kept.group(1)) == 6
    assert int(kept.group(2).replace(",", "")) < int(haiku.group(2).replace(",", ""))


def test_the_estimate_follows_the_users_choices(tmp_path):
    out = _estimate(
        tmp_path,
        "--relevance-model", "anthropic/claude-sonnet-4-5",
        "--set", "context.prefilter=true",
        "--set", "context.prefilter_share=0.3",
        "--set", "context.prefilter_min_files=1",
    )  # fmt: skip
    assert "estimate: 3 files to scan" in out  # ceil(30% of 10): the prefilter is on
    assert "relevance scan with anthropic/claude-sonnet-4-5:" in out
    assert "by default" not in out
    assert "this run" in _line(out, "prefilter 30%").group(5)
    assert "this run" not in _line(out, "every file").group(5)


@pytest.mark.docker
def test_swebench_run_estimate_reads_trees_from_local_images_and_spends_nothing(
    tmp_path, docker_client, sandbox_image
):
    import json

    from tests.swebench_fixture import build_swebench_fixture

    row, _ = build_swebench_fixture(docker_client, sandbox_image)
    absent = dict(row, instance_id="nobody__nothing-1", image="codemonkeys-absent:never")
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps(row) + "\n" + json.dumps(absent) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200", OPENAI_API_KEY="sk-never-used")
    proc = subprocess.run(
        [
            CLI, "swebench", "run", "--dataset", str(dataset), "--run-dir", str(tmp_path / "run"),
            "--model", "openai/gpt-5", "--estimate",
        ],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert not (tmp_path / "run").exists()
    assert f"{row['instance_id']}:\nrelevance scan with openai/gpt-5-mini (the provider's" in out
    assert (
        "nobody__nothing-1: skipped (image codemonkeys-absent:never is not on this engine)" in out
    )
    assert "total over 1 problem(s) (1 skipped):" in out
    every = _line(out.split("total over")[1], "every file")
    assert int(every.group(1)) > 0 and float(every.group(4)) <= float(every.group(3))
    _line(out.split("total over")[1], "every file with openai/gpt-5")
