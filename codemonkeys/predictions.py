"""Predictions in the SWE-bench harness format, read and written.

Rows are ``{"instance_id", "model_name_or_path", "model_patch"}``. Two file forms:

- JSON lines (``.jsonl``): one row per line (what the harness and the leaderboard use);
- JSON dict (``.json``): ``{instance_id: row}`` (the harness's other accepted form, and
  what mini-swe-agent and SWE-agent write as ``preds.json``).

A JSON list of rows is read too. Malformed input raises ``PredictionsError`` naming the
file and the line (or key) at fault; jobs reading many rows (``ensemble``) collect a
malformed row's error instead and go on with the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from codemonkeys.errors import CodemonkeysError
from codemonkeys.selection.records import SelectionRecord
from codemonkeys.store import atomic_write_text

PredictionFormat = Literal["jsonl", "json"]


class PredictionsError(CodemonkeysError, ValueError):
    """A predictions file could not be read; the message names the file and the row."""


def prediction_row(instance_id: str, model_name: str, patch: str) -> dict[str, str]:
    return {"instance_id": instance_id, "model_name_or_path": model_name, "model_patch": patch}


def write_predictions(
    rows: Iterable[dict[str, str]], path: Path, fmt: PredictionFormat = "jsonl"
) -> Path:
    """Write ``rows`` atomically, in instance-id order (one row per instance id)."""
    by_id: dict[str, dict[str, str]] = {}
    for r in rows:
        by_id[r["instance_id"]] = r
    ordered = [by_id[k] for k in sorted(by_id)]
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered)
    elif fmt == "json":
        text = (
            json.dumps({r["instance_id"]: r for r in ordered}, indent=1, ensure_ascii=False) + "\n"
        )
    else:
        raise ValueError(f"unknown predictions format {fmt!r} (jsonl or json)")
    path = Path(path)
    atomic_write_text(path, text)
    return path


def _check_row(row: Any, where: str, key_id: str | None = None) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise PredictionsError(
            f"{where}: expected an object with instance_id and model_patch, got {type(row).__name__}"
        )
    iid = row.get("instance_id", key_id)
    if not isinstance(iid, str) or not iid:
        raise PredictionsError(f"{where}: missing or non-string 'instance_id'")
    if key_id is not None and iid != key_id:
        raise PredictionsError(f"{where}: key {key_id!r} does not match its instance_id {iid!r}")
    patch = row.get("model_patch")
    if "model_patch" not in row:
        raise PredictionsError(f"{where}: missing 'model_patch' (instance {iid})")
    if patch is not None and not isinstance(patch, str):
        raise PredictionsError(
            f"{where}: 'model_patch' of {iid} is a {type(patch).__name__}, expected a string"
        )
    name = row.get("model_name_or_path")
    if name is not None and not isinstance(name, str):
        raise PredictionsError(f"{where}: 'model_name_or_path' of {iid} is not a string")
    return {"instance_id": iid, "model_name_or_path": name, "model_patch": patch or ""}


def read_prediction_rows(path: Path, rejected: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Validated rows of any supported form; ``model_name_or_path`` may be None.

    A malformed row raises ``PredictionsError``, unless ``rejected`` is given: then the
    row's error (naming file and line) is appended to it and the other rows go on. A file
    that cannot be read at all always raises."""
    for row in _rows(Path(path)):
        if isinstance(row, PredictionsError):
            if rejected is None:
                raise row
            rejected.append(str(row))
            continue
        yield row


def _checked(row: Any, where: str, key_id: str | None = None) -> dict[str, Any] | PredictionsError:
    try:
        return _check_row(row, where, key_id)
    except PredictionsError as e:
        return e


def _rows(path: Path) -> Iterator[dict[str, Any] | PredictionsError]:
    if not path.is_file():
        raise PredictionsError(f"{path}: predictions file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    stripped = text.lstrip()
    if not stripped:
        return
    # One JSON value (a dict or a list) spanning the file, or JSON lines?
    if stripped[0] in "[{" and not _looks_like_jsonl(text):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PredictionsError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from e
        if isinstance(data, list):
            for i, row in enumerate(data):
                yield _checked(row, f"{path}: item {i}")
            return
        if not isinstance(data, dict):
            raise PredictionsError(f"{path}: expected JSON lines, a list or a dict of rows")
        for key, row in data.items():
            yield _checked(row, f"{path}: key {key!r}", key_id=key)
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield PredictionsError(f"{path}:{lineno}: invalid JSON: {e.msg}")
            continue
        yield _checked(row, f"{path}:{lineno}")


def _looks_like_jsonl(text: str) -> bool:
    """The first non-empty line is a whole row on its own: JSON lines (a pretty-printed or
    compact dict keyed by instance id never has ``instance_id`` at its top level)."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "instance_id" in row


def export_predictions(
    selections: Mapping[str, SelectionRecord | str | None],
    path: Path | str,
    model_name: str,
    fmt: PredictionFormat = "jsonl",
) -> Path:
    """Write the chosen patches in the harness format. An instance without a choice gets
    an empty patch (the harness counts it unresolved) so the file covers every instance."""
    rows = []
    for iid, sel in selections.items():
        patch = sel.chosen_patch if isinstance(sel, SelectionRecord) else (sel or "")
        rows.append(prediction_row(iid, model_name, patch))
    return write_predictions(rows, Path(path), fmt)
