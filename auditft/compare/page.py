"""``compare.html``: one self-contained page (inline CSS, inline SVG, no script, no external
resource), rendered from ``compare.json`` alone through the report's autoescaping Jinja2
environment, so run ids, metric names and paths from run folders stay text."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from auditft.report import render_fragment

_PARETO = """
<svg xmlns="http://www.w3.org/2000/svg" width="{{ w }}" height="{{ h }}" viewBox="0 0 {{ w }} {{ h }}" role="img"
     aria-label="quality against training cost">
  <line x1="{{ left }}" y1="{{ h - bottom }}" x2="{{ w - 12 }}" y2="{{ h - bottom }}" class="axisline"/>
  <line x1="{{ left }}" y1="12" x2="{{ left }}" y2="{{ h - bottom }}" class="axisline"/>
  <text x="{{ left - 6 }}" y="18" text-anchor="end" class="tick">{{ "%.3f"|format(ymax) }}</text>
  <text x="{{ left - 6 }}" y="{{ h - bottom }}" text-anchor="end" class="tick">{{ "%.3f"|format(ymin) }}</text>
  <text x="{{ left }}" y="{{ h - bottom + 16 }}" class="tick">{{ "%.0f"|format(xmin) }} s</text>
  <text x="{{ w - 12 }}" y="{{ h - bottom + 16 }}" text-anchor="end" class="tick">{{ "%.0f"|format(xmax) }} s</text>
  <text x="{{ (left + w) / 2 }}" y="{{ h - 6 }}" text-anchor="middle" class="axis">training seconds (cost)</text>
  <text x="14" y="{{ (h - bottom) / 2 }}" text-anchor="middle" class="axis" transform="rotate(-90 14 {{ (h - bottom) / 2 }})">{{ quality }}</text>
  {% if " " in front %}<polyline fill="none" stroke="#1d4ed8" stroke-width="1.5" stroke-dasharray="4 3" points="{{ front }}"/>{% endif %}
  {% for p in points %}
  <circle cx="{{ p.x }}" cy="{{ p.y }}" r="{{ 7 if p.front else 5 }}" fill="{{ '#16803d' if p.passed else '#b42318' }}"
          stroke="{{ '#1d4ed8' if p.front else 'none' }}" stroke-width="2"><title>{{ p.run }}</title></circle>
  <text x="{{ p.x + 9 }}" y="{{ p.y - 8 }}" class="tick">{{ p.name }}</text>
  {% endfor %}
</svg>
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>auditft compare: {{ c.runs|length }} runs ({{ c.task }})</title>
<style>
  :root { --ink:#1b1f24; --muted:#5b6470; --line:#d8dde3; --pass:#16803d; --fail:#b42318; --insufficient:#b54708; --error:#7a2e98; --bg:#f6f7f9; }
  * { box-sizing: border-box; }
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: var(--bg); }
  main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
  h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 13.5px; }
  th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
  th { background: #eef1f4; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .status { font-weight: 700; text-transform: uppercase; font-size: 11px; padding: 1px 5px; border-radius: 3px; color: #fff; }
  .status.pass { background: var(--pass); } .status.fail { background: var(--fail); } .status.insufficient { background: var(--insufficient); } .status.error { background: var(--error); }
  .better { color: var(--pass); font-weight: 600; } .worse { color: var(--fail); font-weight: 600; }
  .muted { color: var(--muted); } .small { font-size: 12.5px; } code { font-family: ui-monospace, Menlo, monospace; font-size: 12.5px; word-break: break-all; }
  .warn { border-left: 4px solid var(--insufficient); background: #fff4e5; padding: 6px 10px; margin: 8px 0; }
  svg text { font: 12px system-ui, sans-serif; fill: #333; } svg .axis { fill: #555; } svg .axisline { stroke: #999; }
  @media print { body { background: #fff; } main { max-width: none; padding: 0; } table, figure, tr { break-inside: avoid; } }
</style>
</head>
<body>
<main>
<h1>auditft compare — {{ c.task }}{% if c.against_released %}: what changed since the last sign-off{% endif %}</h1>
<p class="muted small">{{ c.runs|length }} runs on the same {{ c.runs[0].test_rows }} test rows · written {{ c.created_at }} · paired intervals: {{ c.n_boot }} resamples, seed {{ c.seed }}</p>
{% for w in c.warnings %}<div class="warn">{{ w }}</div>{% endfor %}
{% if c.against_released %}<p>Signed-off run <code>{{ c.against_released.released }}</code> ({{ c.runs[0].state|replace("_", " ") }}) → this run <code>{{ c.against_released.subject }}</code>.
  Differences are this run minus the signed-off one.</p>{% endif %}

<h2>Runs and their cost</h2>
<table>
  <tr><th>run</th><th>tuner</th><th>verdict</th><th class="num">trainable params</th><th class="num">adapter bytes</th><th class="num">training s</th><th class="num">audit s</th><th class="num">peak RSS</th><th>per-row evidence</th></tr>
  {% for r in c.runs %}
  <tr><td><code>{{ r.label }}</code>{% if r.state %}<br><span class="small muted">{{ r.state|replace("_", " ") }}</span>{% endif %}</td>
      <td>{{ r.cost.tuner }}<br><span class="small muted">{{ r.tuner_options }}</span></td>
      <td>{% if r.verdict == "passed" %}<span class="status pass">passed</span>{% else %}<span class="status fail">{{ r.verdict }}</span>{% endif %}</td>
      <td class="num">{{ fmt(r.cost.trainable_parameters) }}</td><td class="num">{{ fmt(r.cost.adapter_bytes) }}</td>
      <td class="num">{{ fmt(r.cost.training_seconds, 1) }}</td><td class="num">{{ fmt(r.cost.audit_seconds, 1) }}</td>
      <td class="num">{{ mib(r.cost.peak_rss_bytes) }}</td>
      <td class="small">{% if r.per_row_evidence %}yes ({{ r.test_rows }} rows){% else %}no: {{ r.per_row_evidence_missing }}{% endif %}</td></tr>
  {% endfor %}
</table>
<p class="small muted">Passing every gate: {% if c.passing_every_gate %}{% for p in c.passing_every_gate %}<code>{{ p }}</code>{{ ", " if not loop.last }}{% endfor %}{% else %}none of these runs{% endif %}.
Peak RSS: {{ c.runs[-1].cost.peak_memory_note }}.</p>

<h2>Quality against cost</h2>
{% if pareto %}<figure>{{ pareto }}<figcaption>{{ c.pareto.quality }} (adapter, test split) against training seconds. Green: passed every gate; red: blocked. Ringed and joined: the Pareto front (no other run is as good for less).</figcaption></figure>
{% else %}<p class="muted">No run recorded both a quality figure and its training time.</p>{% endif %}

<h2>Checks side by side</h2>
<table>
  <tr><th>check</th>{% for r in c.runs %}<th><code>{{ r.label[-22:] }}</code></th>{% endfor %}</tr>
  {% for k in c.checks %}
  <tr><td><code>{{ k.id }}</code>{% if k.op %}<br><span class="small muted">{{ ">=" if k.op == "min" else "<=" }} {{ k.threshold }}</span>{% endif %}</td>
    {% for r in c.runs %}{% set v = k.runs[r.label] %}
    <td class="num">{% if v %}{{ fmt(v.value) }}{% if v.ci_low is not none %} <span class="small muted">[{{ fmt(v.ci_low) }}, {{ fmt(v.ci_high) }}]</span>{% endif %}<br><span class="status {{ v.status }}">{{ v.status }}</span>{% else %}<span class="muted">not run</span>{% endif %}</td>
    {% endfor %}</tr>
  {% endfor %}
</table>

<h2>Paired differences</h2>
<p class="small muted">For each pair of runs: b − a with a 95% paired percentile-bootstrap interval (both runs scored on the same resampled test rows). "better" only when the interval excludes 0.</p>
{% for p in c.pairs %}
<h3 class="small">b <code>{{ p.b }}</code> − a <code>{{ p.a }}</code>{% if p.get("mcnemar") %} · McNemar p = {{ "%.3g"|format(p.mcnemar.p_value) }} ({{ p.mcnemar.only_b_correct }} rows only b right, {{ p.mcnemar.only_a_correct }} only a){% endif %}</h3>
<table>
  <tr><th>figure</th><th class="num">a</th><th class="num">b</th><th class="num">b − a</th><th class="num">95% paired CI</th><th>reading</th></tr>
  {% for cid, m in p.metrics.items() %}
  <tr><td><code>{{ cid }}</code></td>
  {% if m.difference is not none %}
    <td class="num">{{ fmt(m.value_a) }}</td><td class="num">{{ fmt(m.value_b) }}</td><td class="num">{{ signed(m.difference) }}</td>
    <td class="num">[{{ signed(m.ci_low) }}, {{ signed(m.ci_high) }}]</td>
    <td class="{{ 'better' if m.verdict == 'b better' else 'worse' if m.verdict == 'a better' else 'muted' }}">{{ m.verdict }}{{ " (higher is better)" if m.higher_is_better else " (lower is better)" }}</td>
  {% else %}<td colspan="5" class="small muted">{{ m.reason }}</td>{% endif %}</tr>
  {% endfor %}
</table>
{% endfor %}

{% if c.against_released %}
<h2>Check by check since the sign-off</h2>
<table>
  <tr><th>check</th><th>signed off</th><th>now</th><th class="num">now − signed off</th><th class="num">95% paired CI</th><th>change</th></tr>
  {% for x in c.against_released.changes %}
  <tr><td><code>{{ x.id }}</code></td>
    <td>{% if x.status_released %}{{ fmt(x.value_released) }} <span class="status {{ x.status_released }}">{{ x.status_released }}</span>{% else %}–{% endif %}</td>
    <td>{% if x.status_now %}{{ fmt(x.value_now) }} <span class="status {{ x.status_now }}">{{ x.status_now }}</span>{% else %}–{% endif %}</td>
    <td class="num">{{ signed(x.difference) }}</td>
    <td class="num">{% if x.ci_low is not none %}[{{ signed(x.ci_low) }}, {{ signed(x.ci_high) }}]{% else %}<span class="small muted">{{ x.reason }}</span>{% endif %}</td>
    <td>{{ x.change }}{% if x.verdict and x.verdict != "no clear difference" %} · {{ "better" if x.verdict == "b better" else "worse" }}{% endif %}</td></tr>
  {% endfor %}
</table>
{% endif %}
<p class="small muted">Runs: {% for r in c.runs %}<code>{{ r.path }}</code> (report sha256 <code>{{ (r.report_sha256 or "")[:16] }}</code>){{ "; " if not loop.last }}{% endfor %}</p>
</main>
</body>
</html>
"""


def _mib(value: object) -> str:
    return f"{value / 2**20:,.0f} MiB" if isinstance(value, (int, float)) else "–"


def pareto_chart(pareto: dict[str, Any], w: int = 560, h: int = 300) -> Markup | None:
    points = pareto.get("points") or []
    if not points:
        return None
    left, bottom = 64, 40
    xs, ys = [p["cost"] for p in points], [p["quality"] for p in points]
    xmin, xmax = min(xs), max(xs)
    ymin, ymax = min(ys), max(ys)
    xpad, ypad = (xmax - xmin) * 0.08 or max(xmax * 0.1, 1.0), (ymax - ymin) * 0.1 or 0.01
    xmin, xmax, ymin, ymax = max(0.0, xmin - xpad), xmax + xpad, ymin - ypad, ymax + ypad

    def place(p: dict[str, Any]) -> dict[str, Any]:
        x = left + (p["cost"] - xmin) / (xmax - xmin) * (w - left - 90)
        y = (h - bottom) - (p["quality"] - ymin) / (ymax - ymin) * (h - bottom - 24)
        return {**p, "x": round(x, 1), "y": round(y, 1), "name": f"{p.get('tuner') or ''} {p['run'][-6:]}".strip()}

    placed = [place(p) for p in points]
    front = " ".join(f"{p['x']},{p['y']}" for p in sorted((p for p in placed if p["front"]), key=lambda p: p["x"]))
    return render_fragment(_PARETO, points=placed, front=front, w=w, h=h, left=left, bottom=bottom,
                           xmin=xmin, xmax=xmax, ymin=ymin, ymax=ymax, quality=pareto.get("quality") or "quality")


def render(comparison: dict[str, Any]) -> str:
    """The page for ``compare.json`` content."""
    return str(render_fragment(_PAGE, c=comparison, pareto=pareto_chart(comparison["pareto"]), mib=_mib))
