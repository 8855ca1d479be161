"""Voting rules, clusters and ranking on crafted outcome matrices (no sandbox)."""

from __future__ import annotations

from codemonkeys.candidates import Candidate, CandidateSet
from codemonkeys.diffs import touched_files
from codemonkeys.execution import Script
from codemonkeys.selection.matrix import ORIGINAL, Cell, TestMatrix
from codemonkeys.selection.patches import is_test_file, strip_test_file_edits
from codemonkeys.selection.selector import parse_reply
from codemonkeys.selection.voting import (
    behaviour_clusters,
    count_votes,
    distinct_tests,
    rank_candidates,
    top_k,
)

EXIT_VERDICT = {0: "fixed", 2: "unfixed", 1: "crash"}


def matrix(rows: dict[str, list[int | str]]) -> TestMatrix:
    """rows: {row: [exit code or verdict per test]}; row ORIGINAL is the unpatched code."""
    n = len(next(iter(rows.values())))
    tests = [f"t{i}" for i in range(n)]
    cells = {}
    for row, outcomes in rows.items():
        cells[row] = {}
        for t, o in zip(tests, outcomes, strict=True):
            if isinstance(o, int):
                cells[row][t] = Cell(verdict=EXIT_VERDICT.get(o, "crash"), exit_code=o)
            else:
                cells[row][t] = Cell(verdict=o)
    return TestMatrix(tests=tests, candidates=[r for r in rows if r != ORIGINAL], cells=cells)


def cands(*ids: str, sources: dict[str, int] | None = None) -> list[Candidate]:
    sources = sources or {}
    return [
        Candidate(id=i, patch=f"patch {i}", sources=[f"s{k}" for k in range(sources.get(i, 1))])
        for i in ids
    ]


def test_strict_ignores_tests_that_already_pass_on_the_original():
    m = matrix({ORIGINAL: [2, 0, 1], "a": [0, 0, 0], "b": [2, 0, 0]})
    assert count_votes(m, "strict") == {"a": 2, "b": 1}  # t1 passes on the original: no vote
    assert count_votes(m, "original") == {"a": 3, "b": 2}


def test_timeouts_and_no_apply_never_vote_but_count_as_failing_on_original():
    m = matrix({ORIGINAL: ["timeout", 2], "a": [0, "timeout"], "b": ["no-apply", "no-apply"]})
    assert count_votes(m, "strict") == {"a": 1, "b": 0}


def test_identical_tests_up_to_line_endings_and_trailing_whitespace_count_once():
    t1 = Script(content="import x\nassert x.f() == 1\n")
    t2 = Script(content="import x  \r\nassert x.f() == 1 \t\n\n")
    t3 = Script(content="import x\nassert x.f() == 2\n")
    shell = Script(content="import x\nassert x.f() == 1\n", language="shell")
    assert distinct_tests([t1, t2, t3, shell, Script(content="  \n")]) == [t1, t3, shell]


def test_tests_that_differ_in_indentation_are_different_tests():
    """Python's indentation is its meaning: the second test runs the check only for
    negative numbers, so it is another vote, not a duplicate."""
    always = Script(content="for n in NUMS:\n    if n < 0:\n        skip(n)\n    check(n)\n")
    negative = Script(content="for n in NUMS:\n    if n < 0:\n        skip(n)\n        check(n)\n")
    assert distinct_tests([always, negative]) == [always, negative]
    cs = CandidateSet()
    cs.add_test(always)
    cs.add_test(negative)
    cs.add_test(Script(content=always.content.replace("\n", "  \r\n")))  # same test
    assert cs.tests == [always, negative]


def test_clusters_group_identical_outcome_vectors():
    m = matrix({ORIGINAL: [2, 2], "a": [0, 0], "b": [0, 0], "c": [0, 2], "d": [0, 0]})
    clusters = behaviour_clusters(m)
    assert [(cl.members, cl.size) for cl in clusters] == [(["a", "b", "d"], 3), (["c"], 1)]
    assert clusters[0].outcomes == ["fixed", "fixed"]


def test_ranking_votes_then_cluster_size_then_id_never_sources():
    # a, b, c, d tie on votes (1); b and c form a cluster of 2 (same outcomes); how many
    # systems proposed a patch is no evidence: d's 5 sources do not lift it over a.
    m = matrix(
        {
            ORIGINAL: [2, 2, 2],
            "e": [0, 0, 2],
            "a": [0, 2, 1],
            "b": [2, 0, 2],
            "c": [2, 0, 2],
            "d": [2, 2, 0],
        }
    )
    ranked = rank_candidates(cands("e", "a", "b", "c", "d", sources={"c": 3, "d": 5}), m)
    assert [r.id for r in ranked] == ["e", "b", "c", "a", "d"]
    assert top_k(ranked, 3) == ["e", "b", "c"]


def test_ranking_is_independent_of_input_order():
    m = matrix({ORIGINAL: [2], "x": [0], "y": [0], "z": [2]})
    one = [r.id for r in rank_candidates(cands("x", "y", "z"), m)]
    two = [r.id for r in rank_candidates(cands("z", "y", "x"), m)]
    assert one == two == ["x", "y", "z"]


def test_patches_that_never_apply_rank_last_and_stay_out_of_top_k():
    m = matrix({ORIGINAL: [0], "bad": ["no-apply"], "ok": [2]})
    ranked = rank_candidates(cands("bad", "ok", sources={"bad": 5}), m)
    assert [r.id for r in ranked] == ["ok", "bad"]
    assert top_k(ranked, 3) == ["ok"]
    only_bad = matrix({ORIGINAL: [0], "bad": ["no-apply"]})
    assert top_k(rank_candidates(cands("bad"), only_bad), 3) == ["bad"]


def test_no_tests_ranks_by_id_not_by_sources():
    m = TestMatrix(
        tests=[], candidates=["b", "a", "c"], cells={ORIGINAL: {}, "a": {}, "b": {}, "c": {}}
    )
    ranked = rank_candidates(cands("b", "a", "c", sources={"c": 2}), m)
    assert [r.id for r in ranked] == ["a", "b", "c"]


GIT_PATCH = """diff --git a/pkg/mod.py b/pkg/mod.py
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -1 +1 @@
-x = 1
+x = 2
diff --git a/tests/test_mod.py b/tests/test_mod.py
--- a/tests/test_mod.py
+++ b/tests/test_mod.py
@@ -1 +1 @@
-assert x == 1
+pass
diff --git a/pkg/test_new.py b/pkg/test_new.py
new file mode 100644
--- /dev/null
+++ b/pkg/test_new.py
@@ -0,0 +1 @@
+print(1)
"""


def test_test_file_hunks_are_stripped_and_the_fix_kept():
    out, removed = strip_test_file_edits(GIT_PATCH, ["test", "tests"])
    assert removed == ["tests/test_mod.py", "pkg/test_new.py"]
    assert touched_files(out) == ["pkg/mod.py"]
    assert "+x = 2" in out and "assert" not in out


def test_a_patch_of_only_test_files_becomes_empty():
    only_tests = GIT_PATCH.split("diff --git a/tests/")[1]
    out, removed = strip_test_file_edits("diff --git a/tests/" + only_tests, ["tests"])
    assert out == "" and len(removed) == 2


def test_is_test_file():
    assert is_test_file("sympy/core/tests/test_basic.py")
    assert is_test_file("conftest.py") and is_test_file("lib/foo_test.py")
    assert not is_test_file("src/util/latest.py")
    assert not is_test_file("django/db/contest.py")
    assert not is_test_file("django/testcases/utils.py")
    assert not is_test_file("reproduce.py")


def test_parse_reply_last_complete_block_wins():
    text = "I could write <choice>c1</choice> but first:\n<test>\n```python\nprint(1)\n```\n</test>"
    r = parse_reply(text)
    assert (r.kind, r.body) == ("test", "print(1)")
    r = parse_reply("<test>print(1)</test> ok, now <choice> `c2` </choice>")
    assert (r.kind, r.body) == ("choice", "c2")
    assert parse_reply("no tags here").kind == "none"
    r = parse_reply("<choice>c1</choice> then <test>\nimport sys\nsys.exit(0)\n")  # unclosed test
    assert (r.kind, r.body) == ("test", "import sys\nsys.exit(0)")


def test_runner_files_are_stripped_even_when_test_edits_are_allowed():
    from codemonkeys.execution import TestRun
    from codemonkeys.selection.patches import strip_test_file_edits

    def section(path: str) -> str:
        return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a\n+b\n"

    patch = "".join(
        section(p) for p in ("pkg/mod.py", "sitecustomize.py", "lib/x.pth", "pytest.ini",
                             "tests/test_mod.py")
    )  # fmt: skip
    kept, removed = strip_test_file_edits(patch, ["tests"], tests=False)
    assert removed == ["sitecustomize.py", "lib/x.pth", "pytest.ini"]
    assert "pkg/mod.py" in kept and "tests/test_mod.py" in kept
    # a test that did not finish by itself never passes, whatever its exit code
    assert TestRun(exit_code=0, completed=False).verdict == "crash"
    assert TestRun(exit_code=2, completed=False).verdict == "crash"
    assert TestRun(exit_code=0).verdict == "fixed"
