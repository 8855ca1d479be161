"""Grading through the real swebench 5.x harness on the local Docker engine, against a
SWE-bench-shaped instance image built locally from the statkit fixture (official layout:
/testbed, git commit, official image name; no registry involved)."""

from __future__ import annotations

import json

import pytest

from codemonkeys.swebench.dataset import to_problem
from codemonkeys.swebench.evaluate import (
    evaluate_candidates,
    evaluate_predictions,
    harness_available,
    run_harness,
)
from codemonkeys.swebench.images import (
    ImageMissing,
    ensure_instance_image,
    instance_image,
    official_image_name,
    remove_instance_image,
)
from tests.swebench_fixture import INSTANCE_ID, build_swebench_fixture

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not harness_available(), reason="swebench harness not installed"),
]


@pytest.fixture(scope="module")
def fixture(docker_client, sandbox_image):
    row, image = build_swebench_fixture(docker_client, sandbox_image)
    return row, image


def test_fixture_image_follows_the_official_layout(fixture, docker_client):
    row, image = fixture
    assert image == official_image_name(INSTANCE_ID) == instance_image(row)
    problem, gold = to_problem(row)
    assert problem.image == image and problem.workdir == "/testbed"
    out = docker_client.containers.run(
        image,
        [
            "bash",
            "-c",
            problem.env_setup + " && cd /testbed && git rev-parse HEAD && git status --porcelain",
        ],
        remove=True,
        labels={"org.codemonkeys.managed": "1"},
    ).decode()
    assert out.split() == [row["base_commit"]]  # at the base commit, clean tree


def test_harness_resolves_the_gold_patch_only(fixture, docker_client, tmp_path):
    row, _ = fixture
    wrong = row["patch"].replace(
        "+    return (ordered[middle - 1] + ordered[middle]) / 2", "+    return ordered[middle - 1]"
    )
    assert wrong != row["patch"]
    verdicts = evaluate_candidates(
        {
            INSTANCE_ID: [
                ("gold", row["patch"]),
                ("empty", ""),
                ("wrong", wrong),
                ("same-as-gold", row["patch"]),
            ]
        },
        [row],
        run_id_prefix="cands",
        report_dir=tmp_path,
        client=docker_client,
    )
    assert verdicts == {
        INSTANCE_ID: {"gold": True, "empty": False, "wrong": False, "same-as-gold": True}
    }
    # two distinct non-empty patches -> two harness runs (one prediction per instance per run)
    runs = sorted(p.name for p in (tmp_path / "logs" / "run_evaluation").iterdir())
    assert runs == ["cands.L0", "cands.L1"]
    reports = [json.loads(p.read_text()) for p in (tmp_path / "logs").rglob("report.json")]
    by_status = sorted(r[INSTANCE_ID]["resolved"] for r in reports)
    assert by_status == [False, True]
    wrong_report = next(r[INSTANCE_ID] for r in reports if not r[INSTANCE_ID]["resolved"])
    assert wrong_report["patch_successfully_applied"]  # it ran and failed the tests
    assert wrong_report["tests_status"]["FAIL_TO_PASS"]["failure"]


def test_predictions_file_gold_resolved_empty_not(fixture, docker_client, tmp_path):
    row, _ = fixture
    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        json.dumps(
            {
                "instance_id": INSTANCE_ID,
                "model_name_or_path": "org/model",
                "model_patch": row["patch"],
            }
        )
        + "\n"
    )
    assert evaluate_predictions(
        preds, [row], run_id="gold", report_dir=tmp_path / "r", client=docker_client
    ) == {INSTANCE_ID: True}
    report = (
        tmp_path
        / "r"
        / "logs"
        / "run_evaluation"
        / "gold"
        / "org__model"
        / INSTANCE_ID
        / "report.json"
    )
    assert (
        json.loads(report.read_text())[INSTANCE_ID]["resolved"] is True
    )  # the harness's own verdict
    # same run id, different patch: graded again, not answered from the cached verdict
    wrong = row["patch"].replace("/ 2\n", "/ 3\n")
    assert wrong != row["patch"]
    preds.write_text(
        json.dumps(
            {"instance_id": INSTANCE_ID, "model_name_or_path": "org/model", "model_patch": wrong}
        )
        + "\n"
    )
    assert evaluate_predictions(
        preds, [row], run_id="gold", report_dir=tmp_path / "r", client=docker_client
    ) == {INSTANCE_ID: False}
    preds.write_text(
        json.dumps({"instance_id": INSTANCE_ID, "model_name_or_path": "m", "model_patch": ""})
        + "\n"
    )
    assert evaluate_predictions(
        preds, [row], run_id="empty", report_dir=tmp_path / "r", client=docker_client
    ) == {INSTANCE_ID: False}


def test_absent_image_is_reported_not_pulled(fixture, docker_client, tmp_path):
    row, _ = fixture
    absent = {**row, "image": "localhost:1/codemonkeys-absent:never"}
    run = run_harness(
        [{"instance_id": INSTANCE_ID, "model_name_or_path": "m", "model_patch": row["patch"]}],
        [absent],
        run_id="absent",
        report_dir=tmp_path,
        client=docker_client,
    )
    assert run.resolved == {INSTANCE_ID: None}  # never graded: not "unresolved"
    assert run.status == {INSTANCE_ID: "image_missing"}
    assert "localhost:1/codemonkeys-absent:never" in run.reasons[INSTANCE_ID]
    assert run.harness_log is None  # the harness never started


def test_one_row_the_harness_cannot_grade_never_stops_the_others(fixture, docker_client, tmp_path):
    row, _ = fixture
    broken = {**row, "instance_id": "codemonkeys__broken-1", "eval_type": "made_up"}
    del broken["eval_script"]
    run = run_harness(
        [
            {"instance_id": INSTANCE_ID, "model_name_or_path": "m", "model_patch": row["patch"]},
            {
                "instance_id": broken["instance_id"],
                "model_name_or_path": "m",
                "model_patch": row["patch"],
            },
            {
                "instance_id": "not__in-dataset-1",
                "model_name_or_path": "m",
                "model_patch": row["patch"],
            },
        ],  # fmt: skip
        [row, broken],
        run_id="mixed",
        report_dir=tmp_path,
        client=docker_client,
    )
    assert run.resolved[INSTANCE_ID] is True  # graded by the harness
    assert run.status[broken["instance_id"]] == "ungradable"
    assert "eval_script" in run.reasons[broken["instance_id"]]
    assert run.status["not__in-dataset-1"] == "ungradable"
    assert "not in the dataset" in run.reasons["not__in-dataset-1"]


def test_image_helpers(fixture, docker_client, sandbox_image):
    _, image = fixture
    ensure_instance_image(image, docker_client)  # present: no pull, no error
    with pytest.raises(ImageMissing, match="localhost:1/codemonkeys-absent:never"):
        ensure_instance_image("localhost:1/codemonkeys-absent:never", docker_client)
    tag = "codemonkeys-test/remove-me:latest"
    docker_client.images.get(sandbox_image).tag(tag)
    assert remove_instance_image(tag, docker_client) is True
    assert remove_instance_image(tag, docker_client) is False
    docker_client.images.get(sandbox_image)  # removing a tag kept the image it pointed to
