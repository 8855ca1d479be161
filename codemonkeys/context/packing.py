"""Packing: the ranked files into the token budget, and the text block they render to.

Greedy in rank order, but a file that does not fit is *skipped* and packing goes on with
the next one (the original stopped at the first misfit). A relevant file that alone
exceeds the budget is shrunk to its outline (signatures kept, bodies ``... # omitted``)
when ``shrink_large_files`` is on, and packed if the outline fits.

Rendered format (see docs/context-tokens.md): each file is a ``### path`` header and the
file verbatim in a fenced block, without line numbers. Edits downstream are search/replace
blocks that must quote the file exactly; line numbers would invite the model to copy them
into the search text and cost ~10% more tokens. The fence is longer than any backtick run
inside the file, so Markdown files cannot close it early.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel, Field

from codemonkeys.context.shrink import shrink_source
from codemonkeys.llm.tokens import count_tokens

_LANG = {
    "py": "python",
    "pyi": "python",
    "js": "javascript",
    "mjs": "javascript",
    "cjs": "javascript",
    "ts": "typescript",
    "tsx": "tsx",
    "jsx": "jsx",
    "c": "c",
    "h": "c",
    "cc": "cpp",
    "cpp": "cpp",
    "hpp": "cpp",
    "cxx": "cpp",
    "java": "java",
    "go": "go",
    "rs": "rust",
    "rb": "ruby",
    "php": "php",
    "cs": "csharp",
    "kt": "kotlin",
    "swift": "swift",
    "scala": "scala",
    "sh": "bash",
    "md": "markdown",
    "rst": "rst",
    "toml": "toml",
    "yaml": "yaml",
    "yml": "yaml",
    "json": "json",
    "html": "html",
    "css": "css",
    "sql": "sql",
    "pyx": "cython",
    "txt": "text",
}
SHRUNK_NOTE = "outline: function bodies omitted"


class PackedFile(BaseModel):
    path: str
    tokens: int
    """Tokens of the rendered block (header, fence and content)."""
    file_tokens: int
    """Tokens of the whole original file."""
    shrunk: bool = False
    content: str


class SkippedFile(BaseModel):
    path: str
    tokens: int
    reason: str
    """does_not_fit (no room left), too_large (alone over the budget, shrinking off or
    not enough), unreadable."""


class Packing(BaseModel):
    budget: int
    packed: list[PackedFile] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return sum(p.tokens for p in self.packed)


def render_file(path: str, content: str, *, shrunk: bool = False) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    longest = max((len(m) for m in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    note = f" ({SHRUNK_NOTE})" if shrunk else ""
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"### {path}{note}\n{fence}{_LANG.get(ext, '')}\n{body}{fence}\n"


def render_files(files: list[PackedFile]) -> str:
    return "\n".join(render_file(f.path, f.content, shrunk=f.shrunk) for f in files)


def pack_files(
    ranked: list[str],
    read: Callable[[str], str],
    budget: int,
    *,
    shrink: bool = True,
) -> Packing:
    """Pack ``ranked`` paths (best first) into ``budget`` tokens; ``read(path)`` gives the
    file text. Never raises for one file: an unreadable file is skipped with its reason."""
    out = Packing(budget=budget)
    used = 0
    for path in ranked:
        try:
            text = read(path)
        except OSError as e:
            out.skipped.append(SkippedFile(path=path, tokens=0, reason=f"unreadable: {e}"))
            continue
        file_tokens = count_tokens(text)
        block = count_tokens(render_file(path, text))
        if used + block <= budget:
            out.packed.append(
                PackedFile(path=path, tokens=block, file_tokens=file_tokens, content=text)
            )
            used += block
            continue
        if block > budget and shrink:
            outline = shrink_source(path, text)
            if outline != text:
                small = count_tokens(render_file(path, outline, shrunk=True))
                if used + small <= budget:
                    out.packed.append(
                        PackedFile(
                            path=path,
                            tokens=small,
                            file_tokens=file_tokens,
                            shrunk=True,
                            content=outline,
                        )
                    )
                    used += small
                    continue
                reason = "does_not_fit" if small <= budget else "too_large"
                out.skipped.append(SkippedFile(path=path, tokens=block, reason=reason))
                continue
        reason = "too_large" if block > budget else "does_not_fit"
        out.skipped.append(SkippedFile(path=path, tokens=block, reason=reason))
    return out
