"""Prompt templates live in ``prompts/<stage>/<name>.j2`` (Jinja2, strict undefined).

Nothing in the code carries prompt text; stages render a template by name. The hash of a
stage's templates is part of its config fingerprint, so editing a prompt invalidates the
records it produced.

A user overrides templates file by file: ``prompts.dir`` in the config names a directory
laid out like ``prompts/`` (``generation/edit_system.j2`` ...); a template found there is
used instead of the packaged one of the same name, every other template stays packaged
(``{% include %}`` resolves the same way). ``PromptTemplates`` is that set; the stage
fingerprint (``Config.fingerprint``) hashes the templates it resolves to, so overriding
one changes the fingerprints of the stages that use it, and an override identical to the
packaged file changes nothing.

The templates a job renders with are chosen at the job's entry (``use_templates``, next
to the job's signal handling), because the stages render by name from many places;
``render``/``prompt_hash`` use them, the packaged set when no job chose another.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from codemonkeys.errors import CodemonkeysError

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


class PromptOverrideError(CodemonkeysError, ValueError):
    """``prompts.dir`` does not exist or holds a template no stage uses (a typo would
    otherwise silently leave the packaged template in use)."""


def prompts_dir() -> Path:
    """The packaged templates (the repository's ``prompts/``, or the installed copy)."""
    for d in _CANDIDATES:
        if d.is_dir():
            return d
    raise FileNotFoundError(f"prompt templates not found in any of {[str(d) for d in _CANDIDATES]}")


def _template_names(root: Path) -> set[str]:
    return {f.relative_to(root).as_posix() for f in root.rglob("*.j2") if f.is_file()}


class PromptTemplates:
    """The packaged templates, each replaced by the file of the same relative name in
    ``override_dir`` when there is one."""

    def __init__(self, override_dir: Path | None = None):
        self.packaged = prompts_dir()
        self.override = override_dir.resolve() if override_dir is not None else None
        if self.override is not None:
            self._check_override(self.override)
        roots = (
            [str(self.packaged)]
            if self.override is None
            else [str(self.override), str(self.packaged)]
        )
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(roots),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def _check_override(self, root: Path) -> None:
        if not root.is_dir():
            raise PromptOverrideError(
                f"prompts.dir {root} is not a directory",
                fix="create it with the templates to override (e.g. generation/edit_system.j2 "
                "copied from the packaged prompts/), or unset prompts.dir",
            )
        # partials (``_name.j2``) may be new: an overriding template can include them
        unknown = sorted(
            n
            for n in _template_names(root) - _template_names(self.packaged)
            if not Path(n).name.startswith("_")
        )
        if unknown:
            raise PromptOverrideError(
                f"prompts.dir {root} holds templates no stage uses: {', '.join(unknown)}",
                fix="name each file like the packaged template it replaces "
                f"({', '.join(sorted(_template_names(self.packaged))[:4])}, ...)",
            )

    def path(self, name: str) -> Path:
        """The file used for template ``name`` (``"generation/edit_system"``)."""
        relative = f"{name}.j2"
        if self.override is not None and (self.override / relative).is_file():
            return self.override / relative
        return self.packaged / relative

    def stage_names(self, stage: str) -> list[str]:
        """Relative names (``relevance/system.j2``) of the templates a stage depends on."""
        roots = [self.packaged] + ([self.override] if self.override is not None else [])
        names: list[str] = []
        for sub in STAGE_PROMPT_DIRS.get(stage, (stage,)):  # in this order, then by name
            found: set[str] = set()
            for root in roots:
                if (root / sub).is_dir():
                    found |= {f"{sub}/{n}" for n in _template_names(root / sub)}
            names += sorted(found)
        return names

    def stage_hash(self, stage: str) -> str:
        """Hash of the stage's templates as they resolve (name + content of each)."""
        h = hashlib.sha256()
        for relative in self.stage_names(stage):
            h.update(relative.encode())
            h.update(self.path(relative.removesuffix(".j2")).read_bytes())
        return h.hexdigest()[:16]

    def render(self, name: str, **values: Any) -> str:
        """Render template ``name``, e.g. ``render("generation/test_system", issue=...)``."""
        return self._env.get_template(f"{name}.j2").render(**values).strip() + "\n"


@lru_cache(maxsize=8)
def templates_for(override_dir: Path | None) -> PromptTemplates:
    """The template set for a config's ``prompts.dir`` (one per directory)."""
    return PromptTemplates(override_dir)


_job_templates: PromptTemplates | None = None
_job_lock = threading.Lock()


@contextmanager
def use_templates(templates: PromptTemplates) -> Iterator[PromptTemplates]:
    """The templates ``render`` and ``prompt_hash`` use while a job runs (every thread of
    it); the previous choice comes back when the job returns."""
    global _job_templates
    with _job_lock:
        previous, _job_templates = _job_templates, templates
    try:
        yield templates
    finally:
        with _job_lock:
            _job_templates = previous


def current_templates() -> PromptTemplates:
    """The running job's templates, the packaged ones outside a job."""
    return _job_templates if _job_templates is not None else templates_for(None)


def render(name: str, **values: Any) -> str:
    """Render ``prompts/<name>.j2`` (or the job's override of it), e.g.
    ``render("generation/test_system", issue=...)``."""
    return current_templates().render(name, **values)


def prompt_hash(stage: str) -> str:
    """Hash of the stage's templates as the running job resolves them."""
    return current_templates().stage_hash(stage)
