"""Escaping HTML building blocks for the ``show`` page: text, diffs, chat messages, test
runs and a generic key/value tree for any record field. Model text is untrusted: every
string goes through ``html.escape`` here before it reaches a page."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

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
PATCH_KEYS = {"patch", "chosen_patch"}
"""Record fields holding a patch (any text starting ``diff --git`` is shown as a diff too)."""
_SKIP_KEYS = {"cache", "cut"}


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


def conversation_html(title: str, messages: list[Any]) -> str:
    """A folded conversation: its title and message count, the messages inside."""
    return (
        f"<details><summary>{esc(title)} ({len(messages)} messages)</summary>"
        f"{messages_html(messages)}</details>"
    )


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
        cut = (
            " <span class=bad>cut at the output token limit: not used</span>"
            if m.get("cut")
            else ""
        )
        out.append(
            f'<div class="msg {esc(role)}"><div class="role">#{i + 1} {esc(role)} '
            f'<span class="muted">({len(content):,} chars)</span>{cut}</div>{pre(content)}</div>'
        )
    return "".join(out)


def is_messages(value: Any) -> bool:
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
    if is_messages(value):
        return f"<details open><summary>{esc(key)} ({len(value)})</summary>{messages_html(value)}</details>"
    if isinstance(value, str):
        if key in PATCH_KEYS or value.startswith("diff --git"):
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


def run_html(label: str, run: Any) -> str:
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
