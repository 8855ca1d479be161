"""One problem's records as a single HTML page for reading: the issue, the context files,
every trajectory (messages, scripts, outputs, diffs), the test matrix, the votes and the
selection transcript.

Model text is untrusted (it can contain ``<script>``, ``</pre>``, anything): every string
from a record goes through ``html.escape`` before it reaches the page, and the page holds no
JavaScript at all, so a hostile message is shown as text, never run.

The record formats of the stages evolve; this page renders the fields it knows (messages,
scripts, outputs, patches, votes) specially and everything else generically as a
key/value tree, so a new field shows up instead of disappearing.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from codemonkeys.problem import safe_name
from codemonkeys.report import (
    BASE_CSS,
    load_record,
    load_trajectories,
    patch_identity,
    read_json_file,
    trajectory_final_patch,
    unwrap,
)
from codemonkeys.store import atomic_write_text

esc = html.escape

SHOW_CSS = """
.msg { border: 1px solid var(--line); border-radius: 8px; margin: 6px 0; }
.msg > .role { font-size: 12px; font-weight: 600; padding: 3px 10px; border-bottom: 1px solid var(--line); }
.msg.system > .role { background: #eef2ff; } .msg.user > .role { background: #ecfdf5; }
.msg.assistant > .role { background: #fff7ed; }
.msg > pre { border: 0; margin: 0; background: transparent; }
.diff .add { color: #116329; background: #dafbe1; display: block; }
.diff .del { color: #82071e; background: #ffebe9; display: block; }
.diff .hunk { color: #0550ae; display: block; } .diff .file { font-weight: 700; display: block; }
.diff .ctx { display: block; } .diff { white-space: pre; }
.kv { margin-left: 10px; border-left: 2px solid var(--line); padding-left: 10px; }
.kv .k { font-weight: 600; color: var(--muted); }
.traj { border: 1px solid var(--line); border-radius: 8px; padding: 4px 12px 8px; margin: 10px 0; }
.verdict-fixed { background: #dafbe1; } .verdict-unfixed { background: #fff1e5; }
.verdict-crash, .verdict-timeout, .verdict-no-apply, .verdict-error { background: #ffebe9; }
.chosen { outline: 2px solid var(--ok); }
nav a { margin-right: 12px; }
"""

_TEXT_KEYS = {
    "content",
    "text",
    "output",
    "stdout",
    "stderr",
    "output_tail",
    "error",
    "patch_error",
    "reason",
    "issue",
    "summary",
    "script",
    "test",
    "raw",
    "response",
}
_PATCH_KEYS = {"patch", "diff", "final_patch", "edit_patch", "chosen_patch", "model_patch"}
_SKIP_KEYS = {"cache"}


def pre(text: str, cls: str = "") -> str:
    return f'<pre class="{esc(cls)}">{esc(text)}</pre>'


def diff_html(patch: str) -> str:
    """A unified diff with added/removed lines coloured; every line escaped."""
    if not patch.strip():
        return '<p class="muted">(empty patch)</p>'
    lines = []
    for line in patch.splitlines():
        cls = "ctx"
        if line.startswith(("diff --git", "+++", "---")):
            cls = "file"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        lines.append(f'<span class="{cls}">{esc(line) or " "}</span>')
    return '<pre class="diff">' + "".join(lines) + "</pre>"


def messages_html(messages: list[Any]) -> str:
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            out.append(pre(str(m)))
            continue
        role = str(m.get("role", "?"))
        content = m.get("content", "")
        if not isinstance(content, str):
            content = json.dumps(content, indent=1, ensure_ascii=False, default=str)
        out.append(
            f'<div class="msg {esc(role)}"><div class="role">#{i + 1} {esc(role)} '
            f'<span class="muted">({len(content):,} chars)</span></div>{pre(content)}</div>'
        )
    return "".join(out)


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value)
    )


def value_html(key: str, value: Any, depth: int = 0) -> str:
    """Generic rendering: messages as a chat, patches as diffs, long text as <pre>,
    dicts and lists as nested key/value blocks. Everything escaped."""
    if depth > 8:
        return pre(json.dumps(value, ensure_ascii=False, default=str)[:5000])
    if _is_messages(value):
        return f"<details open><summary>{esc(key)} ({len(value)})</summary>{messages_html(value)}</details>"
    if isinstance(value, str):
        if key in _PATCH_KEYS or value.startswith("diff --git"):
            return diff_html(value)
        if key in _TEXT_KEYS or "\n" in value or len(value) > 100:
            return pre(value)
        return esc(value)
    if isinstance(value, Mapping):
        if {"content", "language"} <= set(value) and isinstance(value.get("content"), str):
            return f'<span class="muted">{esc(str(value.get("language")))} script</span>' + pre(
                value["content"]
            )
        items = [
            f'<div><span class="k">{esc(str(k))}:</span> {value_html(str(k), v, depth + 1)}</div>'
            for k, v in value.items()
            if k not in _SKIP_KEYS and v not in ("", [], {}, None)
        ]
        return '<div class="kv">' + "".join(items) + "</div>" if items else "{}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if (
            all(not isinstance(v, (Mapping, list)) for v in value)
            and sum(len(str(v)) for v in value) < 300
        ):
            return esc(", ".join(str(v) for v in value))
        parts = [
            f"<details {'open' if depth < 2 and len(value) <= 12 else ''}><summary>{esc(key)} [{i}]</summary>"
            f"{value_html(key, v, depth + 1)}</details>"
            for i, v in enumerate(value)
        ]
        return "".join(parts)
    return esc(json.dumps(value, default=str))


def _find_problem_dir(run_dir: Path, problem_id: str) -> Path:
    base = run_dir / "problems"
    for name in (safe_name(problem_id), problem_id):
        if (base / name).is_dir():
            return base / name
    for d in sorted(base.glob("*")) if base.is_dir() else []:
        p = unwrap(read_json_file(d / "problem.json")) or {}
        if isinstance(p, dict) and p.get("id") == problem_id:
            return d
    known = sorted(d.name for d in base.glob("*")) if base.is_dir() else []
    raise FileNotFoundError(
        f"no problem {problem_id!r} in {run_dir}"
        + (f"; known: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}" if known else "")
    )


def _context_html(context: Any, relevance: Any) -> str:
    if not context and not relevance:
        return '<p class="muted">No context record.</p>'
    parts = []
    if isinstance(context, Mapping):
        files = context.get("files") or context.get("packed") or context.get("packed_files")
        if isinstance(files, list) and files:
            rows = []
            for i, f in enumerate(files):
                if isinstance(f, Mapping):
                    path = f.get("path", "?")
                    extra = {k: v for k, v in f.items() if k not in ("path", "content", "text")}
                    rows.append(
                        f"<tr><td class='num'>{i + 1}</td><td><code>{esc(str(path))}</code></td>"
                        f"<td>{esc(json.dumps(extra, ensure_ascii=False, default=str))[:400]}</td></tr>"
                    )
                else:
                    rows.append(
                        f"<tr><td class='num'>{i + 1}</td><td><code>{esc(str(f))}</code></td><td></td></tr>"
                    )
            parts.append(
                "<table><tr><th>#</th><th>file</th><th>details</th></tr>"
                + "".join(rows)
                + "</table>"
            )
        rest = {
            k: v
            for k, v in context.items()
            if k not in ("files", "packed", "packed_files", "text", "packed_text")
        }
        if rest:
            parts.append(
                f"<details><summary>context record</summary>{value_html('context', rest)}</details>"
            )
    if relevance:
        parts.append(
            f"<details><summary>relevance record</summary>{value_html('relevance', relevance)}</details>"
        )
    return "".join(parts)


def _selection_html(sel: Any, labels: Mapping[str, bool], chosen: str | None) -> str:
    if not isinstance(sel, Mapping):
        return '<p class="muted">No selection record.</p>'
    parts = []
    votes = sel.get("votes") if isinstance(sel.get("votes"), Mapping) else {}
    ranking = sel.get("ranking") if isinstance(sel.get("ranking"), list) else []
    fusion = sel.get("fusion") if isinstance(sel.get("fusion"), Mapping) else {}
    fused = [e for e in fusion.get("ranking") or [] if isinstance(e, Mapping)]
    if fused:  # the order the selector's top-k came from
        ranking = fused
    regression = sel.get("regression") if isinstance(sel.get("regression"), Mapping) else {}
    reg_cands = (
        regression.get("candidates") if isinstance(regression.get("candidates"), Mapping) else {}
    )
    cands = {str(c.get("id")): c for c in sel.get("candidates") or [] if isinstance(c, Mapping)}
    ids = (
        [str(r.get("id")) for r in ranking if isinstance(r, Mapping)] or list(cands) or list(votes)
    )
    if ids:
        rows = []
        for cid in ids:
            r = next((x for x in ranking if isinstance(x, Mapping) and x.get("id") == cid), {})
            c = cands.get(cid, {})
            ok = labels.get(cid)
            rc = reg_cands.get(cid) if isinstance(reg_cands.get(cid), Mapping) else {}
            broken = rc.get("regressions") or []
            reg_cell = (
                esc(str(len(broken)))
                + (
                    f" <span class=muted>({esc(', '.join(map(str, broken[:5])))})</span>"
                    if broken
                    else ""
                )
                if rc.get("status") == "ok"
                else esc(str(rc.get("status", "-")))
            )
            verdict = "-" if "kept" not in r else ("kept" if r.get("kept") else "dropped")
            rows.append(
                f"<tr class='{'chosen' if cid == chosen else ''}'><td><code>{esc(cid)}</code>"
                f"{' <b>chosen</b>' if cid == chosen else ''}</td>"
                f"<td class='num'>{esc(str(votes.get(cid, r.get('votes', '-'))))}</td>"
                f"<td class='num'>{esc(str(r.get('cluster_size', '-')))}</td>"
                f"<td>{reg_cell}</td>"
                f"<td title='{esc(str(r.get('why', '')))}'>{esc(verdict)}"
                f"{' <span class=muted>' + esc(str(r.get('why'))) + '</span>' if r.get('why') else ''}</td>"
                f"<td>{esc(', '.join(map(str, c.get('sources') or [])))}</td>"
                f"<td>{'-' if ok is None else ('<span class=ok>correct</span>' if ok else '<span class=bad>wrong</span>')}</td></tr>"
            )
        parts.append(
            "<table><tr><th>candidate</th><th class='num'>votes</th><th class='num'>cluster</th>"
            "<th>regressions</th><th>fusion"
            + (f" ({esc(str(fusion.get('rule')))})" if fusion.get("rule") else "")
            + "</th><th>sources</th><th>graded</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    for key in ("top_k", "reason", "fallback", "fallback_kind", "selector_attempts"):
        if key in sel and sel[key] not in (None, "", []):
            parts.append(
                f"<div><span class='k'><b>{esc(key)}</b>:</span> {value_html(key, sel[key])}</div>"
            )
    if regression:
        parts.append(_regression_html(regression))
    matrix = sel.get("matrix")
    if (
        isinstance(matrix, Mapping)
        and matrix.get("tests")
        and isinstance(matrix.get("cells"), Mapping)
    ):
        tests = [str(t) for t in matrix["tests"]]
        head = "".join(f"<th><code>{esc(t[:8])}</code></th>" for t in tests)
        rows = []
        for row, cells in matrix["cells"].items():
            tds = []
            for t in tests:
                cell = cells.get(t) if isinstance(cells, Mapping) else None
                if isinstance(cell, Mapping):
                    v = str(cell.get("verdict", "?"))
                    tds.append(
                        f"<td class='verdict-{esc(v)}' title='{esc(str(cell.get('output_tail', ''))[-300:])}'>"
                        f"{esc(v)}</td>"
                    )
                else:
                    tds.append("<td>-</td>")
            rows.append(f"<tr><td><code>{esc(str(row))}</code></td>{''.join(tds)}</tr>")
        parts.append(
            "<h3>Test matrix</h3><table><tr><th>row \\ test</th>"
            + head
            + "</tr>"
            + "".join(rows)
            + "</table>"
        )
    if cands:
        parts.append("<h3>Candidate diffs</h3>")
        for cid, c in cands.items():
            parts.append(
                f"<details><summary><code>{esc(cid)}</code></summary>{diff_html(str(c.get('patch', '')))}</details>"
            )
    if sel.get("tests"):
        parts.append(
            f"<details><summary>Voting tests ({len(sel['tests'])})</summary>{value_html('tests', sel['tests'])}</details>"
        )
    if sel.get("selector_tests"):
        parts.append(
            f"<h3>Selector tests</h3>{value_html('selector_tests', sel['selector_tests'])}"
        )
    if _is_messages(sel.get("transcript")):
        parts.append(f"<h3>Selection transcript</h3>{messages_html(sel['transcript'])}")
    rest = {
        k: v
        for k, v in sel.items()
        if k
        not in {
            "votes",
            "ranking",
            "candidates",
            "matrix",
            "tests",
            "selector_tests",
            "transcript",
            "top_k",
            "reason",
            "fallback",
            "fallback_kind",
            "selector_attempts",
            "fusion",
            "regression",
        }
    }
    if rest:
        parts.append(
            f"<details><summary>other fields</summary>{value_html('selection', rest)}</details>"
        )
    return "".join(parts)


def _regression_html(reg: Mapping[str, Any]) -> str:
    """The regression verifier: what it ran, the original's runs, flaky tests."""
    head = (
        f"<h3>Regression verifier</h3><div><b>tests</b>: {esc(str(reg.get('source', '-')))} "
        f"({esc(str(reg.get('framework', '-')))}): "
        + ", ".join(
            f"<code>{esc(str(t))}</code> <span class=muted>{esc(str((reg.get('reasons') or {}).get(t, '')))}</span>"
            for t in reg.get("test_files") or []
        )
        + "</div>"
    )
    if reg.get("command"):
        head += f"<div><b>command</b>: <code>{esc(str(reg['command']))}</code></div>"
    head += (
        f"<div><b>passing on the original (both runs)</b>: {esc(str(reg.get('baseline_passing', 0)))}"
        f"; <b>flaky</b>: {esc(', '.join(map(str, reg.get('flaky') or [])) or 'none')}</div>"
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


def _run_html(label: str, run: Any) -> str:
    """A TestRun / Cell: verdict line plus the output."""
    if not isinstance(run, Mapping):
        return ""
    if run.get("patch_applied") is False:
        return f"<div><b>{esc(label)}</b>: patch did not apply</div>" + pre(
            str(run.get("patch_error", ""))
        )
    code = run.get("exit_code")
    extra = " (timed out)" if run.get("timed_out") else ""
    out = str(run.get("output", run.get("output_tail", "")))
    return f"<div><b>{esc(label)}</b>: exit {esc(str(code))}{extra}</div>" + pre(out)


def _trajectory_html(
    i: int, name: str, traj: Any, labels: Mapping[str, bool], identify: Callable[[str], str]
) -> str:
    if not isinstance(traj, Mapping):
        return f"<div class='traj'><h3>{esc(name)}</h3>{pre('unreadable record')}</div>"
    final = trajectory_final_patch(traj)
    cid = identify(final) if final.strip() else None
    ok = labels.get(cid) if cid else None
    head = (
        f"<h3 id='traj-{i}'>{esc(name)}"
        f"{' &middot; <code>' + esc(cid) + '</code>' if cid else ' &middot; no patch'}"
        f"{'' if ok is None else (' &middot; <span class=ok>correct</span>' if ok else ' &middot; <span class=bad>wrong</span>')}</h3>"
    )
    scalars = {
        k: v
        for k, v in traj.items()
        if not isinstance(v, (Mapping, list))
        and k not in _PATCH_KEYS
        and v not in ("", None)
        and not (isinstance(v, str) and len(v) > 100)
    }
    meta = " &middot; ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in scalars.items())
    body = [head, f"<div class='muted'>{meta}</div>"]
    if traj.get("error"):
        body.append(pre(str(traj["error"]), "bad"))
    if final.strip():
        body.append(f"<details open><summary>final patch</summary>{diff_html(final)}</details>")
    shown = set(scalars) | {"final_patch"}

    tests = traj.get("tests")
    if _is_messages(traj.get("test_messages")) or isinstance(tests, list):
        body.append("<h4>Testing</h4>")
        if _is_messages(traj.get("test_messages")):
            body.append(
                f"<details><summary>test conversation ({len(traj['test_messages'])} messages)</summary>"
                f"{messages_html(traj['test_messages'])}</details>"
            )
        for j, t in enumerate(tests if isinstance(tests, list) else []):
            if not isinstance(t, Mapping):
                continue
            script = t.get("script") if isinstance(t.get("script"), Mapping) else {}
            body.append(
                f"<details><summary>test v{j} ({esc(str(t.get('phase', '')))} attempt {esc(str(t.get('attempt', '?')))})"
                f"{' &middot; final' if traj.get('current_test') == j else ''}</summary>"
                f"{pre(str(script.get('content', '')))}{_run_html('on the original code', t.get('original'))}</details>"
            )
        shown |= {"test_messages", "tests"}
    edits, pairs = traj.get("edits"), traj.get("pairs")
    if _is_messages(traj.get("edit_messages")) or isinstance(edits, list):
        body.append("<h4>Editing</h4>")
        if _is_messages(traj.get("edit_messages")):
            body.append(
                f"<details><summary>edit conversation ({len(traj['edit_messages'])} messages)</summary>"
                f"{messages_html(traj['edit_messages'])}</details>"
            )
        for j, e in enumerate(edits if isinstance(edits, list) else []):
            if not isinstance(e, Mapping):
                continue
            errs = "".join(pre(str(x), "bad") for x in e.get("errors") or [])
            notes = "".join(pre(str(x)) for x in e.get("notes") or [])
            body.append(
                f"<details><summary>edit v{j} (attempt {esc(str(e.get('attempt', '?')))})"
                f"{' &middot; final' if traj.get('current_edit') == j else ''}"
                f"{' &middot; <span class=bad>did not apply</span>' if not str(e.get('patch', '')).strip() else ''}</summary>"
                f"{diff_html(str(e.get('patch', '')))}{errs}{notes}"
                f"<details><summary>as written</summary>{pre(str(e.get('text', '')))}</details></details>"
            )
        if isinstance(pairs, list) and pairs:
            rows = []
            for pr in pairs:
                if not isinstance(pr, Mapping):
                    continue
                o, ed = pr.get("original") or {}, pr.get("edited") or {}
                rows.append(
                    f"<tr><td class='num'>{esc(str(pr.get('attempt')))}</td><td class='num'>v{esc(str(pr.get('test')))}</td>"
                    f"<td class='num'>v{esc(str(pr.get('edit')))}</td>"
                    f"<td>{esc(str(o.get('exit_code')))}</td><td>{esc(str(ed.get('exit_code')))}</td>"
                    f"<td><details><summary>outputs</summary>{_run_html('original', o)}{_run_html('edited', ed)}</details></td></tr>"
                )
            body.append(
                "<table><tr><th>attempt</th><th>test</th><th>edit</th><th>exit on original</th>"
                "<th>exit on edited</th><th></th></tr>" + "".join(rows) + "</table>"
            )
        shown |= {"edit_messages", "edits", "pairs"}
    for k, v in traj.items():
        if k in shown or v in ("", [], {}, None):
            continue
        if _is_messages(v):
            body.append(
                f"<details><summary>{esc(k)} ({len(v)} messages)</summary>{messages_html(v)}</details>"
            )
        else:
            body.append(f"<details><summary>{esc(k)}</summary>{value_html(k, v)}</details>")
    return "<div class='traj'>" + "".join(body) + "</div>"


def verdict_html(evaluation: Any) -> str:
    """The harness's verdict on the chosen patch: resolved, not resolved, or ungraded
    (never graded: its reason shown), nothing when the run was not evaluated."""
    if not isinstance(evaluation, Mapping) or not evaluation:
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


def render_show(run_dir: Path | str, problem_id: str) -> str:
    """The HTML page for one problem of a run. Raises FileNotFoundError naming the known
    problems when ``problem_id`` is not in the run."""
    run_dir = Path(run_dir)
    pdir = _find_problem_dir(run_dir, problem_id)
    problem = load_record(pdir, "problem") or {}
    result = load_record(pdir, "result") or {}
    evaluation = load_record(pdir, "evaluation") or {}
    selection = load_record(pdir, "selection")
    labels = (
        {str(k): bool(v) for k, v in (evaluation.get("candidates") or {}).items() if v is not None}
        if isinstance(evaluation, Mapping)
        else {}
    )
    chosen = result.get("chosen_id") if isinstance(result, Mapping) else None
    if chosen is None and isinstance(selection, Mapping):
        chosen = selection.get("chosen_id")

    trajs = load_trajectories(pdir)
    pid = str(problem.get("id", problem_id)) if isinstance(problem, Mapping) else problem_id

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(pid)} &middot; codemonkeys</title><style>{BASE_CSS}{SHOW_CSS}</style></head><body>",
        f"<h1>{esc(pid)}</h1>",
        f"<div class='muted'>run {esc(run_dir.name)} &middot; rendered {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</div>",
        "<nav><a href='#issue'>issue</a><a href='#result'>result</a><a href='#context'>context</a>"
        "<a href='#trajectories'>trajectories</a><a href='#selection'>selection</a></nav>",
    ]
    if isinstance(problem, Mapping):
        meta = {k: v for k, v in problem.items() if k not in ("issue", "id")}
        parts.append(f"<div>{value_html('problem', meta)}</div>")
        parts.append(
            f"<h2 id='issue'>Issue</h2>{pre(str(problem.get('issue', '(no issue text)')))}"
        )
    parts.append("<h2 id='result'>Result</h2>")
    if isinstance(result, Mapping) and result:
        status = str(result.get("status", "?"))
        parts.append(
            f"<p>status <b>{esc(status)}</b>"
            + (f" &middot; chosen <code>{esc(str(chosen))}</code>" if chosen else "")
            + verdict_html(evaluation)
            + (
                f" &middot; cost ${float(result.get('cost_usd') or 0):.4f}"
                if result.get("cost_usd") is not None
                else ""
            )
            + "</p>"
        )
        if result.get("error"):
            parts.append(pre(str(result["error"]), "bad"))
        if isinstance(result.get("chosen_patch"), str):
            parts.append(
                f"<details open><summary>chosen patch</summary>{diff_html(result['chosen_patch'])}</details>"
            )
        other = {
            k: v
            for k, v in result.items()
            if k not in ("id", "status", "error", "chosen_patch", "chosen_id", "cost_usd")
        }
        if other:
            parts.append(
                f"<details><summary>other fields</summary>{value_html('result', other)}</details>"
            )
    else:
        parts.append(
            "<p class='muted'>No result yet (the problem is in progress or was never started).</p>"
        )
    parts.append(
        f"<h2 id='context'>Context</h2>{_context_html(load_record(pdir, 'context'), load_record(pdir, 'relevance'))}"
    )
    parts.append(f"<h2 id='trajectories'>Trajectories ({len(trajs)})</h2>")
    if not trajs:
        parts.append("<p class='muted'>No trajectory records.</p>")
    identify = patch_identity(pdir)
    for i, (name, traj) in enumerate(trajs):
        parts.append(_trajectory_html(i, name, traj, labels, identify))
    parts.append(f"<h2 id='selection'>Selection</h2>{_selection_html(selection, labels, chosen)}")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_show(run_dir: Path | str, problem_id: str, out: Path | str | None = None) -> Path:
    """Write the page to ``out`` (default ``<run>/problems/<id>/show.html``)."""
    run_dir = Path(run_dir)
    page = render_show(run_dir, problem_id)
    path = Path(out) if out else _find_problem_dir(run_dir, problem_id) / "show.html"
    atomic_write_text(path, page)
    return path
