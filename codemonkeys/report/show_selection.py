"""The ``show`` page's selection section: candidates with votes, clusters, regressions and
the fused rule's keep/drop, the regression verifier, the test matrix, the candidates' diffs,
the voting and selector tests and the selector's transcript (``SelectionRecord`` as saved).
Every string is escaped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codemonkeys.report.show_parts import diff_html, esc, is_messages, messages_html, value_html

Json = Mapping[str, Any]

SCALAR_FIELDS = (
    "top_k",
    "reason",
    "fallback",
    "fallback_kind",
    "selector_attempts",
    "selector_corrections",
)
SHOWN_FIELDS = {
    "votes",
    "ranking",
    "candidates",
    "matrix",
    "tests",
    "selector_tests",
    "transcript",
    "fusion",
    "regression",
    *SCALAR_FIELDS,
}


def selection_html(sel: Json, labels: Mapping[str, bool], chosen: str | None) -> str:
    if not sel:
        return '<p class="muted">No selection record.</p>'
    parts = [_candidates_table(sel, labels, chosen)]
    for key in SCALAR_FIELDS:
        if key in sel and sel[key] not in (None, "", []):
            parts.append(
                f"<div><span class='k'><b>{esc(key)}</b>:</span> {value_html(key, sel[key])}</div>"
            )
    if sel.get("regression"):
        parts.append(regression_html(sel["regression"]))
    parts.append(_matrix_html(sel.get("matrix")))
    parts.append(_tests_and_transcript(sel))
    rest = {k: v for k, v in sel.items() if k not in SHOWN_FIELDS}
    if rest:
        parts.append(
            f"<details><summary>other fields</summary>{value_html('selection', rest)}</details>"
        )
    return "".join(parts)


def _candidates_table(sel: Json, labels: Mapping[str, bool], chosen: str | None) -> str:
    votes = sel.get("votes") or {}
    fusion = sel.get("fusion") or {}
    # the fused order is the one the selector's top-k came from
    ranking = [e for e in fusion.get("ranking") or [] if isinstance(e, Mapping)] or [
        r for r in sel.get("ranking") or [] if isinstance(r, Mapping)
    ]
    reg_cands = (sel.get("regression") or {}).get("candidates") or {}
    cands = _candidates(sel)
    ids = [str(r.get("id")) for r in ranking] or list(cands) or list(votes)
    if not ids:
        return ""
    rows = []
    for cid in ids:
        r = next((x for x in ranking if x.get("id") == cid), {})
        rows.append(
            _candidate_row(cid, r, cands.get(cid, {}), votes, reg_cands.get(cid), labels, chosen)
        )
    rule = f" ({esc(str(fusion.get('rule')))})" if fusion.get("rule") else ""
    return (
        "<table><tr><th>candidate</th><th class='num'>votes</th><th class='num'>cluster</th>"
        f"<th>regressions</th><th>fusion{rule}</th><th>sources</th><th>graded</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _candidates(sel: Json) -> dict[str, Json]:
    return {str(c.get("id")): c for c in sel.get("candidates") or [] if isinstance(c, Mapping)}


def _candidate_row(
    cid: str,
    r: Json,
    c: Json,
    votes: Json,
    regression: Any,
    labels: Mapping[str, bool],
    chosen: str | None,
) -> str:
    ok = labels.get(cid)
    verdict = "-" if "kept" not in r else ("kept" if r.get("kept") else "dropped")
    why = f" <span class=muted>{esc(str(r.get('why')))}</span>" if r.get("why") else ""
    graded = (
        "-"
        if ok is None
        else ("<span class=ok>correct</span>" if ok else "<span class=bad>wrong</span>")
    )
    return (
        f"<tr class='{'chosen' if cid == chosen else ''}'><td><code>{esc(cid)}</code>"
        f"{' <b>chosen</b>' if cid == chosen else ''}</td>"
        f"<td class='num'>{esc(str(votes.get(cid, r.get('votes', '-'))))}</td>"
        f"<td class='num'>{esc(str(r.get('cluster_size', '-')))}</td>"
        f"<td>{_regression_cell(regression)}</td>"
        f"<td title='{esc(str(r.get('why', '')))}'>{esc(verdict)}{why}</td>"
        f"<td>{esc(', '.join(map(str, c.get('sources') or [])))}</td>"
        f"<td>{graded}</td></tr>"
    )


def _regression_cell(rc: Any) -> str:
    rc = rc if isinstance(rc, Mapping) else {}
    if rc.get("status") != "ok":
        return esc(str(rc.get("status", "-")))
    broken = rc.get("regressions") or []
    names = esc(", ".join(map(str, broken[:5])))
    return esc(str(len(broken))) + (f" <span class=muted>({names})</span>" if broken else "")


def _matrix_html(matrix: Any) -> str:
    if not (
        isinstance(matrix, Mapping)
        and matrix.get("tests")
        and isinstance(matrix.get("cells"), Mapping)
    ):
        return ""
    tests = [str(t) for t in matrix["tests"]]
    head = "".join(f"<th><code>{esc(t[:8])}</code></th>" for t in tests)
    rows = []
    for row, cells in matrix["cells"].items():
        tds = []
        for t in tests:
            cell = cells.get(t) if isinstance(cells, Mapping) else None
            if isinstance(cell, Mapping):
                v = str(cell.get("verdict", "?"))
                tail = esc(str(cell.get("output_tail", ""))[-300:])
                tds.append(f"<td class='verdict-{esc(v)}' title='{tail}'>{esc(v)}</td>")
            else:
                tds.append("<td>-</td>")
        rows.append(f"<tr><td><code>{esc(str(row))}</code></td>{''.join(tds)}</tr>")
    return (
        "<h3>Test matrix</h3><table><tr><th>row \\ test</th>"
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _tests_and_transcript(sel: Json) -> str:
    parts = []
    cands = _candidates(sel)
    if cands:
        parts.append("<h3>Candidate diffs</h3>")
        for cid, c in cands.items():
            parts.append(
                f"<details><summary><code>{esc(cid)}</code></summary>"
                f"{diff_html(str(c.get('patch', '')))}</details>"
            )
    if sel.get("tests"):
        parts.append(
            f"<details><summary>Voting tests ({len(sel['tests'])})</summary>"
            f"{value_html('tests', sel['tests'])}</details>"
        )
    if sel.get("selector_tests"):
        parts.append(
            f"<h3>Selector tests</h3>{value_html('selector_tests', sel['selector_tests'])}"
        )
    if is_messages(sel.get("transcript")):
        parts.append(f"<h3>Selection transcript</h3>{messages_html(sel['transcript'])}")
    return "".join(parts)


def regression_html(reg: Json) -> str:
    """The regression verifier: what it ran, the original's runs, flaky tests."""
    reasons = reg.get("reasons") or {}
    files = ", ".join(
        f"<code>{esc(str(t))}</code> <span class=muted>{esc(str(reasons.get(t, '')))}</span>"
        for t in reg.get("test_files") or []
    )
    head = (
        f"<h3>Regression verifier</h3><div><b>tests</b>: {esc(str(reg.get('source', '-')))} "
        f"({esc(str(reg.get('framework', '-')))}): {files}</div>"
    )
    if isinstance(reg.get("impact"), Mapping):
        head += impact_html(reg["impact"])
    if reg.get("command"):
        head += f"<div><b>command</b>: <code>{esc(str(reg['command']))}</code></div>"
    flaky = esc(", ".join(map(str, reg.get("flaky") or [])) or "none")
    head += (
        "<div><b>passing on the original (both runs)</b>: "
        f"{esc(str(reg.get('baseline_passing', 0)))}; <b>flaky</b>: {flaky}</div>"
    )
    if reg.get("skipped_reason"):
        head += f"<div><b>not compared</b>: {esc(str(reg['skipped_reason']))}</div>"
    runs = [r for r in reg.get("original_runs") or [] if isinstance(r, Mapping)]
    for i, r in enumerate(runs):
        head += (
            f"<details><summary>original run {i + 1}: exit {esc(str(r.get('exit_code')))}, "
            f"{len(r.get('outcomes') or {})} tests ({esc(str(r.get('parser', '')))})</summary>"
            f"<pre>{esc(str(r.get('output_tail', '')))}</pre></details>"
        )
    return head


def impact_html(impact: Json) -> str:
    """What the impact run found: the tests kept, the files and functions that executed
    the edit, or why the plan kept its whole files."""
    status = str(impact.get("status", "-"))
    line = (
        f"<div><b>impact run</b>: {esc(status)}"
        + (f" ({esc(str(impact['reason']))})" if impact.get("reason") else "")
        + f", {esc(str(impact.get('tests_traced', 0)))} tests traced in "
        f"{esc(str(impact.get('seconds', 0)))} s, "
        f"{len(impact.get('tests_kept') or [])} kept"
        + (f", {len(impact['tests_cut'])} cut for time" if impact.get("tests_cut") else "")
        + "</div>"
    )
    functions = impact.get("functions") or {}
    if functions:
        line += (
            "<div><b>edited functions executed</b>: "
            + ", ".join(
                f"<code>{esc(str(f))}</code> ({esc(str(n))} tests)" for f, n in functions.items()
            )
            + "</div>"
        )
    kept = impact.get("tests_kept") or []
    if kept:
        items = "".join(f"<li><code>{esc(str(t))}</code></li>" for t in kept)
        line += f"<details><summary>tests kept</summary><ul>{items}</ul></details>"
    return line
