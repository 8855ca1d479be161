"""The prefilter: lexical ranking of files against the issue, and its use in the stage."""

from __future__ import annotations

from codemonkeys.config import ContextConfig
from codemonkeys.context.files import SourceFile
from codemonkeys.context.prefilter import (
    PREFILTER_REASON,
    kept_count,
    named_code,
    path_named,
    prefilter,
    rank_files,
    split_identifier,
)
from codemonkeys.context.stage import run_context
from tests.unit.test_context_stage import PROBLEM, RELEVANT, Env, repo  # noqa: F401

TEXTS = {
    "pkg/printing/latex.py": "class LatexPrinter:\n    def _print_MatMul(self, expr):\n        pass\n",
    "pkg/printing/str.py": "class StrPrinter:\n    def _print_Add(self, expr):\n        pass\n",
    "pkg/core/numbers.py": "class Integer:\n    def __add__(self, other):\n        return 1\n",
    "pkg/matrices/dense.py": "class Matrix:\n    def det(self):\n        return 0\n",
    "docs/usage.rst": "Printing\n========\n\nUse the printers to print expressions.\n",
    "pkg/utils/misc.py": "def helper():\n    return None\n",
}


def _files() -> list[SourceFile]:
    return [SourceFile(path=p, size=len(t), sha256=p, tokens=len(t)) for p, t in TEXTS.items()]


def test_identifiers_split_at_underscores_and_humps():
    assert split_identifier("_print_MatMul") == ("_print_matmul", "print", "mat", "mul")
    assert split_identifier("HTTPServer") == ("httpserver", "http", "server")
    assert split_identifier("is_the_one") == ("is_the_one", "one")  # stopwords dropped


def test_named_code_finds_backticks_calls_dotted_and_code_shaped_words():
    issue = "Calling `latex(expr)` on Matrix.det() fails in _print_MatMul, see parseDate here."
    named = named_code(issue)
    assert {"latex", "expr", "Matrix", "det", "_print_MatMul", "parseDate"} <= named
    assert "Calling" not in named and "fails" not in named


def test_path_named_by_path_suffix_or_module():
    assert path_named("sympy/core/basic.py", "error in sympy/core/basic.py line 3")
    assert path_named("sympy/core/basic.py", "File /home/u/sympy/core/basic.py, line 3")
    assert path_named("sympy/core/basic.py", "from sympy.core.basic import Basic")
    assert path_named("sympy/core/__init__.py", "import sympy.core fails")
    assert not path_named("sympy/core/basic.py", "the basic idea")
    assert not path_named("sympy/core/basic.py", "see sympy.core.basics")


def test_the_file_defining_the_named_function_ranks_first():
    issue = "latex() of a matrix product is wrong: `_print_MatMul` drops the parentheses."
    ranked = rank_files(issue, _files(), lambda f: TEXTS[f.path])
    assert ranked[0].path == "pkg/printing/latex.py"
    assert any(b.startswith("defines:_print_MatMul") for b in ranked[0].boosts)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_a_path_named_in_the_issue_beats_word_overlap():
    issue = "Bug in pkg/core/numbers.py: printing a matrix determinant prints wrong printers."
    ranked = rank_files(issue, _files(), lambda f: TEXTS[f.path])
    assert ranked[0].path == "pkg/core/numbers.py" and "path_named" in ranked[0].boosts


def test_prefilter_keeps_the_share_but_at_least_min_files():
    issue = "Matrix.det returns 0 for every matrix"
    kept, skipped = prefilter(issue, _files(), lambda f: TEXTS[f.path], share=0.2, min_files=1)
    assert len(kept) == 2  # ceil(0.2 * 6)
    assert "pkg/matrices/dense.py" in {f.path for f in kept}
    assert len(kept) + len(skipped) == len(TEXTS)
    assert kept_count(6, 0.2, 1) == 2 and kept_count(6, 0.2, 4) == 4 and kept_count(3, 0.5, 10) == 3
    kept_all, none = prefilter(issue, _files(), lambda f: TEXTS[f.path], share=0.2, min_files=50)
    assert len(kept_all) == len(TEXTS) and none == []


def test_stage_with_prefilter_reads_only_the_kept_files_and_records_the_rest(tmp_path, repo):  # noqa: F811
    dest, paths = repo
    env = Env(
        tmp_path,
        {"relevant": RELEVANT},
        {},
        prefilter=True,
        prefilter_share=0.1,
        prefilter_min_files=3,
    )
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    asked = env.rel_calls()
    # 11 files enumerated; the prefilter keeps 3 for the model and records the other 8
    assert len(asked) == 3
    assert "src/app/core.py" in asked  # defines parse_date, named in the issue
    assert len(rec.prefilter_skipped) == 8 and not set(rec.prefilter_skipped) & set(asked)
    assert rec.excluded_counts[PREFILTER_REASON] == 8
    assert rec.enumerated_files == 3
    assert "src/app/core.py" in rec.paths


def test_prefilter_is_off_by_default(tmp_path, repo):  # noqa: F811
    dest, paths = repo
    assert ContextConfig().prefilter is False
    env = Env(tmp_path, {"relevant": RELEVANT}, {})
    rec = run_context(PROBLEM, dest, paths, env.hub, env.store, env.config)
    assert rec.prefilter_skipped == [] and PREFILTER_REASON not in rec.excluded_counts
    assert len(env.rel_calls()) == 10
