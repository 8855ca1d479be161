"""The search/replace edit format: parse tolerantly, apply strictly, emit a git diff.

A model writes edits as blocks::

    path/to/file.py
    <<<<<<< SEARCH
    exact lines from the original file
    =======
    the lines that replace them
    >>>>>>> REPLACE

Parsing forgives what real models do (a divider of any 3+ '=', code fences around blocks,
a path decorated with backticks or "File:", a missing path on a follow-up block for the
same file). Applying does not guess: every block is located in the ORIGINAL file, exactly
first, then by a unique whitespace-insensitive match; anything else (no match, several
matches, blocks that overlap, a path outside the repository, a missing file) is an error
whose message tells the model what to fix. All errors of one edit are reported together.

The result is a unified diff that ``git apply`` accepts, including new files and files
without a trailing newline (``\\ No newline at end of file``).
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

SEARCH_RE = re.compile(r"^\s*<{3,}\s*SEARCH\s*$")
DIVIDER_RE = re.compile(r"^\s*={3,}\s*$")
REPLACE_RE = re.compile(r"^\s*>{3,}\s*REPLACE\s*$")
FENCE_RE = re.compile(r"^\s*(```|~~~)")

MAX_FUZZY_CANDIDATES = 3
FUZZY_MIN_RATIO = 0.6

ReadFile = Callable[[str], "str | None"]
"""Original content of a repo-relative path, None when the file does not exist."""


class EditError(ValueError):
    """The edit cannot be used; ``str(e)`` is written for the model to act on."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n\n".join(errors))


@dataclass(frozen=True)
class EditBlock:
    path: str
    search: str
    replace: str
    index: int
    """1-based position in the model's answer, used in error messages."""


@dataclass
class EditResult:
    patch: str
    files: list[str]
    notes: list[str] = field(default_factory=list)
    """Things the model should know although the edit applied (e.g. a whitespace-insensitive
    match)."""


# -- parsing ----------------------------------------------------------------------------


def _clean_path(line: str) -> str:
    """``path/to/x.py`` out of decorated lines like "File: `x.py`", "### x.py", "x.py:"."""
    s = line.strip()
    s = re.sub(r"^(#+|\*\*|//)\s*", "", s)
    s = re.sub(r"^(file(name)?|path)\s*:\s*", "", s, flags=re.IGNORECASE)
    s = s.strip().strip("`*'\"").strip()
    s = s.rstrip(":").strip()
    return s


def parse_edit_blocks(text: str) -> list[EditBlock]:
    """All search/replace blocks in ``text``. Raises EditError for a structurally broken
    block (no divider, no REPLACE marker, no path) or when there is no block at all."""
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[EditBlock] = []
    errors: list[str] = []
    last_path: str | None = None
    i = 0
    n = len(lines)
    while i < n:
        if not SEARCH_RE.match(lines[i]):
            i += 1
            continue
        index = len(blocks) + len(errors) + 1
        # path: the closest non-blank, non-fence line above the SEARCH marker
        path: str | None = None
        j = i - 1
        while j >= 0 and (not lines[j].strip() or FENCE_RE.match(lines[j])):
            j -= 1
        if j >= 0 and not REPLACE_RE.match(lines[j]):
            candidate = _clean_path(lines[j])
            if candidate and " " not in candidate and len(candidate) < 300:
                path = candidate
        if path is None:
            path = last_path
        # find the REPLACE marker; the divider is between, prefer the canonical 7 '='
        k = i + 1
        while k < n and not REPLACE_RE.match(lines[k]) and not SEARCH_RE.match(lines[k]):
            k += 1
        if k >= n or not REPLACE_RE.match(lines[k]):
            errors.append(
                f"Block {index}: '<<<<<<< SEARCH' at line {i + 1} of your edit has no matching "
                "'>>>>>>> REPLACE' line."
            )
            i = k
            continue
        dividers = [d for d in range(i + 1, k) if DIVIDER_RE.match(lines[d])]
        if not dividers:
            errors.append(
                f"Block {index}: no '=======' divider between '<<<<<<< SEARCH' and "
                "'>>>>>>> REPLACE'."
            )
            i = k + 1
            continue
        canonical = [d for d in dividers if lines[d].strip() == "======="]
        div = (
            canonical[0]
            if len(canonical) == 1
            else dividers[0]
            if len(dividers) == 1
            else (canonical[0] if canonical else dividers[0])
        )
        if path is None:
            errors.append(
                f"Block {index}: no file path. Put the file's path (relative to the repository "
                "root) on the line just above '<<<<<<< SEARCH'."
            )
            i = k + 1
            continue
        search = "\n".join(lines[i + 1 : div])
        replace = "\n".join(lines[div + 1 : k])
        blocks.append(EditBlock(path=path, search=search, replace=replace, index=index))
        last_path = path
        i = k + 1
    if errors:
        raise EditError(errors)
    if not blocks:
        raise EditError(
            [
                "No search/replace block found. Each change must look like:\n"
                "path/to/file.py\n<<<<<<< SEARCH\n(lines copied exactly from the file)\n"
                "=======\n(new lines)\n>>>>>>> REPLACE"
            ]
        )
    return blocks


# -- paths ------------------------------------------------------------------------------


def normalize_repo_path(path: str) -> str:
    """A repo-relative POSIX path, or EditError when it points outside the repository."""
    raw = path.strip()
    if raw.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", raw) or raw.startswith("~"):
        raise EditError(
            [
                f"Path {raw!r} is absolute. Use a path relative to the repository root "
                f"(e.g. {raw.lstrip('/').split('/', 1)[-1]!r})."
            ]
        )
    p = raw.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    norm = posixpath.normpath(p) if p else ""
    if not norm or norm == "." or norm == ".." or norm.startswith("../"):
        raise EditError([f"Path {raw!r} is outside the repository. Edit files inside it only."])
    if norm == ".git" or norm.startswith(".git/"):
        raise EditError([f"Path {raw!r} is inside .git; edit source files only."])
    return norm


# -- matching ---------------------------------------------------------------------------


def _norm_ws(line: str) -> str:
    return " ".join(line.split())


def _split_keepends(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _body(line: str) -> str:
    return line.rstrip("\r\n")


def _find_all(hay: list[str], needle: list[str], key: Callable[[str], str]) -> list[int]:
    if not needle:
        return []
    hk = [key(x) for x in hay]
    nk = [key(x) for x in needle]
    first = nk[0]
    m = len(nk)
    return [s for s in range(len(hk) - m + 1) if hk[s] == first and hk[s : s + m] == nk]


def _trim_blank_edges(lines: list[str]) -> tuple[list[str], int]:
    """Drop blank lines at both ends (models add them around markers); returns the lines
    and how many leading lines were dropped."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = len(lines)
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end], start


def _fuzzy_candidates(
    file_lines: list[str], search_lines: list[str]
) -> list[tuple[int, float, str]]:
    """Up to MAX_FUZZY_CANDIDATES non-overlapping windows most similar to the search text:
    (1-based line, ratio, text)."""
    m = len(search_lines)
    if m == 0 or not file_lines:
        return []
    target = "\n".join(_norm_ws(x) for x in search_lines)
    normed = [_norm_ws(_body(x)) for x in file_lines]
    scored: list[tuple[float, int]] = []
    sm = difflib.SequenceMatcher(autojunk=False)
    sm.set_seq2(target)
    for s in range(0, max(1, len(file_lines) - m + 1)):
        window = "\n".join(normed[s : s + m])
        sm.set_seq1(window)
        if sm.real_quick_ratio() < FUZZY_MIN_RATIO or sm.quick_ratio() < FUZZY_MIN_RATIO:
            continue
        r = sm.ratio()
        if r >= FUZZY_MIN_RATIO:
            scored.append((r, s))
    scored.sort(key=lambda t: (-t[0], t[1]))
    chosen: list[tuple[int, float, str]] = []
    for r, s in scored:
        if any(abs(s - (c[0] - 1)) < m for c in chosen):
            continue
        chosen.append((s + 1, r, "".join(file_lines[s : s + m])))
        if len(chosen) >= MAX_FUZZY_CANDIDATES:
            break
    return chosen


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _reindent(replace_lines: list[str], search_lines: list[str], matched: list[str]) -> list[str]:
    """Carry the file's indentation over to the replacement after a whitespace-insensitive
    match: unchanged lines are taken verbatim from the file, others get their indentation
    mapped the way the search text's indentation maps onto the file's."""
    mapping: dict[str, str] = {}
    verbatim: dict[str, str] = {}
    for s, f in zip(search_lines, matched, strict=True):
        if s.strip():
            mapping.setdefault(_indent(s), _indent(_body(f)))
            verbatim.setdefault(s, _body(f))
    # a uniform unit conversion (e.g. 4 spaces -> 1 tab) for indents not seen in the search
    unit_s = min((len(k) for k in mapping if k and set(k) == {" "}), default=0)
    tab_file = any("\t" in v for v in mapping.values())
    out = []
    for line in replace_lines:
        if line in verbatim:
            out.append(verbatim[line])
            continue
        ind = _indent(line)
        rest = line[len(ind) :]
        if ind in mapping:
            out.append(mapping[ind] + rest)
        elif unit_s and tab_file and set(ind) <= {" "} and len(ind) % unit_s == 0:
            out.append("\t" * (len(ind) // unit_s) + rest)
        else:
            best = max((k for k in mapping if k and ind.startswith(k)), key=len, default=None)
            out.append(mapping[best] + ind[len(best) :] + rest if best is not None else line)
    return out


@dataclass
class _Located:
    block: EditBlock
    start: int  # 0-based first line
    end: int  # exclusive
    new_lines: list[str]  # with line endings
    note: str = ""


def _line_ending(file_lines: list[str]) -> str:
    for x in file_lines:
        if x.endswith("\r\n"):
            return "\r\n"
        if x.endswith("\n"):
            return "\n"
    return "\n"


def _locate(block: EditBlock, content: str) -> _Located | str:
    file_lines = _split_keepends(content)
    eol = _line_ending(file_lines)
    raw_search = block.search.split("\n")
    search_lines, lead = _trim_blank_edges(raw_search)
    trail = len(raw_search) - lead - len(search_lines)
    replace_lines = block.replace.split("\n") if block.replace else []
    # drop the blank edge lines the search lost too, so both sides stay aligned
    while lead and replace_lines and not replace_lines[0].strip():
        replace_lines.pop(0)
        lead -= 1
    while trail and replace_lines and not replace_lines[-1].strip():
        replace_lines.pop()
        trail -= 1
    where = f"Block {block.index} ({block.path})"
    if not search_lines:
        return (
            f"{where}: the SEARCH part is empty but the file exists. Copy the lines to change "
            "(or a few lines next to where new code goes) into SEARCH."
        )
    exact = _find_all(file_lines, search_lines, key=lambda x: x.rstrip("\r\n"))
    if len(search_lines) != len(raw_search):
        # blank edge lines may be deliberate (deleting blank lines): honour them if they match
        raw_exact = _find_all(file_lines, raw_search, key=lambda x: x.rstrip("\r\n"))
        if len(raw_exact) == 1:
            search_lines, exact = raw_search, raw_exact
            replace_lines = block.replace.split("\n") if block.replace else []
    note = ""
    if len(exact) == 1:
        start = exact[0]
        new = replace_lines
    elif len(exact) > 1:
        lines_at = ", ".join(str(s + 1) for s in exact[:10])
        return (
            f"{where}: the SEARCH text matches {len(exact)} places (lines {lines_at}). "
            "Include more surrounding lines in SEARCH so it matches exactly one place."
        )
    else:
        loose = _find_all(file_lines, search_lines, key=lambda x: _norm_ws(x))
        if len(loose) == 1:
            start = loose[0]
            matched = [_body(x) for x in file_lines[start : start + len(search_lines)]]
            new = _reindent(replace_lines, search_lines, matched)
            note = (
                f"{where}: SEARCH matched lines {start + 1}-{start + len(search_lines)} only when "
                "ignoring whitespace; applied there with the file's indentation."
            )
        elif len(loose) > 1:
            lines_at = ", ".join(str(s + 1) for s in loose[:10])
            return (
                f"{where}: the SEARCH text does not match exactly, and ignoring whitespace it "
                f"matches {len(loose)} places (lines {lines_at}). Copy the lines exactly and "
                "include more surrounding lines."
            )
        else:
            cands = _fuzzy_candidates(file_lines, search_lines)
            msg = f"{where}: the SEARCH text was not found in the file."
            if cands:
                msg += " The most similar parts of the file are:"
                for line_no, ratio, text in cands:
                    msg += f"\n--- lines {line_no}-{line_no + len(search_lines) - 1} ({ratio:.0%} similar):\n{text.rstrip()}"
                msg += "\nCopy the SEARCH lines exactly from the original file."
            else:
                msg += " Nothing similar was found; check the file path and copy the lines exactly."
            return msg
    end = start + len(search_lines)
    new_lines = [x + eol for x in new]
    # the original's last line may lack a newline; keep it that way if we replace it
    if end == len(file_lines) and not file_lines[-1].endswith(("\n", "\r")) and new_lines:
        new_lines[-1] = new_lines[-1][: -len(eol)]
    return _Located(block=block, start=start, end=end, new_lines=new_lines, note=note)


# -- diff -------------------------------------------------------------------------------


def unified_diff(path: str, old: str | None, new: str) -> str:
    """A git-style diff of one file (``old`` None = new file) that ``git apply`` accepts."""
    old_lines = _split_keepends(old or "")
    new_lines = _split_keepends(new)
    if old is not None and old_lines == new_lines:
        return ""
    header = f"diff --git a/{path} b/{path}\n"
    if old is None:
        header += "new file mode 100644\n"
        fromfile = "/dev/null"
    else:
        fromfile = f"a/{path}"
    if not old_lines and not new_lines:
        return header  # an empty new file
    out = [header]
    for i, line in enumerate(
        difflib.unified_diff(old_lines, new_lines, fromfile=fromfile, tofile=f"b/{path}", n=3)
    ):
        if i < 2:  # difflib's ---/+++ lines may carry trailing spaces; write our own
            out.append(f"--- {fromfile}\n" if i == 0 else f"+++ b/{path}\n")
            continue
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


# -- applying ---------------------------------------------------------------------------


def apply_edit_blocks(
    blocks: list[EditBlock], read_file: ReadFile
) -> tuple[dict[str, tuple[str | None, str]], list[str]]:
    """Locate every block in the original files and apply them. Returns
    {path: (original or None, new content)} and notes; raises EditError listing every
    problem found."""
    errors: list[str] = []
    notes: list[str] = []
    by_path: dict[str, list[EditBlock]] = {}
    for b in blocks:
        try:
            p = normalize_repo_path(b.path)
        except EditError as e:
            errors.extend(f"Block {b.index}: {m}" for m in e.errors)
            continue
        by_path.setdefault(p, []).append(
            EditBlock(path=p, search=b.search, replace=b.replace, index=b.index)
        )
    results: dict[str, tuple[str | None, str]] = {}
    for path, pblocks in by_path.items():
        original = read_file(path)
        if original is None:
            searches = [b for b in pblocks if b.search.strip()]
            if searches:
                errors.append(
                    f"Block {searches[0].index}: file {path!r} does not exist. To create a new "
                    "file, leave SEARCH empty; otherwise check the path (relative to the "
                    "repository root)."
                )
                continue
            if len(pblocks) > 1:
                errors.append(
                    f"Blocks {', '.join(str(b.index) for b in pblocks)} all create the new file "
                    f"{path!r}; use a single block."
                )
                continue
            body = pblocks[0].replace.strip("\n")
            results[path] = (None, body + "\n" if body else "")
            continue
        if not original.strip() and len(pblocks) == 1 and not pblocks[0].search.strip():
            body = pblocks[0].replace.strip("\n")
            results[path] = (original, body + "\n" if body else "")
            continue
        located: list[_Located] = []
        for b in pblocks:
            r = _locate(b, original)
            if isinstance(r, str):
                errors.append(r)
            else:
                located.append(r)
                if r.note:
                    notes.append(r.note)
        if len(located) != len(pblocks):
            continue
        located.sort(key=lambda x: (x.start, x.end))
        overlap = False
        for a, c in zip(located, located[1:], strict=False):
            if c.start < a.end:
                errors.append(
                    f"Blocks {a.block.index} and {c.block.index} ({path}) overlap: block "
                    f"{a.block.index} covers lines {a.start + 1}-{a.end} and block "
                    f"{c.block.index} lines {c.start + 1}-{c.end}. Every block is applied to "
                    "the original file; merge them into one block."
                )
                overlap = True
        if overlap:
            continue
        file_lines = _split_keepends(original)
        for loc in reversed(located):
            file_lines[loc.start : loc.end] = loc.new_lines
        results[path] = (original, "".join(file_lines))
    if errors:
        raise EditError(errors)
    return results, notes


def edit_to_patch(text: str, read_file: ReadFile) -> EditResult:
    """Parse an edit, apply it to the original files and return the git diff.
    Raises EditError (every problem, worded for the model) when it cannot be used."""
    blocks = parse_edit_blocks(text)
    results, notes = apply_edit_blocks(blocks, read_file)
    parts = [unified_diff(p, old, new) for p, (old, new) in results.items()]
    patch = "".join(p for p in parts if p)
    if not patch.strip():
        raise EditError(
            ["The edit changes nothing: every REPLACE part is identical to its SEARCH part."]
        )
    return EditResult(
        patch=patch, files=[p for p, part in zip(results, parts, strict=True) if part], notes=notes
    )
