"""Prompt templates live in ``prompts/<stage>/<name>.j2`` (Jinja2, strict undefined).

Nothing in the code carries prompt text; stages render a template by name. The hash of a
stage's templates is part of its config fingerprint, so editing a prompt invalidates the
records it produced.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATES = (_PACKAGE_DIR.parent / "prompts", _PACKAGE_DIR / "_prompts")

# Which template folders each stage's fingerprint covers.
STAGE_PROMPT_DIRS = {
    "relevance": ("relevance",),
    "ranking": ("relevance", "ranking"),
    "context": ("relevance", "ranking"),
    "generation": ("generation",),
    "selection": ("selection", "generation"),
}


def prompts_dir() -> Path:
    for d in _CANDIDATES:
        if d.is_dir():
            return d
    raise FileNotFoundError(f"prompt templates not found in any of {[str(d) for d in _CANDIDATES]}")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(prompts_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(name: str, **values: Any) -> str:
    """Render ``prompts/<name>.j2``, e.g. ``render("generation/test_system", issue=...)``."""
    return _env().get_template(f"{name}.j2").render(**values).strip() + "\n"


def prompt_hash(stage: str) -> str:
    h = hashlib.sha256()
    root = prompts_dir()
    for sub in STAGE_PROMPT_DIRS.get(stage, (stage,)):
        folder = root / sub
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*.j2")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
