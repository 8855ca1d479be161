"""SWE-bench datasets: loading (hub alias or local file), selection, and conversion of a
row into a ``Problem`` (what the model may see) and a ``Gold`` (what only metrics see).

Rows stay plain dicts in the dataset's own schema so that evaluation can hand them to the
official harness unchanged. Each stage checks the fields *it* needs with ``require``, so
a partial dataset (e.g. test_patch missing) still runs the stages it can, and the stage
that cannot names the row and the field.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codemonkeys.errors import CodemonkeysError
from codemonkeys.problem import Gold, Problem
from codemonkeys.swebench.images import instance_image

log = logging.getLogger(__name__)

HUB_ALIASES: dict[str, str] = {
    # The names the swebench 5.x harness resolves these aliases to (swebench/cli/_datasets.py).
    # The princeton-nlp/* repositories are the same datasets under the old organisation,
    # but only the SWE-bench/* revisions carry the image / eval_script / log_parser /
    # eval_type columns the 5.x harness needs to grade.
    "verified": "SWE-bench/SWE-bench_Verified",
    "lite": "SWE-bench/SWE-bench_Lite",
    "full": "SWE-bench/SWE-bench",
}
LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")

PROBLEM_FIELDS = ("instance_id", "repo", "base_commit", "problem_statement")
"""What a problem needs to be solved (context, generation, selection)."""
GOLD_FIELDS = ("patch", "test_patch", "FAIL_TO_PASS", "PASS_TO_PASS")
"""Reference data: never part of a Problem, never shown to a model."""

TESTBED = "/testbed"
CONDA_ENV_SETUP = (
    "if [ -f /opt/miniconda3/bin/activate ]; then "
    ". /opt/miniconda3/bin/activate && conda activate testbed; fi"
)
"""Activate the testbed conda env the way SWE-bench images expect, only where the image
has conda (locally built test images do not). POSIX ``.`` rather than ``source`` so it
works under sh too; a single line ending in ``fi`` so it exits 0 when there is no conda
and composes with ``;``, ``&&`` or a newline."""


class DatasetError(CodemonkeysError, ValueError):
    """A dataset that cannot be read or a row that lacks what a stage needs. The message
    names the file/row and the field."""


# --------------------------------------------------------------------------- loading


def load_dataset(source: str | Path, *, split: str = "test") -> list[dict[str, Any]]:
    """Rows from a local .json / .jsonl / .parquet file, or from the Hugging Face hub by
    alias (``verified``, ``lite``, ``full``) or full dataset name.

    Every row must be an object with a unique, non-empty string ``instance_id``; other
    fields are checked by the stage that needs them (``require``)."""
    text = str(source)
    path = Path(text).expanduser()
    if path.suffix.lower() in LOCAL_SUFFIXES or path.exists():
        numbered, where = _load_local(path), str(path)
    else:
        name = HUB_ALIASES.get(text.strip().lower(), text)
        numbered, where = _load_hub(name, split), f"{name} [{split}]"
    _check_ids(numbered, where, "line" if path.suffix.lower() == ".jsonl" else "row")
    return [row for _, row in numbered]


Numbered = list[tuple[int, dict[str, Any]]]
"""Rows with the line (JSONL) or position (1-based) they came from, for load errors."""


def _load_local(path: Path) -> Numbered:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(f"{path}: unsupported dataset file type (use .json, .jsonl or .parquet)")
    return reader(path)


def _read_jsonl(path: Path) -> Numbered:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path} line {lineno}: not valid JSON ({e})") from e
        if not isinstance(row, dict):
            raise DatasetError(
                f"{path} line {lineno}: expected a JSON object, got {type(row).__name__}"
            )
        rows.append((lineno, row))
    return rows


def _read_json(path: Path) -> Numbered:
    """A list of rows, or an object of rows by instance_id."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from e
    if isinstance(data, dict):  # {instance_id: row}
        data = [{"instance_id": k, **v} if isinstance(v, dict) else v for k, v in data.items()]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of rows or an object of rows by instance_id")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DatasetError(
                f"{path} row {i + 1}: expected a JSON object, got {type(row).__name__}"
            )
    return list(enumerate(data, start=1))


def _read_parquet(path: Path) -> Numbered:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for a bad file
        raise DatasetError(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from e
    return list(enumerate(rows, start=1))


def _load_hub(name: str, split: str) -> Numbered:
    # probe before importing `datasets` (slow to import) and before its ~30 s of retries
    offline = any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    if not offline and not _hub_reachable():
        raise DatasetError(
            f"the Hugging Face hub is unreachable, so dataset {name!r} cannot be downloaded. "
            "Pass a local .json/.jsonl/.parquet file instead (e.g. exported on a machine with "
            "access), or set HF_HUB_OFFLINE=1 to use a copy in the local datasets cache."
        )
    try:
        import datasets
    except ImportError as e:
        raise DatasetError(
            f"loading {name!r} from the Hugging Face hub needs the `datasets` library "
            "(install codemonkeys[swebench]); or pass a local .json/.jsonl/.parquet file"
        ) from e
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as e:
        raise DatasetError(
            f"could not load {name!r} split {split!r} from the Hugging Face hub "
            f"({type(e).__name__}: {e}); pass a local .json/.jsonl/.parquet file instead"
        ) from e
    return [(i, dict(r)) for i, r in enumerate(ds, start=1)]


def _hub_reachable(timeout: float = 5.0) -> bool:
    """One quick request instead of `datasets`' ~30 s of retries when offline."""
    import httpx

    try:
        httpx.head("https://huggingface.co", timeout=timeout, follow_redirects=False)
        return True
    except httpx.HTTPError:
        return False


def _check_ids(rows: Numbered, where: str, unit: str) -> None:
    seen: dict[str, int] = {}
    for ref, row in rows:
        iid = row.get("instance_id")
        if not isinstance(iid, str) or not iid.strip():
            raise DatasetError(f"{where} {unit} {ref}: missing field 'instance_id'")
        if iid in seen:
            raise DatasetError(
                f"{where}: instance_id {iid!r} appears twice ({unit}s {seen[iid]} and {ref})"
            )
        seen[iid] = ref


def row_ref(row: Mapping[str, Any]) -> str:
    """How error messages name a row (loading guarantees every row an instance_id)."""
    iid = row.get("instance_id")
    return repr(iid) if isinstance(iid, str) and iid else "(without instance_id)"


# --------------------------------------------------------------------------- checks


def missing_fields(row: Mapping[str, Any], fields: Iterable[str]) -> list[str]:
    """Fields that are absent, null, or an empty string."""
    return [
        f
        for f in fields
        if row.get(f) is None or (isinstance(row.get(f), str) and not row[f].strip())
    ]


def require(row: Mapping[str, Any], fields: Iterable[str], purpose: str) -> None:
    """Raise ``DatasetError`` naming the row and every field ``purpose`` needs that the
    row lacks (absent, null or empty)."""
    missing = missing_fields(row, fields)
    if missing:
        detail = ", ".join(
            f"{f} ({'null' if f in row and row[f] is None else 'absent' if f not in row else 'empty'})"
            for f in missing
        )
        raise DatasetError(f"row {row_ref(row)} lacks {detail}, needed for {purpose}")


def listed_tests(row: Mapping[str, Any], field: str) -> list[str]:
    """FAIL_TO_PASS / PASS_TO_PASS as a list, whether stored as a list or as the hub's
    JSON-encoded string. Absent/null -> []."""
    value = row.get(field)
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise DatasetError(f"row {row_ref(row)}: field {field} is not a JSON list ({e})") from e
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise DatasetError(f"row {row_ref(row)}: field {field} must be a list of test names")
    return list(value)


# --------------------------------------------------------------------------- selection


def read_ids_file(path: str | Path) -> list[str]:
    """One instance id per line; blank lines and ``#`` comments ignored."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetError(f"ids file {p} does not exist")
    ids = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    return ids


def parse_slice(text: str) -> slice:
    """``"10:20"``, ``":50"``, ``"100:"``, ``"::2"`` or a single count ``"50"`` (= ``":50"``)."""
    parts = text.strip().split(":")
    try:
        if len(parts) == 1:
            return slice(None, int(parts[0]))
        if len(parts) > 3:
            raise ValueError
        nums = [int(p) if p.strip() else None for p in parts]
    except ValueError as e:
        raise DatasetError(f"bad slice {text!r}: use start:stop[:step], e.g. 10:20") from e
    return slice(*nums)


def select(
    rows: Sequence[dict[str, Any]],
    *,
    ids_file: str | Path | None = None,
    ids: Iterable[str] | None = None,
    regex: str | None = None,
    slice_: str | None = None,
    shuffle_seed: int | None = None,
) -> list[dict[str, Any]]:
    """Filter by ids (file and/or list; unknown ids are an error) and regex (searched in
    instance_id), then shuffle with ``shuffle_seed`` (reproducible), then slice. Dataset
    order is kept otherwise."""
    selected = list(rows)
    wanted: list[str] = []
    if ids_file is not None:
        wanted += read_ids_file(ids_file)
    if ids is not None:
        wanted += list(ids)
    if ids_file is not None or ids is not None:
        known = {r["instance_id"] for r in selected}
        unknown = [i for i in dict.fromkeys(wanted) if i not in known]
        if unknown:
            shown = ", ".join(unknown[:10]) + (
                f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""
            )
            raise DatasetError(
                f"{len(unknown)} requested instance id(s) not in the dataset: {shown}"
            )
        keep = set(wanted)
        selected = [r for r in selected if r["instance_id"] in keep]
    if regex is not None:
        try:
            pattern = re.compile(regex)
        except re.error as e:
            raise DatasetError(f"bad instance regex {regex!r}: {e}") from e
        selected = [r for r in selected if pattern.search(r["instance_id"])]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(selected)
    if slice_ is not None:
        selected = selected[parse_slice(slice_)]
    return selected


# --------------------------------------------------------------------------- conversion


def to_problem(row: Mapping[str, Any]) -> tuple[Problem, Gold]:
    """The row as a ``Problem`` (issue, repo, commit, image: what the model may see) and a
    ``Gold`` (reference patch and tests: metrics only). Raises ``DatasetError`` naming
    the row and the field when something a problem needs is missing."""
    require(row, PROBLEM_FIELDS, "solving the problem")
    version = row.get("version")
    problem = Problem(
        id=row["instance_id"],
        repo=row["repo"],
        issue=row["problem_statement"],
        base_commit=row["base_commit"],
        image=instance_image(row),
        workdir=TESTBED,
        env_setup=CONDA_ENV_SETUP,
        test_language="python",
        version=None if version is None else str(version),
    )
    return problem, to_gold(row)


def to_gold(row: Mapping[str, Any]) -> Gold:
    """The row's reference data. Gold is never needed to solve a problem, so a malformed
    field is left empty and named in ``Gold.errors`` instead of failing the problem."""
    gold = Gold()
    for field, attr in (("patch", "patch"), ("test_patch", "test_patch")):
        value = row.get(field)
        if value is None or isinstance(value, str):
            setattr(gold, attr, value or "")
        else:
            gold.errors.append(f"field {field} is a {type(value).__name__}, expected a string")
    for field, attr in (("FAIL_TO_PASS", "fail_to_pass"), ("PASS_TO_PASS", "pass_to_pass")):
        try:
            setattr(gold, attr, listed_tests(row, field))
        except DatasetError as e:
            gold.errors.append(str(e))
    if gold.errors:
        log.warning(
            "row %s: malformed gold (%s); metrics that need it are unavailable",
            row_ref(row),
            "; ".join(gold.errors),
        )
    return gold


def harness_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as the dataset file handed to the harness: the image filled in by rule
    when the row has none."""
    out = dict(row)
    out.setdefault("version", None)  # make_test_spec indexes it; many rows leave it out
    out["image"] = instance_image(row)
    return out
