"""The show page (one problem, for reading) and the HTML report, without a browser."""

from __future__ import annotations

import html
import json

import pytest

from codemonkeys.report import build_report, render_html, svg_line_chart
from codemonkeys.show import diff_html, render_show, write_show
from tests.unit.test_report_run import HOSTILE, PATCH_C, C, D, make_synthetic_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("show"))


def test_show_escapes_model_text(run_dir):
    page = render_show(run_dir, "demo__lib-2")
    assert "<script" not in page.lower()  # the page has no script of its own either
    assert "<b>not bold</b>" not in page
    assert html.escape(HOSTILE) in page  # shown, as text


def test_show_has_the_parts_a_reader_needs(run_dir):
    page = render_show(run_dir, "demo__lib-2")
    assert "util x should be 2" in page  # the issue
    assert "lib/util.py" in page  # context files
    assert page.count("class='traj'") == 3
    assert html.escape("+x = 2") in page and html.escape("-x = 1") in page  # diffs
    assert "import sys" in page and "issue present" in page  # test script and its output
    assert C in page and D in page and "chosen" in page  # candidates and votes
    assert "Test matrix" in page and "unfixed" in page
    assert "Selection transcript" in page
    assert "not resolved" in page  # graded result


def test_show_of_a_failed_problem_and_an_unknown_one(run_dir, tmp_path):
    page = render_show(run_dir, "demo__lib-3")
    assert "image demo:lib-3 missing" in page
    assert "No trajectory records" in page and "No selection record" in page
    with pytest.raises(FileNotFoundError, match="demo__lib-1"):  # names the known problems
        render_show(run_dir, "nope")
    out = write_show(run_dir, "demo__lib-1", tmp_path / "p1.html")
    assert "add() subtracts" in out.read_text()


def test_show_names_trajectory_records_it_cannot_read(tmp_path):
    """Trajectories are read as ``TrajectoryRecord``: a file of another shape or cut short
    by a kill is named on the page as skipped (escaped), and the page still renders."""
    pdir = tmp_path / "run" / "problems" / "x"
    pdir.mkdir(parents=True)
    (pdir / "problem.json").write_text(json.dumps({"id": "x", "issue": "i"}))
    (pdir / "trajectory-0.json").write_text(
        json.dumps({"data": {"weird": [1, {"deep": "<i>"}]}, "fingerprint": "f"})
    )
    (pdir / "trajectory-1.json").write_text("{not json")
    page = render_show(tmp_path / "run", "x")
    assert page.count("not a trajectory record") == 2
    assert "trajectory-0" in page and "trajectory-1" in page and "<i>" not in page
    assert "Selection" in page


def test_diff_lines_are_classified_and_escaped():
    out = diff_html(PATCH_C + "+<script>\n")
    assert '<span class="add">+x = 2</span>' in out
    assert '<span class="del">-x = 1</span>' in out
    assert "&lt;script&gt;" in out and "<script>" not in out
    assert "empty patch" in diff_html("")


def test_report_html_escapes_problem_ids_and_errors(tmp_path):
    run = make_synthetic_run(tmp_path)
    result = run / "problems" / "demo__lib-3" / "result.json"
    data = json.loads(result.read_text())
    data["error"] = "boom <img src=x onerror=alert(1)>"
    result.write_text(json.dumps(data))
    page = render_html(build_report(run))
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_svg_chart_escapes_labels_and_plots_every_point():
    svg = svg_line_chart({"a<b": [0.1, 0.5, 1.0]}, title="t&t", x_label="k", y_label="y")
    assert "a&lt;b" in svg and "t&amp;t" in svg
    assert svg.count("<circle") == 3
    assert "<polyline" in svg


def test_show_has_every_verifiers_verdicts(tmp_path):
    """The regression verifier's runs and the fused rule's keep/drop reasons are on the page."""
    run = make_synthetic_run(tmp_path)
    pdir = run / "problems" / "demo__lib-2"
    sel = json.loads((pdir / "selection.json").read_text())
    sel["data"]["regression"] = {
        "source": "discovered",
        "framework": "unittest",
        "command": "python -m unittest -v tests.test_util",
        "test_files": ["tests/test_util.py"],
        "reasons": {"tests/test_util.py": "name+import"},
        "original_runs": [{"exit_code": 0, "parser": "unittest", "outcomes": {"t.a": "passed"}}],
        "flaky": ["tests.test_util.T.test_clock"],
        "baseline_passing": 1,
        "impact": {
            "status": "narrowed",
            "tests_traced": 12,
            "tests_kept": ["tests/test_util.py::T::test_y"],
            "functions": {"lib/util.py::parse": 1},
            "seconds": 3.5,
        },
        "candidates": {
            C: {"status": "ok", "regressions": []},
            D: {"status": "ok", "regressions": ["tests.test_util.T.test_y"]},
        },
    }
    sel["data"]["fusion"] = {
        "rule": "regressions-then-votes",
        "ranking": [
            {"id": C, "votes": 1, "kept": True, "why": "breaks no existing test"},
            {"id": D, "votes": 3, "kept": False, "why": "breaks 1 existing test(s)"},
        ],
    }
    (pdir / "selection.json").write_text(json.dumps(sel))
    page = render_show(run, "demo__lib-2")
    assert "Regression verifier" in page and "tests/test_util.py" in page
    assert "tests.test_util.T.test_y" in page and "tests.test_util.T.test_clock" in page
    assert "regressions-then-votes" in page and "dropped" in page
    assert "breaks 1 existing test(s)" in page
    assert "impact run</b>: narrowed, 12 tests traced" in page
    assert "tests/test_util.py::T::test_y" in page and "lib/util.py::parse" in page
