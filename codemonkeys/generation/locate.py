"""Where one search/replace block goes in the ORIGINAL file, without guessing.

The SEARCH lines are found exactly first (blank lines around them ignored unless they
match too), then by a unique whitespace-insensitive match (the replacement then takes the
file's indentation). Anything else (no match, several matches) is a message for the model;
when nothing matches it shows the most similar parts of the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

MAX_FUZZY_CANDIDATES = 3
FUZZY_MIN_RATIO = 0.6


@dataclass
class Located:
    start: int
    """0-based first line replaced."""
    end: int
    """Exclusive."""
    new_lines: list[str]
    """The replacement, with the file's line endings."""
    note: str = ""
    """Set when the match ignored whitespace."""


def split_keepends(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _norm_ws(line: str) -> str:
    return " ".join(line.split())


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


def _line_ending(file_lines: list[str]) -> str:
    for x in file_lines:
        if x.endswith("\r\n"):
            return "\r\n"
        if x.endswith("\n"):
            return "\n"
    return "\n"


def _lines(text: str) -> list[str]:
    return text.split("\n") if text else []


def _trimmed_sides(search: str, replace: str) -> tuple[list[str], list[str]]:
    """The SEARCH lines without blank edge lines, and the REPLACE lines without as many
    blank edge lines (so both sides stay aligned)."""
    raw_search = search.split("\n")
    search_lines, lead = _trim_blank_edges(raw_search)
    trail = len(raw_search) - lead - len(search_lines)
    replace_lines = _lines(replace)
    while lead and replace_lines and not replace_lines[0].strip():
        replace_lines.pop(0)
        lead -= 1
    while trail and replace_lines and not replace_lines[-1].strip():
        replace_lines.pop()
        trail -= 1
    return search_lines, replace_lines


def _not_found(where: str, file_lines: list[str], search_lines: list[str]) -> str:
    cands = _fuzzy_candidates(file_lines, search_lines)
    msg = f"{where}: the SEARCH text was not found in the file."
    if not cands:
        return msg + " Nothing similar was found; check the file path and copy the lines exactly."
    msg += " The most similar parts of the file are:"
    for line_no, ratio, text in cands:
        last = line_no + len(search_lines) - 1
        msg += f"\n--- lines {line_no}-{last} ({ratio:.0%} similar):\n{text.rstrip()}"
    return msg + "\nCopy the SEARCH lines exactly from the original file."


def _loose_match(
    where: str, file_lines: list[str], search_lines: list[str], replace_lines: list[str]
) -> tuple[int, list[str], str] | str:
    """A unique whitespace-insensitive match: (start, reindented replacement, note), else
    the message for the model."""
    loose = _find_all(file_lines, search_lines, key=_norm_ws)
    if len(loose) > 1:
        lines_at = ", ".join(str(s + 1) for s in loose[:10])
        return (
            f"{where}: the SEARCH text does not match exactly, and ignoring whitespace it "
            f"matches {len(loose)} places (lines {lines_at}). Copy the lines exactly and "
            "include more surrounding lines."
        )
    if not loose:
        return _not_found(where, file_lines, search_lines)
    start = loose[0]
    matched = [_body(x) for x in file_lines[start : start + len(search_lines)]]
    note = (
        f"{where}: SEARCH matched lines {start + 1}-{start + len(search_lines)} only when "
        "ignoring whitespace; applied there with the file's indentation."
    )
    return start, _reindent(replace_lines, search_lines, matched), note


def locate(search: str, replace: str, content: str, where: str) -> Located | str:
    """Where ``search`` is in ``content`` and what replaces it, or a message for the model
    (``where`` names the block in it)."""
    file_lines = split_keepends(content)
    search_lines, replace_lines = _trimmed_sides(search, replace)
    if not search_lines:
        return (
            f"{where}: the SEARCH part is empty but the file exists. Copy the lines to change "
            "(or a few lines next to where new code goes) into SEARCH."
        )
    exact = _find_all(file_lines, search_lines, key=_body)
    raw_search = search.split("\n")
    if len(search_lines) != len(raw_search):
        # blank edge lines may be deliberate (deleting blank lines): honour them if they match
        raw_exact = _find_all(file_lines, raw_search, key=_body)
        if len(raw_exact) == 1:
            search_lines, exact, replace_lines = raw_search, raw_exact, _lines(replace)
    if len(exact) > 1:
        lines_at = ", ".join(str(s + 1) for s in exact[:10])
        return (
            f"{where}: the SEARCH text matches {len(exact)} places (lines {lines_at}). "
            "Include more surrounding lines in SEARCH so it matches exactly one place."
        )
    if exact:
        start, new, note = exact[0], replace_lines, ""
    else:
        loose = _loose_match(where, file_lines, search_lines, replace_lines)
        if isinstance(loose, str):
            return loose
        start, new, note = loose
    return _located(file_lines, start, start + len(search_lines), new, note)


def _located(file_lines: list[str], start: int, end: int, new: list[str], note: str) -> Located:
    eol = _line_ending(file_lines)
    new_lines = [x + eol for x in new]
    # the original's last line may lack a newline; keep it that way if we replace it
    if end == len(file_lines) and not file_lines[-1].endswith(("\n", "\r")) and new_lines:
        new_lines[-1] = new_lines[-1][: -len(eol)]
    return Located(start=start, end=end, new_lines=new_lines, note=note)
