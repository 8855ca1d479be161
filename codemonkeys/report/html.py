"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing
fetched, so the page can be mailed or archived next to the run and still open in ten years."""

from __future__ import annotations

import time
from pathlib import Path

from jinja2 import Environment

from codemonkeys.analysis.render import analysis_html
from codemonkeys.analysis.views import PAPER_COST_SHARES
from codemonkeys.report.format import last_line, pct, resolved_cell, secs, summary_rows, usd, yn
from codemonkeys.report.loading import build_report
from codemonkeys.report.model import Report
from codemonkeys.report.svg import svg_bar_chart, svg_line_chart
from codemonkeys.store import atomic_write_text

BASE_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
        --ok:#1a7f37; --bad:#cf222e; --accent:#2563eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); } .ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: var(--soft); }
.card .v { font-size: 24px; font-weight: 650; } .card .n { font-size: 12px; color: var(--muted); }
.plots { display: flex; flex-wrap: wrap; gap: 18px; }
.plot { border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
      overflow-x: auto; white-space: pre-wrap; word-break: break-word; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; margin: 4px 0 10px; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 10px; margin: 4px 0; }
details { margin: 4px 0; } summary { cursor: pointer; } .nowrap { white-space: nowrap; }
"""

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_ENV.filters.update(
    pct=pct,
    usd=usd,
    secs=secs,
    yn=yn,
    resolved_cell=resolved_cell,
    lastline=lambda t: last_line(str(t)),
)

REPORT_TEMPLATE = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>codemonkeys report: {{ r.run }}</title>
<style>{{ css | safe }}</style></head>
<body>
<h1>codemonkeys report: {{ r.run }}</h1>
<div class="muted">{{ r.run_dir }} &middot; generated {{ generated }}
{% if r.run_status %} &middot; run status: {{ r.run_status }}{% endif %}
{% for role, m in r.models.items() %} &middot; {{ role }} model: {{ m }}{% endfor %}</div>

<h2>Summary</h2>
<div class="cards">
{% for name, value, note in rows %}
<div class="card"><div class="n">{{ name }}</div><div class="v">{{ value }}</div><div class="n">{{ note }}</div></div>
{% endfor %}
</div>
{% if r.summary.statuses %}
<p class="muted">Problems by status:
{% for st, n in r.summary.statuses.items() %}<b>{{ st }}</b> {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}</p>
{% endif %}
{% for w in r.warnings %}<div class="warn">{{ w }}</div>{% endfor %}

<h2>Cost</h2>
{% if r.cost_by_stage %}
<div class="plots"><div class="plot">{{ cost_svg | safe }}</div></div>
<table><tr><th>stage</th><th class="num">calls</th><th class="num">cost</th><th class="num">share</th>
<th class="num">input tokens</th><th class="num">output tokens</th><th class="num">cache read</th>
<th class="num">cache write</th><th class="num">paper share</th><th class="num">model time</th></tr>
{% for stage, sc in r.cost_by_stage.items() %}
<tr><td>{{ stage }}</td><td class="num">{{ sc.calls }}</td><td class="num">{{ sc.cost_usd | usd }}</td>
<td class="num">{{ (sc.cost_usd / total if total else None) | pct }}</td>
<td class="num">{{ "{:,}".format(sc.input_tokens) }}</td><td class="num">{{ "{:,}".format(sc.output_tokens) }}</td>
<td class="num">{{ "{:,}".format(sc.cache_read_tokens) }}</td><td class="num">{{ "{:,}".format(sc.cache_write_tokens) }}</td>
<td class="num">{{ paper.get(stage) | pct }}</td><td class="num">{{ sc.model_seconds | secs }}</td></tr>
{% endfor %}
<tr><th>total</th><th class="num">{{ r.summary.calls }}</th><th class="num">{{ total | usd }}</th><th></th>
<th colspan="6"></th></tr>
</table>
<p class="muted">The paper's Table 1 layout; paper share: CodeMonkeys' cost per stage on SWE-bench Verified ($2291.90 for 500 instances).</p>
{% else %}<p class="muted">No model calls recorded (calls.jsonl is empty or absent).</p>{% endif %}
{% if r.seconds_by_phase %}
<h3>Wall time per phase</h3>
<table><tr><th>phase</th><th class="num">total</th><th class="num">mean per problem</th></tr>
{% for phase, s in r.seconds_by_phase.items() %}
<tr><td>{{ phase }}</td><td class="num">{{ s | secs }}</td><td class="num">{{ r.mean_seconds_by_phase[phase] | secs }}</td></tr>
{% endfor %}</table>
{% endif %}
{% if r.sandbox_seconds_by_phase or r.grading_seconds is not none %}
<h3>Machine time per phase (container-seconds)</h3>
<table><tr><th>phase</th><th class="num">sandbox open</th><th class="num">reset</th><th class="num">runs</th><th class="num">close</th><th class="num">grading</th></tr>
{% for phase, sb in r.sandbox_seconds_by_phase.items() %}
<tr><td>{{ phase }}</td><td class="num">{{ sb.open | secs }}</td><td class="num">{{ sb.reset | secs }}</td><td class="num">{{ sb.runs | secs }}</td><td class="num">{{ sb.close | secs }}</td><td class="num">-</td></tr>
{% endfor %}
{% if r.grading_seconds is not none %}<tr><td>grading (swebench evaluate)</td><td colspan="4"></td><td class="num">{{ r.grading_seconds | secs }}</td></tr>{% endif %}
</table>
<p class="muted">Summed over containers: trajectories running in parallel add up. Runs: inside leases (applying patches, running scripts).</p>
{% endif %}

<h2>Scaling curves</h2>
{% if curves %}
<div class="plots">
{% for c, svg in curves %}<div class="plot">{{ svg | safe }}<div class="muted" style="max-width:520px">{{ c.note }} ({{ c.problems }} problems)</div></div>{% endfor %}
</div>
{% else %}<p class="muted">No curves: they need graded candidates (evaluation.json) and trajectory records.</p>{% endif %}
{{ analysis | safe }}

<h2>Problems ({{ r.problems | length }})</h2>
<table><tr><th>problem</th><th>status</th><th>resolved</th><th>covered</th><th class="num">candidates</th>
<th class="num">correct</th><th class="num">trajectories (ok)</th><th>chosen</th><th class="num">votes</th><th class="num">regressions</th>
<th class="num">ctx recall</th><th class="num">cost</th><th class="num">time</th><th>error</th></tr>
{% for p in r.problems %}
<tr><td class="nowrap">{{ p.id }}</td><td>{{ p.status }}</td>
<td class="{{ 'ok' if p.resolved else ('bad' if p.resolved is not none else '') }}"{% if p.ungraded_reason %} title="{{ p.ungraded_reason }}"{% endif %}>{{ p | resolved_cell }}</td>
<td>{{ p.covered | yn }}</td><td class="num">{{ p.candidates }}</td>
<td class="num">{{ '-' if p.correct_candidates is none else p.correct_candidates }}</td>
<td class="num">{{ p.trajectories }} ({{ '-' if p.correct_trajectories is none else p.correct_trajectories }})</td>
<td><code>{{ p.chosen_id or '-' }}</code></td><td class="num">{{ '-' if p.chosen_votes is none else p.chosen_votes }}</td>
<td class="num">{{ '-' if p.chosen_regressions is none else p.chosen_regressions }}</td>
<td class="num">{{ p.context_recall | pct }}</td><td class="num">{{ p.cost_usd | usd }}</td>
<td class="num">{{ (p.stage_seconds.values() | sum) | secs if p.stage_seconds else '-' }}</td>
<td>{% if p.error %}<details><summary>{{ p.error | lastline | truncate(80) }}</summary><pre>{{ p.error }}</pre></details>{% endif %}</td></tr>
{% endfor %}
</table>
<p class="muted">Generated by codemonkeys. Self-contained: no scripts, no external resources.</p>
</body></html>
"""
)


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched."""
    curves = [
        (c, svg_line_chart(c.series, title=c.name, x_label=c.x_label, y_label=c.y_label))
        for c in report.curves
    ]
    cost_svg = svg_bar_chart(
        {k: v.cost_usd for k, v in report.cost_by_stage.items()}, title="Cost per stage"
    )
    return REPORT_TEMPLATE.render(
        r=report,
        css=BASE_CSS,
        rows=summary_rows(report),
        total=report.summary.total_cost_usd,
        cost_svg=cost_svg,
        curves=curves,
        paper=PAPER_COST_SHARES,
        analysis=analysis_html(report.analysis) if report.analysis is not None else "",
        generated=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.generated_at)),
    )


def write_report(run_dir: Path | str, out: Path | str | None = None) -> tuple[Report, Path]:
    """Build the report and write ``report.html`` and ``report.json`` next to the run (or at
    ``out``, an .html path). Returns the report and the HTML path."""
    report = build_report(run_dir)
    html_path = Path(out) if out else Path(run_dir) / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(html_path, render_html(report))
    atomic_write_text(html_path.with_suffix(".json"), report.model_dump_json(indent=1))
    return report, html_path
