"""Tag parsing that survives real model output.

Models answer with ``<test>...</test>``, ``<edit>...</edit>``, ``<done>``, ``<choice>...``.
Their reasoning often mentions the tags ("I will put the script in <test> tags"), they
revise a block and write it again, they wrap the content in code fences, and an answer cut
off by the token limit lacks its closing tag. The rules:

- the LAST complete block wins; blocks whose tags stand on their own lines are preferred
  over tags quoted inside a sentence;
- with no complete block, an opening tag whose block runs to the end of the output counts
  (a missing closing tag);
- one outer code fence inside a block is stripped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FENCE_OPEN_RE = re.compile(r"^\s*(```|~~~)[\w.+-]*\s*$")
FENCE_CLOSE_RE = re.compile(r"^\s*(```|~~~)\s*$")


@dataclass(frozen=True)
class Block:
    content: str
    start: int
    """Offset of the opening tag in the text."""
    end: int
    """Offset just after the closing tag (len(text) when unclosed)."""
    closed: bool
    anchored: bool
    """Both tags stand at a line start / line end, i.e. not quoted inside a sentence."""


def _open_re(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<\s*{re.escape(tag)}\s*>", re.IGNORECASE)


def _close_re(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<\s*/\s*{re.escape(tag)}\s*>", re.IGNORECASE)


def _line_start(text: str, pos: int) -> bool:
    i = text.rfind("\n", 0, pos) + 1
    return not text[i:pos].strip()


def _line_end(text: str, pos: int) -> bool:
    j = text.find("\n", pos)
    rest = text[pos : len(text) if j < 0 else j]
    return not rest.strip()


def strip_fences(content: str) -> str:
    """Remove one code fence around the whole content, and surrounding blank lines."""
    lines = content.strip("\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) >= 2 and FENCE_OPEN_RE.match(lines[0]) and FENCE_CLOSE_RE.match(lines[-1]):
        lines = lines[1:-1]
    elif (
        lines
        and FENCE_OPEN_RE.match(lines[0])
        and not any(FENCE_CLOSE_RE.match(x) for x in lines[1:])
    ):
        lines = lines[1:]  # an opening fence whose closing fence was cut off
    return "\n".join(lines)


def find_blocks(text: str, tag: str) -> list[Block]:
    """Complete blocks of ``tag`` in order. Each closing tag pairs with the nearest opening
    tag before it (so a tag quoted earlier in the reasoning is skipped over)."""
    opens = [m for m in _open_re(tag).finditer(text)]
    closes = [m for m in _close_re(tag).finditer(text)]
    blocks: list[Block] = []
    prev_end = 0
    for c in closes:
        cands = [o for o in opens if prev_end <= o.start() and o.end() <= c.start()]
        if not cands:
            continue
        anchored_opens = [o for o in cands if _line_start(text, o.start())]
        o = anchored_opens[-1] if anchored_opens else cands[-1]
        anchored = (
            bool(anchored_opens)
            and _line_end(text, o.end())
            and (_line_start(text, c.start()) or _line_end(text, c.end()))
        )
        blocks.append(
            Block(
                content=strip_fences(text[o.end() : c.start()]),
                start=o.start(),
                end=c.end(),
                closed=True,
                anchored=anchored,
            )
        )
        prev_end = c.end()
    return blocks


def unclosed_tail(text: str, tag: str) -> Block | None:
    """An opening tag after the last closing tag whose block runs to the end of the text
    (an answer cut off before its closing tag)."""
    closes = list(_close_re(tag).finditer(text))
    after = closes[-1].end() if closes else 0
    opens = [m for m in _open_re(tag).finditer(text) if m.start() >= after]
    if not opens:
        return None
    anchored = [o for o in opens if _line_start(text, o.start()) and _line_end(text, o.end())]
    o = anchored[-1] if anchored else opens[-1]
    content = strip_fences(text[o.end() :])
    if not content.strip():
        return None
    return Block(
        content=content, start=o.start(), end=len(text), closed=False, anchored=bool(anchored)
    )


def last_block(text: str, tag: str, *, allow_unclosed: bool = True) -> Block | None:
    """The block that counts: the last anchored complete block, else the last complete
    block, else (optionally) an unclosed block at the end."""
    blocks = find_blocks(text, tag)
    anchored = [b for b in blocks if b.anchored and b.content.strip()]
    if anchored:
        return anchored[-1]
    nonempty = [b for b in blocks if b.content.strip()]
    if nonempty:
        return nonempty[-1]
    if allow_unclosed:
        return unclosed_tail(text, tag)
    return None


def extract(text: str, tag: str, *, allow_unclosed: bool = True) -> str | None:
    b = last_block(text, tag, allow_unclosed=allow_unclosed)
    return b.content if b else None


def has_marker(text: str, tag: str) -> int | None:
    """Offset of the last ``<tag>``, ``<tag/>`` or ``<tag></tag>`` marker standing on its own
    (not quoted mid-sentence), else of any occurrence; None when absent."""
    pat = re.compile(
        rf"<\s*{re.escape(tag)}\s*/?\s*>(\s*<\s*/\s*{re.escape(tag)}\s*>)?", re.IGNORECASE
    )
    hits = list(pat.finditer(text))
    if not hits:
        return None
    standalone = [h for h in hits if _line_start(text, h.start()) or _line_end(text, h.end())]
    return (standalone or hits)[-1].start()


@dataclass
class Parsed:
    """What one answer asks for. ``error`` set: the answer cannot be used (misparse)."""

    done: bool = False
    test: str | None = None
    edit: str | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)


def parse_answer(text: str, *, allow: tuple[str, ...]) -> Parsed:
    """Parse an answer that may contain any of ``allow`` ("test", "edit", "done").

    A new test or edit takes precedence over ``<done>`` (the model cannot approve code it
    has not seen run). Several distinct complete ``<edit>`` blocks are an error, because it
    is unclear whether they are drafts or parts of one change; several ``<test>`` blocks
    are revisions of one script, so the last wins.
    """
    out = Parsed()
    if "edit" in allow:
        edits = [b for b in find_blocks(text, "edit") if b.content.strip()]
        anchored = [b for b in edits if b.anchored] or edits
        distinct = list(dict.fromkeys(b.content.strip() for b in anchored))
        if len(distinct) > 1:
            out.error = "multiple_edits"
            out.notes.append(f"{len(distinct)} different <edit> blocks")
            return out
        out.edit = extract(text, "edit")
    if "test" in allow:
        out.test = extract(text, "test")
    if "done" in allow and out.edit is None and out.test is None:
        out.done = has_marker(text, "done") is not None
    if not out.done and out.edit is None and out.test is None:
        out.error = "no_tags"
    return out
