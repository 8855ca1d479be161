"""Token estimate, shrinking and packing."""

from __future__ import annotations

import ast

from codemonkeys.context.packing import pack_files, render_file
from codemonkeys.context.shrink import shrink_source, truncate_to_tokens
from codemonkeys.llm.tokens import count_tokens


def test_token_estimate_is_plausible_and_monotonic():
    code = "def add(a, b):\n    return a + b\n"
    # cl100k gives 12 tokens for this; the estimate is scaled up, never far below
    assert 11 <= count_tokens(code) <= 20
    assert count_tokens("") == 0
    assert count_tokens(code * 10) > count_tokens(code) * 8
    assert count_tokens("日本語のテキスト") >= 8  # CJK: about a token per character
    assert count_tokens("x" * 4000) >= 500  # a long run never collapses to one token


def _py_file(n_funcs: int, body_lines: int = 20) -> str:
    out = ["import os", ""]
    for i in range(n_funcs):
        out.append(f"def func_{i}(a, b=None):")
        out.append(f'    """Function {i}."""')
        out += [f"    x{j} = a + {j}" for j in range(body_lines)]
        out += ["    return x0", ""]
    out.append("class K:")
    out.append("    attr = 1")
    out.append("    def method(self):")
    out += ["        y = 1" for _ in range(body_lines)]
    return "\n".join(out) + "\n"


def test_python_shrink_keeps_signatures_and_parses():
    text = _py_file(5)
    outline = shrink_source("m.py", text)
    assert "def func_3(a, b=None):" in outline
    assert '"""Function 3."""' in outline
    assert "x7 = a + 7" not in outline
    assert "... # omitted" in outline
    assert "    attr = 1" in outline and "    def method(self):" in outline
    ast.parse(outline)  # the outline is still valid Python
    assert count_tokens(outline) < count_tokens(text) / 3


def test_brace_and_indent_shrink():
    java = "class A {\n  int f(int x) {\n    int y = x;\n    return y;\n  }\n}\n"
    out = shrink_source("A.java", java)
    assert "int f(int x) {" in out and "int y = x;" not in out and "// ... omitted" in out
    assert out.rstrip().endswith("}")
    ruby = "class A\n  def f\n    x = 1\n    x + 1\n  end\nend\n"
    out = shrink_source("a.rb", ruby)
    assert "  def f" in out and "x = 1" not in out
    assert shrink_source("b.py", "x = 1\n") == "x = 1\n"  # nothing to elide


def test_broken_python_falls_back_to_indentation():
    text = "def f(:\n    a = 1\n    b = 2\n        c = 3\n"
    out = shrink_source("bad.py", text)
    assert "def f(:" in out and "c = 3" not in out


def test_truncate_keeps_whole_lines_within_limit():
    text = "".join(f"line_{i} = {i}\n" for i in range(1000))
    out, cut = truncate_to_tokens(text, 200, count_tokens)
    assert cut and count_tokens(out) <= 200
    assert out.startswith("line_0 = 0\n") and "more lines not shown" in out


def test_render_fence_survives_backticks():
    block = render_file("README.md", "text\n```python\nx\n```\n")
    assert block.startswith("### README.md\n````markdown\n")
    assert block.endswith("\n````\n")


def _reader(files):
    return lambda p: files[p]


def test_pack_skips_a_misfit_and_continues():
    small = "x = 1\n"
    files = {"big.txt": "word " * 5000, "a.py": small, "b.py": small * 3}
    budget = count_tokens(render_file("a.py", small)) + count_tokens(render_file("b.py", small * 3))
    res = pack_files(["big.txt", "a.py", "b.py"], _reader(files), budget, shrink=True)
    assert [p.path for p in res.packed] == ["a.py", "b.py"]  # later smaller files still packed
    assert res.skipped[0].path == "big.txt" and res.skipped[0].reason == "too_large"
    assert res.total_tokens <= budget


def test_pack_skip_when_no_room_left():
    files = {"a.py": "a = 1\n" * 50, "b.py": "b = 2\n" * 50, "c.py": "c = 3\n"}
    budget = count_tokens(render_file("a.py", files["a.py"])) + 20
    res = pack_files(["a.py", "b.py", "c.py"], _reader(files), budget)
    assert [p.path for p in res.packed] == ["a.py", "c.py"]
    assert [(s.path, s.reason) for s in res.skipped] == [("b.py", "does_not_fit")]


def test_pack_shrinks_a_file_that_alone_exceeds_the_budget():
    text = _py_file(40)
    full = count_tokens(render_file("m.py", text))
    budget = full // 2
    res = pack_files(["m.py"], _reader({"m.py": text}), budget, shrink=True)
    assert len(res.packed) == 1 and res.packed[0].shrunk
    assert res.packed[0].tokens <= budget and res.packed[0].file_tokens > budget
    assert "def func_39(a, b=None):" in res.packed[0].content
    off = pack_files(["m.py"], _reader({"m.py": text}), budget, shrink=False)
    assert not off.packed and off.skipped[0].reason == "too_large"


def test_unreadable_file_is_skipped():
    def read(p):
        raise FileNotFoundError(p)

    res = pack_files(["gone.py"], read, 1000)
    assert not res.packed and res.skipped[0].reason.startswith("unreadable")
