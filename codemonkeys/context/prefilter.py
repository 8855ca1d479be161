"""Prefilter: a cheap lexical ranking of the enumerated files against the issue, so the
relevance model reads only the top share (opt-in, ``context.prefilter``).

Each file is a bag of words made of its path, its identifiers (whole and split at ``_`` and
camelCase humps) and its prose; the issue is tokenised the same way. Files are scored with
BM25 (``bm25s``), normalised to [0, 1], plus boosts for what the issue names outright:

- the file's path, or its dotted module path (``sympy/core/basic.py``, ``sympy.core.basic``);
- the file's name without extension as a word of the issue (``autodoc``, ``basic``);
- functions/classes the file defines that the issue names as code (``_print_Mul``,
  ``Matrix.det``, ``foo()`` or anything in backticks).

The top ``prefilter_share`` of files (at least ``prefilter_min_files``) are kept; every other
file is recorded in the relevance record's ``excluded`` map with reason ``prefilter``, never
dropped silently. Only the issue text is used to rank (never gold data). The kept share was
chosen from ``tests/benchmarks/bench_prefilter.py`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path, PurePosixPath

import bm25s
from pydantic import BaseModel, Field

from codemonkeys.config import ContextConfig
from codemonkeys.context.files import Enumeration, SourceFile, read_text

logging.getLogger("bm25s").setLevel(logging.WARNING)  # its index-building chatter

PREFILTER_REASON = "prefilter"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HUMPS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_DEFINES = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.M)
_BACKTICKED = re.compile(r"`+([^`\n]{1,200})`+")
_CALLED = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\(")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_PATHLIKE = re.compile(r"[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)+")

STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "is",
        "it",
        "be",
        "for",
        "on",
        "with",
        "as",
        "by",
        "at",
        "this",
        "that",
        "from",
        "not",
        "are",
        "was",
        "if",
        "else",
        "elif",
        "def",
        "class",
        "self",
        "return",
        "import",
        "none",
        "true",
        "false",
    ]
)
MAX_TEXT_CHARS = 200_000
"""Only the start of a very large file is tokenised (the ranking stays fast)."""

# Boosts added to the normalised BM25 score (which is in [0, 1]).
BOOST_PATH_NAMED = 3.0
BOOST_NAME_WORD = 0.5
BOOST_DEFINES_NAMED = 1.0


@lru_cache(maxsize=1 << 16)
def split_identifier(ident: str) -> tuple[str, ...]:
    """``_print_MatMul`` -> (``_print_matmul``, ``print``, ``mat``, ``mul``), stopwords out.
    (Memoised: a pure function of its argument, and identifiers repeat a lot.)"""
    whole = ident.lower()
    parts = [p.lower() for chunk in ident.split("_") for p in _HUMPS.findall(chunk)]
    out = [whole] if len(whole) > 1 else []
    out.extend(p for p in parts if p != whole and len(p) > 1)
    return tuple(sys.intern(t) for t in out if t not in STOPWORDS)


def terms(text: str) -> list[str]:
    """Words of ``text`` for BM25: identifiers whole and split, lower case, no stopwords."""
    out: list[str] = []
    for ident, n in Counter(_IDENT.findall(text[:MAX_TEXT_CHARS])).items():
        out.extend(split_identifier(ident) * n)
    return out


def file_terms(path: str, text: str) -> list[str]:
    """A file's document: its path (counted twice, it is short and telling) and its text."""
    path_words = terms(path.replace("/", " ").replace(".", " "))
    return path_words * 2 + terms(text)


def named_code(issue: str) -> set[str]:
    """Identifiers the issue names as code: backticked, called ``f(``, dotted ``a.b``, or
    shaped like code (``snake_case``, ``camelCase``). Each dotted name gives its parts too."""
    found: set[str] = set()
    candidates: list[str] = []
    for m in _BACKTICKED.findall(issue):
        candidates.extend(_IDENT.findall(m))
    candidates.extend(_CALLED.findall(issue))
    candidates.extend(_DOTTED.findall(issue))
    for ident in _IDENT.findall(issue):
        if "_" in ident.strip("_") or re.search(r"[a-z][A-Z]", ident):
            candidates.append(ident)
    for c in candidates:
        for part in c.split("."):
            if len(part) > 2 and part.lower() not in STOPWORDS:
                found.add(part)
    return found


def path_named(path: str, issue: str, mentions: list[str] | None = None) -> bool:
    """The issue names this file: its path (or a path ending with it), or its module path.
    ``mentions``: the issue's path-like words (``_PATHLIKE``), when already found."""
    p = PurePosixPath(path)
    module = ".".join(p.with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")]
    if mentions is None:
        mentions = _PATHLIKE.findall(issue)
    if path in issue or any(path.endswith(m) and len(m) > len(p.name) for m in mentions):
        return True
    if module not in issue:
        return False
    return "." in module and re.search(rf"(?<![\w.]){re.escape(module)}(?![\w])", issue) is not None


class RankedFile(BaseModel):
    path: str
    score: float
    bm25: float
    boosts: list[str] = Field(default_factory=list)


def rank_files(
    issue: str,
    files: list[SourceFile],
    text_of: Callable[[SourceFile], str],
    *,
    terms_of: Callable[[SourceFile, str], list[str]] | None = None,
) -> list[RankedFile]:
    """Every file with its score, best first (ties in path order)."""
    if not files:
        return []
    texts = [text_of(f) for f in files]
    terms_of = terms_of or (lambda f, text: file_terms(f.path, text))
    corpus = [terms_of(f, text) or ["_empty_"] for f, text in zip(files, texts, strict=True)]
    query = [t for t in dict.fromkeys(terms(issue))]
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    raw = retriever.get_scores(query) if query else [0.0] * len(files)
    top = max(float(max(raw)), 1e-9)
    issue_words = {t for t in terms(issue)}
    named = named_code(issue)
    mentions = _PATHLIKE.findall(issue)
    ranked: list[RankedFile] = []
    for f, text, score in zip(files, texts, raw, strict=True):
        bm = float(score) / top
        boosts: list[str] = []
        total = bm
        if path_named(f.path, issue, mentions):
            total += BOOST_PATH_NAMED
            boosts.append("path_named")
        stem = PurePosixPath(f.path).stem.lower()
        if stem not in ("__init__", "utils", "base", "core") and stem in issue_words:
            total += BOOST_NAME_WORD
            boosts.append("name_word")
        defined = named.intersection(_DEFINES.findall(text[:MAX_TEXT_CHARS]))
        if defined:
            total += BOOST_DEFINES_NAMED * min(1.0, 0.5 + 0.25 * len(defined))
            boosts.append("defines:" + ",".join(sorted(defined)[:5]))
        ranked.append(RankedFile(path=f.path, score=total, bm25=bm, boosts=boosts))
    ranked.sort(key=lambda r: -r.score)
    return ranked


def kept_count(n_files: int, share: float, min_files: int) -> int:
    """How many of ``n_files`` the prefilter keeps for ``share`` in (0, 1]."""
    return min(n_files, max(min_files, math.ceil(share * n_files)))


def prefilter(
    issue: str,
    files: list[SourceFile],
    text_of: Callable[[SourceFile], str],
    *,
    share: float,
    min_files: int,
) -> tuple[list[SourceFile], list[RankedFile]]:
    """(kept files in their original order, the files skipped, best first)."""
    ranked = rank_files(issue, files, text_of)
    n = kept_count(len(files), share, min_files)
    keep = {r.path for r in ranked[:n]}
    return [f for f in files if f.path in keep], ranked[n:]


def apply_prefilter(
    issue: str, repo_dir: Path, enum: Enumeration, cfg: ContextConfig
) -> Enumeration:
    """The enumeration with only the kept files; each skipped file is in ``excluded`` with
    reason ``prefilter``."""
    kept, skipped = prefilter(
        issue,
        enum.files,
        lambda f: read_text(repo_dir, f.path),
        share=cfg.prefilter_share,
        min_files=cfg.prefilter_min_files,
    )
    excluded = dict(enum.excluded)
    excluded.update({r.path: PREFILTER_REASON for r in skipped})
    return Enumeration(files=kept, excluded=dict(sorted(excluded.items())))
