"""Tag parsing on the kinds of output real models produce."""

from __future__ import annotations

from codemonkeys.llm.tags import extract, parse_answer, strip_fences


def test_simple_block():
    assert extract("<test>\nprint(1)\n</test>", "test") == "print(1)"


def test_tag_quoted_in_reasoning_before_block():
    text = "I will put the script in <test> tags, closing with </test> as asked.\n<test>\nimport sys\nsys.exit(2)\n</test>\n"
    assert extract(text, "test") == "import sys\nsys.exit(2)"


def test_tag_quoted_after_block_does_not_break_it():
    text = "<test>\nimport sys\n</test>\nThat script ends with </test> as required."
    assert extract(text, "test") == "import sys"


def test_last_complete_block_wins():
    text = "<test>\nv1\n</test>\nHmm, better:\n<test>\nv2\n</test>"
    assert extract(text, "test") == "v2"


def test_missing_closing_tag_at_end():
    text = "Here it is:\n<test>\nimport sys\nsys.exit(2)\n"
    assert extract(text, "test") == "import sys\nsys.exit(2)"


def test_missing_closing_tag_can_be_refused():
    assert extract("<test>\nx\n", "test", allow_unclosed=False) is None


def test_code_fences_stripped():
    text = "<test>\n```python\nprint('hi')\n```\n</test>"
    assert extract(text, "test") == "print('hi')"
    assert strip_fences("```\na\n```") == "a"
    # a fence whose closing part was cut off
    assert strip_fences("```python\na\nb") == "a\nb"
    # inner fences that do not wrap the whole content are kept
    assert strip_fences("a\n```\nb\n```\nc") == "a\n```\nb\n```\nc"


def test_case_and_spacing_of_tags():
    assert extract("< TEST >\nx\n</ test>", "test") == "x"


def test_no_tags_is_an_error():
    p = parse_answer("I think the bug is in foo.py.", allow=("test", "done"))
    assert p.error == "no_tags"


def test_done_marker_forms():
    for text in ("Looks right.\n<done>", "<done/>", "ok <done></done>", "<DONE>"):
        p = parse_answer(text, allow=("test", "done"))
        assert p.done and not p.error, text


def test_new_block_takes_precedence_over_done():
    p = parse_answer("<done>\nActually no:\n<test>\nx\n</test>", allow=("test", "done"))
    assert p.test == "x" and not p.done


def test_done_mentioned_then_rewrite_is_not_done():
    p = parse_answer(
        "I should not answer <done> yet, the edit is wrong.\n<edit>\na.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n</edit>",
        allow=("edit", "test", "done"),
    )
    assert not p.done and p.edit is not None and p.edit.startswith("a.py")


def test_two_different_edit_blocks_are_an_error():
    e1 = "<edit>\na.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n</edit>"
    e2 = "<edit>\nb.py\n<<<<<<< SEARCH\nz\n=======\nw\n>>>>>>> REPLACE\n</edit>"
    p = parse_answer(e1 + "\n" + e2, allow=("edit", "test", "done"))
    assert p.error == "multiple_edits"
    # the same block written twice is fine
    p = parse_answer(e1 + "\nagain:\n" + e1, allow=("edit", "test", "done"))
    assert not p.error and p.edit is not None


def test_edit_and_test_together():
    text = "<test>\nt\n</test>\n<edit>\ne\n</edit>"
    p = parse_answer(text, allow=("edit", "test", "done"))
    assert p.test == "t" and p.edit == "e"


def test_empty_block_is_ignored():
    p = parse_answer("<test>\n</test>", allow=("test", "done"))
    assert p.error == "no_tags"


def test_choice_tag():
    assert extract("I pick <choice> based on votes.\n<choice>c1234</choice>", "choice") == "c1234"
