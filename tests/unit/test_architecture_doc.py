"""docs/architecture.md cannot drift from the code: its module table names every module
under codemonkeys/ (a package's modules in the package's row, as `name.py`)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "codemonkeys"
DOC = ROOT / "docs" / "architecture.md"


def _module_rows() -> dict[str, str]:
    """First cell's names -> the whole row, for each row of the module table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or set(cells[1].strip()) <= {"-", " "}:
            continue
        for name in re.findall(r"`([^`]+)`", cells[1]):
            rows[name] = line
    return rows


def _undocumented() -> list[str]:
    """Modules the table does not name: a top-level ``x.py`` must appear as `x.py` in the
    table, a package's ``pkg/m.py`` as `m.py` in the row of `pkg/` (or as `pkg/m.py`).
    ``__init__.py`` files are the packages themselves."""
    rows = _module_rows()
    table = "\n".join(dict.fromkeys(rows.values()))
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        package, _, name = rel.rpartition("/")
        if name == "__init__.py":
            continue
        if package:
            documented = f"`{name}`" in rows.get(package + "/", "") or f"`{rel}`" in table
        else:
            documented = f"`{name}`" in table
        if not documented:
            missing.append(rel)
    return missing


def test_architecture_doc_names_every_module():
    missing = _undocumented()
    assert not missing, (
        f"docs/architecture.md does not name {missing}: add each to the module table "
        "(a package's modules in its row) with a one-line job"
    )
