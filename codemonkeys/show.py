"""One problem's records as a single HTML page for reading: the issue, the context files,
every trajectory (messages, scripts, outputs, diffs), the test matrix, the votes and the
selection transcript.

Model text is untrusted (it can contain ``<script>``, ``</pre>``, anything): every string
from a record goes through ``html.escape`` before it reaches the page, and the page holds no
JavaScript at all, so a hostile message is shown as text, never run.

Records are read through the registry (``codemonkeys.records``) and trajectories as
``TrajectoryRecord``; fields without a special rendering are shown generically as a
key/value tree, so a new field shows up instead of disappearing. The building blocks live
in ``codemonkeys.report.show_parts`` and the selection section in
``codemonkeys.report.show_selection``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.problem import safe_name
from codemonkeys.records import Record, read_record_data, trajectory_files
from codemonkeys.report.html import BASE_CSS
from codemonkeys.report.show_parts import (
    PATCH_KEYS,
    SHOW_CSS,
    conversation_html,
    diff_html,
    esc,
    is_messages,
    pre,
    run_html,
    value_html,
)
from codemonkeys.report.show_selection import selection_html
from codemonkeys.report.unusable import unusable_answers
from codemonkeys.run_patches import load_trajectories, patch_identity, trajectory_final_patch
from codemonkeys.store import atomic_write_text

__all__ = ["diff_html", "render_show", "write_show"]

Json = Mapping[str, Any]
RESULT_SHOWN = ("id", "status", "error", "chosen_patch", "chosen_id", "cost_usd")


def render_show(run_dir: Path | str, problem_id: str) -> str:
    """The HTML page for one problem of a run. Raises FileNotFoundError naming the known
    problems when ``problem_id`` is not in the run."""
    run_dir = Path(run_dir)
    pdir = _find_problem_dir(run_dir, problem_id)
    problem = read_record_data(pdir, Record.PROBLEM)
    result = read_record_data(pdir, Record.RESULT)
    evaluation = read_record_data(pdir, Record.EVALUATION)
    selection = read_record_data(pdir, Record.SELECTION)
    labels = {
        str(k): bool(v) for k, v in (evaluation.get("candidates") or {}).items() if v is not None
    }
    chosen = result.get("chosen_id") or selection.get("chosen_id")
    trajs = load_trajectories(pdir)
    pid = str(problem.get("id", problem_id))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(pid)} &middot; codemonkeys</title><style>{BASE_CSS}{SHOW_CSS}</style></head><body>",
        f"<h1>{esc(pid)}</h1>",
        f"<div class='muted'>run {esc(run_dir.name)} &middot; rendered {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</div>",
        "<nav><a href='#issue'>issue</a><a href='#result'>result</a>"
        "<a href='#unusable'>unusable answers</a><a href='#context'>context</a>"
        "<a href='#trajectories'>trajectories</a><a href='#selection'>selection</a></nav>",
    ]
    meta = {k: v for k, v in problem.items() if k not in ("issue", "id")}
    parts.append(f"<div>{value_html('problem', meta)}</div>")
    parts.append(f"<h2 id='issue'>Issue</h2>{pre(str(problem.get('issue', '(no issue text)')))}")
    parts.append("<h2 id='result'>Result</h2>")
    parts.append(_result_html(result, evaluation, chosen))
    context_rec = read_record_data(pdir, Record.CONTEXT)
    relevance = read_record_data(pdir, Record.RELEVANCE)
    parts.append(_unusable_html(relevance, context_rec, trajs, selection))
    context = _context_html(context_rec, relevance)
    parts.append(f"<h2 id='context'>Context</h2>{context}")
    parts.append(f"<h2 id='trajectories'>Trajectories ({len(trajs)})</h2>")
    if not trajs:
        parts.append("<p class='muted'>No trajectory records.</p>")
    loaded = {name for name, _ in trajs}
    for path in trajectory_files(pdir):
        if path.stem not in loaded:
            parts.append(
                f"<div class='traj'><h3>{esc(path.stem)}</h3>"
                + pre("not a trajectory record (unreadable or cut short): skipped", "bad")
                + "</div>"
            )
    identify = patch_identity(pdir)
    for i, (name, traj) in enumerate(trajs):
        parts.append(_trajectory_html(i, name, traj, labels, identify))
    parts.append(f"<h2 id='selection'>Selection</h2>{selection_html(selection, labels, chosen)}")
    parts.append("</body></html>")
    return "\n".join(parts)


def _unusable_html(
    relevance: Json, context: Json, trajs: list[tuple[str, TrajectoryRecord]], selection: Json
) -> str:
    """Every model answer that could not be used, with why (``report/unusable.py``)."""
    found = unusable_answers(relevance, context, trajs, selection)
    head = f"<h2 id='unusable'>Unusable answers ({sum(u.count for u in found)})</h2>"
    if not found:
        return head + "<p class='muted'>Every model answer was usable.</p>"
    rows = "".join(
        f"<tr><td>{esc(u.stage)}</td><td><code>{esc(u.where)}</code></td>"
        f"<td>{esc(u.reason)}</td><td class='num'>{u.count}</td></tr>"
        for u in found
    )
    return head + (
        "<table><tr><th>stage</th><th>where</th><th>reason</th><th>answers</th></tr>"
        + rows
        + "</table>"
    )


def _result_html(result: Json, evaluation: Json, chosen: str | None) -> str:
    if not result:
        return (
            "<p class='muted'>No result yet (the problem is in progress or was never started).</p>"
        )
    cost = (
        f" &middot; cost ${float(result.get('cost_usd') or 0):.4f}"
        if result.get("cost_usd") is not None
        else ""
    )
    parts = [
        f"<p>status <b>{esc(str(result.get('status', '?')))}</b>"
        + (f" &middot; chosen <code>{esc(str(chosen))}</code>" if chosen else "")
        + verdict_html(evaluation)
        + cost
        + "</p>"
    ]
    if result.get("error"):
        parts.append(pre(str(result["error"]), "bad"))
    if isinstance(result.get("chosen_patch"), str):
        parts.append(
            f"<details open><summary>chosen patch</summary>{diff_html(result['chosen_patch'])}</details>"
        )
    other = {k: v for k, v in result.items() if k not in RESULT_SHOWN}
    if other:
        parts.append(
            f"<details><summary>other fields</summary>{value_html('result', other)}</details>"
        )
    return "\n".join(parts)


def _trajectory_html(
    i: int,
    name: str,
    record: TrajectoryRecord,
    labels: Mapping[str, bool],
    identify: Callable[[str], str],
) -> str:
    traj = record.model_dump(mode="json")
    final = trajectory_final_patch(record)
    cid = identify(final) if final.strip() else None
    ok = labels.get(cid) if cid else None
    graded = (
        ""
        if ok is None
        else (
            " &middot; <span class=ok>correct</span>"
            if ok
            else " &middot; <span class=bad>wrong</span>"
        )
    )
    head = (
        f"<h3 id='traj-{i}'>{esc(name)}"
        f"{' &middot; <code>' + esc(cid) + '</code>' if cid else ' &middot; no patch'}{graded}</h3>"
    )
    scalars = {
        k: v
        for k, v in traj.items()
        if not isinstance(v, (Mapping, list))
        and k not in PATCH_KEYS
        and v not in ("", None)
        and not (isinstance(v, str) and len(v) > 100)
    }
    meta = " &middot; ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in scalars.items())
    body = [head, f"<div class='muted'>{meta}</div>"]
    if traj.get("error"):
        body.append(pre(str(traj["error"]), "bad"))
    if final.strip():
        body.append(f"<details open><summary>final patch</summary>{diff_html(final)}</details>")
    body.append(_testing_html(traj))
    body.append(_editing_html(traj))
    shown = set(scalars) | {"test_messages", "tests", "edit_messages", "edits", "pairs"}
    for k, v in traj.items():
        if k in shown or v in ("", [], {}, None):
            continue
        if is_messages(v):
            body.append(conversation_html(k, v))
        else:
            body.append(f"<details><summary>{esc(k)}</summary>{value_html(k, v)}</details>")
    return "<div class='traj'>" + "".join(body) + "</div>"


def _testing_html(traj: Json) -> str:
    body = ["<h4>Testing</h4>"]
    if is_messages(traj.get("test_messages")):
        body.append(conversation_html("test conversation", traj["test_messages"]))
    for j, t in enumerate(traj.get("tests") or []):
        script = t.get("script") or {}
        final = " &middot; final" if traj.get("current_test") == j else ""
        body.append(
            f"<details><summary>test v{j} ({esc(str(t.get('phase', '')))} attempt {esc(str(t.get('attempt', '?')))})"
            f"{final}</summary>"
            f"{pre(str(script.get('content', '')))}{run_html('on the original code', t.get('original'))}</details>"
        )
    return "".join(body)


def _editing_html(traj: Json) -> str:
    body = ["<h4>Editing</h4>"]
    if is_messages(traj.get("edit_messages")):
        body.append(conversation_html("edit conversation", traj["edit_messages"]))
    for j, e in enumerate(traj.get("edits") or []):
        errs = "".join(pre(str(x), "bad") for x in e.get("errors") or [])
        notes = "".join(pre(str(x)) for x in e.get("notes") or [])
        patch = str(e.get("patch", ""))
        body.append(
            f"<details><summary>edit v{j} (attempt {esc(str(e.get('attempt', '?')))})"
            f"{' &middot; final' if traj.get('current_edit') == j else ''}"
            f"{' &middot; <span class=bad>did not apply</span>' if not patch.strip() else ''}</summary>"
            f"{diff_html(patch)}{errs}{notes}"
            f"<details><summary>as written</summary>{pre(str(e.get('text', '')))}</details></details>"
        )
    if traj.get("pairs"):
        body.append(_pairs_html(traj["pairs"]))
    return "".join(body)


def _pairs_html(pairs: list[Json]) -> str:
    rows = []
    for pr in pairs:
        o, ed = pr.get("original") or {}, pr.get("edited") or {}
        rows.append(
            f"<tr><td class='num'>{esc(str(pr.get('attempt')))}</td><td class='num'>v{esc(str(pr.get('test')))}</td>"
            f"<td class='num'>v{esc(str(pr.get('edit')))}</td>"
            f"<td>{esc(str(o.get('exit_code')))}</td><td>{esc(str(ed.get('exit_code')))}</td>"
            f"<td><details><summary>outputs</summary>{run_html('original', o)}{run_html('edited', ed)}</details></td></tr>"
        )
    return (
        "<table><tr><th>attempt</th><th>test</th><th>edit</th><th>exit on original</th>"
        "<th>exit on edited</th><th></th></tr>" + "".join(rows) + "</table>"
    )


def _find_problem_dir(run_dir: Path, problem_id: str) -> Path:
    base = run_dir / "problems"
    for name in (safe_name(problem_id), problem_id):
        if (base / name).is_dir():
            return base / name
    for d in sorted(base.glob("*")) if base.is_dir() else []:
        if read_record_data(d, Record.PROBLEM).get("id") == problem_id:
            return d
    known = sorted(d.name for d in base.glob("*")) if base.is_dir() else []
    raise FileNotFoundError(
        f"no problem {problem_id!r} in {run_dir}"
        + (f"; known: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}" if known else "")
    )


def _context_html(context: Json, relevance: Json) -> str:
    """The packed files (``ContextRecord.packed``) and the rest of the context and
    relevance records."""
    if not context and not relevance:
        return '<p class="muted">No context record.</p>'
    parts = []
    files = [f for f in context.get("packed") or [] if isinstance(f, Mapping)]
    if files:
        rows = []
        for i, f in enumerate(files):
            extra = {k: v for k, v in f.items() if k not in ("path", "content", "text")}
            rows.append(
                f"<tr><td class='num'>{i + 1}</td><td><code>{esc(str(f.get('path', '?')))}</code></td>"
                f"<td>{esc(json.dumps(extra, ensure_ascii=False, default=str))[:400]}</td></tr>"
            )
        parts.append(
            "<table><tr><th>#</th><th>file</th><th>details</th></tr>" + "".join(rows) + "</table>"
        )
    rest = {k: v for k, v in context.items() if k != "packed"}
    if rest:
        parts.append(
            f"<details><summary>context record</summary>{value_html('context', rest)}</details>"
        )
    if relevance:
        parts.append(
            f"<details><summary>relevance record</summary>{value_html('relevance', relevance)}</details>"
        )
    return "".join(parts)


def verdict_html(evaluation: Json) -> str:
    """The harness's verdict on the chosen patch: resolved, not resolved, or ungraded
    (never graded: its reason shown), nothing when the run was not evaluated."""
    if not evaluation:
        return ""
    resolved = evaluation.get("chosen")
    if evaluation.get("verdict") == "ungraded" or ("chosen" in evaluation and resolved is None):
        reason = str(evaluation.get("reason") or "no verdict from the harness")
        return f" &middot; <span class=bad>ungraded</span> ({esc(reason.strip().splitlines()[-1] if reason.strip() else reason)})"
    if resolved is None:
        return ""
    return (
        " &middot; <span class=ok>resolved</span>"
        if resolved
        else " &middot; <span class=bad>not resolved</span>"
    )


def write_show(run_dir: Path | str, problem_id: str, out: Path | str | None = None) -> Path:
    """Write the page to ``out`` (default ``<run>/problems/<id>/show.html``)."""
    run_dir = Path(run_dir)
    page = render_show(run_dir, problem_id)
    path = Path(out) if out else _find_problem_dir(run_dir, problem_id) / "show.html"
    atomic_write_text(path, page)
    return path
