"""Dataset loading, selection, row -> Problem/Gold, image names, and the checks that stop
a stage early with the row and field named."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from codemonkeys.swebench import dataset as ds
from codemonkeys.swebench.dataset import DatasetError, load_dataset, require, select, to_problem
from codemonkeys.swebench.evaluate import evaluate_candidates, run_harness
from codemonkeys.swebench.harness_io import check_harness_row
from codemonkeys.swebench.images import instance_image, official_image_name


@pytest.fixture(scope="module")
def verified(shared_data) -> list[dict]:
    return load_dataset(shared_data("swe-bench-verified.partial.jsonl"))


def _row(**over) -> dict:
    row = {
        "instance_id": "octo__widget-7",
        "repo": "octo/widget",
        "base_commit": "abc123",
        "problem_statement": "widgets explode on Tuesdays",
        "patch": "diff --git a/w.py b/w.py\n--- a/w.py\n+++ b/w.py\n@@ -1 +1 @@\n-SECRET_GOLD_FIX\n+x\n",
        "test_patch": "diff --git a/t.py b/t.py\nSECRET_GOLD_TEST\n",
        "FAIL_TO_PASS": '["t.py::test_tuesday"]',
        "PASS_TO_PASS": ["t.py::test_monday"],
        "version": "1.0",
    }
    row.update(over)
    return row


# --------------------------------------------------------------------------- loading


def test_partial_verified_loads_all_500_rows(verified):
    assert len(verified) == 500
    assert len({r["instance_id"] for r in verified}) == 500
    assert "django__django-11099" in {r["instance_id"] for r in verified}


def test_every_partial_row_converts_to_a_problem(verified):
    for row in verified:
        problem, gold = to_problem(row)
        assert problem.workdir == "/testbed"
        assert problem.image == official_image_name(row["instance_id"])
        assert gold.fail_to_pass, row["instance_id"]  # JSON strings decoded into lists


def test_json_jsonl_and_parquet_give_the_same_rows(tmp_path):
    rows = [_row(), _row(instance_id="octo__widget-8")]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    (tmp_path / "d.json").write_text(json.dumps(rows))
    pq.write_table(
        pa.Table.from_pylist([{**r, "PASS_TO_PASS": json.dumps(r["PASS_TO_PASS"])} for r in rows]),
        tmp_path / "d.parquet",
    )
    for name in ("d.jsonl", "d.json", "d.parquet"):
        loaded = load_dataset(tmp_path / name)
        assert [r["instance_id"] for r in loaded] == ["octo__widget-7", "octo__widget-8"], name
        assert to_problem(loaded[0])[1].pass_to_pass == ["t.py::test_monday"], name


def test_jsonl_row_without_instance_id_names_the_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(_row()) + "\n" + json.dumps({"repo": "x/y"}) + "\n")
    with pytest.raises(DatasetError, match=r"line 2: missing field 'instance_id'"):
        load_dataset(f)


def test_bad_json_line_and_duplicates_are_named(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(_row()) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"line 2: not valid JSON"):
        load_dataset(f)
    f.write_text(json.dumps(_row()) + "\n" + json.dumps(_row()) + "\n")
    with pytest.raises(DatasetError, match=r"octo__widget-7.*twice.*lines 1 and 2"):
        load_dataset(f)


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.jsonl")


def test_hub_alias_offline_says_hub_unreachable_and_to_pass_a_file(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    seen = {}

    def unreachable(timeout: float = 5.0) -> bool:
        seen["probed"] = True
        return False

    monkeypatch.setattr(ds, "_hub_reachable", unreachable)
    with pytest.raises(DatasetError) as err:
        load_dataset("verified")
    assert seen["probed"]
    msg = str(err.value)
    assert "SWE-bench/SWE-bench_Verified" in msg and "unreachable" in msg and "local" in msg


# --------------------------------------------------------------------------- selection


def test_select_by_ids_file_and_list(verified, tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("# a comment\nsympy__sympy-20590\n\ndjango__django-11099  # trailing\n")
    got = select(verified, ids_file=f, ids=["astropy__astropy-12907"])
    # dataset order, not file order
    assert [r["instance_id"] for r in got] == [
        "astropy__astropy-12907",
        "django__django-11099",
        "sympy__sympy-20590",
    ]


def test_select_unknown_id_is_an_error_naming_it(verified):
    with pytest.raises(DatasetError, match="not-a-real__id-1"):
        select(verified, ids=["django__django-11099", "not-a-real__id-1"])


def test_select_by_regex_slice_and_seeded_shuffle(verified):
    django = select(verified, regex=r"^django__")
    assert len(django) == 231 and all(r["repo"] == "django/django" for r in django)
    assert [r["instance_id"] for r in select(verified, slice_="10:13")] == [
        r["instance_id"] for r in verified[10:13]
    ]
    assert len(select(verified, slice_="7")) == 7
    a = select(verified, shuffle_seed=3, slice_=":20")
    b = select(verified, shuffle_seed=3, slice_=":20")
    c = select(verified, shuffle_seed=4, slice_=":20")
    assert [r["instance_id"] for r in a] == [r["instance_id"] for r in b]
    assert [r["instance_id"] for r in a] != [r["instance_id"] for r in c]
    assert [r["instance_id"] for r in a] != [r["instance_id"] for r in verified[:20]]
    assert len(select(verified, regex="sympy", shuffle_seed=1, slice_="5:")) == 75 - 5


def test_bad_slice_and_regex_are_clear_errors(verified):
    with pytest.raises(DatasetError, match="bad slice"):
        select(verified, slice_="a:b")
    with pytest.raises(DatasetError, match="bad instance regex"):
        select(verified, regex="(")


# --------------------------------------------------------------------------- problem / gold


def test_gold_stays_out_of_the_problem():
    problem, gold = to_problem(_row())
    dumped = problem.model_dump_json()
    for secret in ("SECRET_GOLD_FIX", "SECRET_GOLD_TEST", "test_tuesday", "test_monday"):
        assert secret not in dumped
    assert "SECRET_GOLD_FIX" in gold.patch and "SECRET_GOLD_TEST" in gold.test_patch
    assert gold.fail_to_pass == ["t.py::test_tuesday"] and gold.pass_to_pass == [
        "t.py::test_monday"
    ]
    assert problem.issue == "widgets explode on Tuesdays" and problem.base_commit == "abc123"


def test_problem_missing_field_names_row_and_field():
    with pytest.raises(DatasetError, match=r"'octo__widget-7' lacks problem_statement \(null\)"):
        to_problem(_row(problem_statement=None))
    row = _row()
    del row["base_commit"]
    with pytest.raises(DatasetError, match=r"base_commit \(absent\).*solving"):
        to_problem(row)


def test_malformed_gold_fields_are_named_and_do_not_fail_the_problem():
    """Gold is not needed to solve: the problem is made, the bad fields are recorded."""
    problem, gold = to_problem(_row(FAIL_TO_PASS="[not json", patch=7))
    assert problem.issue == "widgets explode on Tuesdays"
    assert gold.fail_to_pass == [] and gold.patch == ""
    assert gold.pass_to_pass == ["t.py::test_monday"]  # the good fields are kept
    assert any("'octo__widget-7'" in e and "FAIL_TO_PASS" in e for e in gold.errors)
    assert any("field patch is a int" in e for e in gold.errors)


def test_env_setup_activates_conda_only_where_it_exists(tmp_path):
    import subprocess

    problem, _ = to_problem(_row())
    assert "conda activate testbed" in problem.env_setup
    # without /opt/miniconda3 the snippet is a no-op that succeeds, under sh and bash,
    # whether joined with && or ;
    for shell in ("sh", "bash"):
        for joiner in (" && ", "; ", "\n"):
            proc = subprocess.run(
                [shell, "-c", problem.env_setup + joiner + "echo ran"],
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0 and proc.stdout.strip() == "ran", (
                shell,
                joiner,
                proc.stderr,
            )


def test_partial_rows_lacking_test_patch_fail_evaluation_naming_row_and_field(verified):
    lacking = [r for r in verified if r.get("test_patch") is None]
    assert len(lacking) == 407
    row = lacking[0]
    iid = row["instance_id"]
    # solving works, evaluation is refused with the row and every missing field named
    to_problem(row)
    with pytest.raises(DatasetError) as err:
        require(row, ["test_patch"], "evaluation")
    assert f"{iid!r} lacks test_patch (null), needed for evaluation" in str(err.value)
    with pytest.raises(DatasetError) as err:
        check_harness_row(row)
    for field in (
        "test_patch (null)",
        "eval_script (absent)",
        "log_parser (absent)",
        "eval_type (absent)",
    ):
        assert field in str(err.value)


def test_ungradable_rows_are_recorded_without_running_anything(verified, tmp_path):
    """Rows the harness cannot grade are that instance's verdict (ungraded, with the
    reason), never an abort of the whole evaluation."""
    rows = select(verified, ids=["astropy__astropy-12907", "django__django-11099"])
    assert rows[0]["test_patch"] is not None  # a Lite row: only the harness columns lack
    verdicts = evaluate_candidates(
        {r["instance_id"]: [("c1", r["patch"])] for r in rows},
        rows,
        run_id_prefix="x",
        report_dir=tmp_path,
    )
    assert verdicts == {r["instance_id"]: {"c1": None} for r in rows}  # never graded
    run = run_harness(
        [{"instance_id": r["instance_id"], "model_patch": r["patch"]} for r in rows],
        rows,
        run_id="x",
        report_dir=tmp_path,
    )
    assert set(run.status.values()) == {"ungradable"}
    assert "eval_script" in run.reasons["django__django-11099"]
    assert not list(tmp_path.iterdir())  # nothing written, no harness started


# --------------------------------------------------------------------------- images


def test_official_image_name_rule_matches_the_harness():
    spec_mod = pytest.importorskip("swebench.image_builder.image_spec")
    for iid in (
        "django__django-11099",
        "sympy__sympy-20590",
        "astropy__astropy-12907",
        "pytest-dev__pytest-5262",
    ):
        expected = spec_mod.ImageSpec(
            instance_id=iid, dockerfile="FROM x", namespace="swebench", arch="amd64"
        ).name
        assert official_image_name(iid) == expected
    assert (
        official_image_name("django__django-11099")
        == "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
    )
    assert official_image_name("Foo__Bar-1") == "swebench/sweb.eval.x86_64.foo_1776_bar-1:latest"


def test_row_image_field_wins():
    assert instance_image(_row(image="my/img:tag")) == "my/img:tag"
    assert instance_image(_row(image="")) == official_image_name("octo__widget-7")
    assert to_problem(_row(image="my/img:tag"))[0].image == "my/img:tag"


def test_harness_row_fills_image_and_version(tmp_path):
    row = _row()
    del row["version"]
    out = ds.harness_row(row)
    assert out["image"] == official_image_name("octo__widget-7") and out["version"] is None
    assert "image" not in row  # the caller's row is not modified


# --------------------------------------------------------------------------- evaluation checks


def _gradable(**over) -> dict:
    fields = {
        "eval_script": "#!/bin/bash\necho hi\n",
        "log_parser": "parse_log_pytest",
        "eval_type": "pass_and_fail",
    }
    return _row(**{**fields, **over})


def test_harness_row_checks_parser_and_eval_type():
    check_harness_row(_gradable())
    with pytest.raises(DatasetError, match=r"'octo__widget-7'.*log_parser 'parse_log_nope'"):
        check_harness_row(_gradable(log_parser="parse_log_nope"))
    with pytest.raises(DatasetError, match=r"'octo__widget-7'.*eval_type 'sometimes'"):
        check_harness_row(_gradable(eval_type="sometimes"))


def test_missing_harness_is_a_clear_error(monkeypatch, tmp_path):
    from codemonkeys.swebench import evaluate

    monkeypatch.setattr(evaluate, "harness_available", lambda: False)
    with pytest.raises(evaluate.HarnessMissing, match="swebench"):
        evaluate.evaluate_candidates(
            {"octo__widget-7": [("a", "diff --git a/x b/x\n")]},
            [_gradable()],
            run_id_prefix="p",
            report_dir=tmp_path,
        )


def test_candidates_are_layered_one_distinct_patch_per_instance_per_run(monkeypatch, tmp_path):
    """The harness keeps one prediction per instance per run: layer k carries the k-th
    distinct patch of each instance; duplicates and empty patches are never sent."""
    from codemonkeys.swebench import evaluate

    calls = []

    def fake_run_harness(preds, rows, *, run_id, **kw):
        ids = [p["instance_id"] for p in preds]
        assert len(ids) == len(set(ids))
        calls.append((run_id, sorted((p["instance_id"], p["model_patch"]) for p in preds)))
        return evaluate.EvaluationRun(
            run_id=run_id, resolved={p["instance_id"]: p["model_patch"] == "good" for p in preds}
        )

    def fake_runs(runs, rows, **kw):  # every layer is a run of one harness process
        return {
            run_id: fake_run_harness(preds, rows, run_id=run_id) for run_id, preds in runs.items()
        }

    monkeypatch.setattr(evaluate, "run_harness_runs", fake_runs)
    rows = [_gradable(), _gradable(instance_id="octo__widget-8")]
    got = evaluate.evaluate_candidates(
        {
            "octo__widget-7": [("a", "bad"), ("b", "good"), ("c", "bad"), ("d", "")],
            "octo__widget-8": [("x", "good")],
        },
        rows,
        run_id_prefix="p",
        report_dir=tmp_path,
    )
    assert got == {
        "octo__widget-7": {"a": False, "b": True, "c": False, "d": False},
        "octo__widget-8": {"x": True},
    }
    assert calls == [
        ("p.L0", [("octo__widget-7", "bad"), ("octo__widget-8", "good")]),
        ("p.L1", [("octo__widget-7", "good")]),
    ]
