"""Candidate identity: a patch is what it does. Different meaning, different candidate
(indentation included); the same files produced, one candidate, whatever the diff's
formatting."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from codemonkeys.candidates import CandidateSet, candidate_id
from codemonkeys.config import Config
from codemonkeys.ensemble import merge_candidates
from codemonkeys.selection.stage import prepare_candidates
from tests.conftest import make_git_repo

PRICING = "".join(
    [
        "def price(order):\n",
        "    total = 0\n",
        "    for line in order.lines:\n",
        "        total += line.amount\n",
        "    return total\n",
        "\n",
        *[f"# filler {i}\n" for i in range(12)],
        "\n",
        "def discount(order):\n",
        "    if order.vip:\n",
        "        return 10\n",
        "    return 0\n",
    ]
)

# The loop body gains a rounding step: inside the loop (per line) or after it (once).
PER_LINE = PRICING.replace(
    "        total += line.amount\n",
    "        total += line.amount\n        total = round(total, 2)\n",
)
ONCE = PRICING.replace(
    "        total += line.amount\n", "        total += line.amount\n    total = round(total, 2)\n"
)
TWO_PLACES = PER_LINE.replace("        return 10\n", "        return 15\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    make_git_repo(path, {"shop/pricing.py": PRICING, "README.md": "shop\n"})
    return path


def diff(repo: Path, new: str, *args: str) -> str:
    """``git diff`` (with ``args``) of shop/pricing.py changed to ``new``."""
    f = repo / "shop" / "pricing.py"
    f.write_text(new)
    try:
        return subprocess.run(
            ["git", "diff", *args], cwd=repo, check=True, capture_output=True, text=True
        ).stdout
    finally:
        f.write_text(PRICING)


def gnu_diff(repo: Path, new: str, context: int) -> str:
    """Another tool's formatting: GNU diff -u, no ``diff --git`` header, timestamps."""
    new_file = repo.parent / "pricing.new.py"
    new_file.write_text(new)
    out = subprocess.run(
        ["diff", f"-U{context}", str(repo / "shop" / "pricing.py"), str(new_file)],
        capture_output=True,
        text=True,
    ).stdout
    head, rest = out.split("\n", 2)[:2], out.split("\n", 2)[2]
    head = [
        "--- a/shop/pricing.py\t2024-01-01 10:00:00.000000000 +0000",
        "+++ b/shop/pricing.py\t2024-01-02 11:00:00.000000000 +0000",
    ]
    return "\n".join(head) + "\n" + rest


def base_of(repo: Path):
    def read(path: str) -> bytes | None:
        f = repo / path
        return f.read_bytes() if f.is_file() else None

    return read


def test_indentation_is_meaning_so_two_such_patches_are_two_candidates(repo):
    per_line, once = diff(repo, PER_LINE), diff(repo, ONCE)
    assert per_line != once
    assert candidate_id(per_line) != candidate_id(once)  # text identity
    assert candidate_id(per_line, base_of(repo)) != candidate_id(once, base_of(repo))
    cs = CandidateSet()
    cs.add_patch(per_line, "a")
    cs.add_patch(once, "b")
    assert [c.sources for c in cs.candidates] == [["a"], ["b"]]


def test_only_line_endings_trailing_whitespace_index_lines_and_offsets_are_normalised(repo):
    patch = diff(repo, PER_LINE)
    other = re.sub(r"(?m)^index .*$", "index 0000000..1111111 100644", patch)
    other = other.replace("@@ -1,5 +1,6 @@", "@@ -10,5 +12,6 @@ class Elsewhere:")
    other = other.replace("\n", "  \r\n")
    assert other != patch and candidate_id(other) == candidate_id(patch)
    for old, new in (("+        total = round", "+    total = round"), ("= round(", "=  round(")):
        changed = patch.replace(old, new)  # indentation, inner spaces: meaning
        assert changed != patch and candidate_id(changed) != candidate_id(patch)


def test_the_same_files_produced_are_one_candidate_whatever_the_formatting(repo):
    base = base_of(repo)
    git_style = diff(repo, TWO_PLACES)  # two hunks, 3 lines of context
    one_hunk = diff(repo, TWO_PLACES, "-U20")  # the hunks merged into one
    gnu = gnu_diff(repo, TWO_PLACES, context=1)  # another tool: 1 line of context
    assert git_style.count("@@ -") == 2 and one_hunk.count("@@ -") == 1
    assert len({git_style, one_hunk, gnu}) == 3
    ids = {candidate_id(p, base) for p in (git_style, one_hunk, gnu)}
    assert len(ids) == 1
    cs = CandidateSet()
    for system, patch in (("sysA", git_style), ("sysB", one_hunk), ("sysC", gnu)):
        cs.add_patch(patch, system, base)
    assert [c.sources for c in cs.candidates] == [["sysA", "sysB", "sysC"]]
    # a different change is still a different candidate
    assert candidate_id(diff(repo, PER_LINE), base) not in ids


def test_a_patch_that_does_not_apply_is_identified_by_its_text(repo):
    base = base_of(repo)
    stale = diff(repo, TWO_PLACES).replace("-        return 10", "-        return 99")
    assert candidate_id(stale, base) == candidate_id(stale)
    assert candidate_id(stale, base) != candidate_id(diff(repo, TWO_PLACES), base)


def test_ensembling_gives_one_top_k_slot_to_one_change_in_two_formats(repo):
    """Other systems' predictions are merged by text, then selection (which has the base
    files) makes the same change one candidate with both systems as its sources."""
    git_style, gnu = diff(repo, TWO_PLACES), gnu_diff(repo, TWO_PLACES, context=2)
    other = diff(repo, ONCE)
    merged, _ = merge_candidates([{"i": [("sysA", git_style), ("sysB", gnu), ("sysC", other)]}])
    prepared, _ = prepare_candidates(merged["i"], Config(), base_of(repo))
    assert sorted(c.sources for c in prepared.candidates) == [["sysA", "sysB"], ["sysC"]]
