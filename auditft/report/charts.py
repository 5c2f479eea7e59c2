"""Inline SVG charts. Built with Jinja2 (autoescaped) so labels from data stay inert; no
scripts, no external resources, printable."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from auditft.report import render_fragment

_CONFUSION = """
<svg xmlns="http://www.w3.org/2000/svg" width="{{ w }}" height="{{ h }}" viewBox="0 0 {{ w }} {{ h }}" role="img"
     aria-label="confusion matrix {{ name }}">
  <text x="{{ left + k * cell / 2 }}" y="14" text-anchor="middle" class="axis">predicted</text>
  {% for j in range(k) %}
  <text x="{{ left + j * cell + cell / 2 }}" y="{{ top - 6 }}" text-anchor="middle" class="tick">{{ labels[j][:14] }}</text>
  {% endfor %}
  {% for i in range(k) %}
  <text x="{{ left - 6 }}" y="{{ top + i * cell + cell / 2 + 4 }}" text-anchor="end" class="tick">{{ labels[i][:14] }}</text>
  {% for j in range(k) %}{% set v = matrix[i][j] %}{% set share = v / (rows[i] or 1) %}
  <rect x="{{ left + j * cell }}" y="{{ top + i * cell }}" width="{{ cell - 2 }}" height="{{ cell - 2 }}"
        fill="{{ color(i == j, share) }}"/>
  <text x="{{ left + j * cell + cell / 2 }}" y="{{ top + i * cell + cell / 2 }}" text-anchor="middle" class="{{ 'num-dark' if share > 0.55 else 'num' }}">{{ v }}</text>
  <text x="{{ left + j * cell + cell / 2 }}" y="{{ top + i * cell + cell / 2 + 14 }}" text-anchor="middle" class="{{ 'pct-dark' if share > 0.55 else 'pct' }}">{{ "%.0f"|format(share * 100) }}%</text>
  {% endfor %}{% endfor %}
</svg>
"""

_LINE = """
<svg xmlns="http://www.w3.org/2000/svg" width="{{ w }}" height="{{ h }}" viewBox="0 0 {{ w }} {{ h }}" role="img" aria-label="{{ title }}">
  <line x1="{{ pad }}" y1="{{ h - pad }}" x2="{{ w - 10 }}" y2="{{ h - pad }}" class="axisline"/>
  <line x1="{{ pad }}" y1="10" x2="{{ pad }}" y2="{{ h - pad }}" class="axisline"/>
  <text x="{{ pad - 4 }}" y="16" text-anchor="end" class="tick">{{ "%.3g"|format(ymax) }}</text>
  <text x="{{ pad - 4 }}" y="{{ h - pad }}" text-anchor="end" class="tick">{{ "%.3g"|format(ymin) }}</text>
  <text x="{{ w - 10 }}" y="{{ h - pad + 14 }}" text-anchor="end" class="tick">step {{ xmax }}</text>
  {% for s in series %}
  <polyline fill="none" stroke="{{ s.color }}" stroke-width="2" points="{{ s.points }}"/>
  {% if s.dots %}{% for p in s.points.split(" ") %}<circle cx="{{ p.split(",")[0] }}" cy="{{ p.split(",")[1] }}" r="3.5" fill="{{ s.color }}"/>{% endfor %}{% endif %}
  <text x="{{ pad + 8 }}" y="{{ 24 + loop.index0 * 14 }}" class="legend" style="fill: {{ s.color }}">{{ s.name }}</text>
  {% endfor %}
</svg>
"""


def _color(diagonal: bool, share: float) -> str:
    # green intensity on the diagonal (right), red off it (wrong); share of the true row
    alpha = 0.08 + 0.85 * max(0.0, min(1.0, share))
    base = (22, 128, 61) if diagonal else (190, 40, 40)
    r, g, b = (round(255 - (255 - c) * alpha) for c in base)
    return f"rgb({r},{g},{b})"


def confusion_chart(matrix: list[list[int]], labels: list[str], name: str = "") -> Markup:
    k = len(labels)
    cell = 64 if k <= 4 else max(28, 256 // k)
    left, top = 100, 40
    rows = [sum(r) for r in matrix]
    return render_fragment(_CONFUSION, matrix=matrix, labels=[str(x) for x in labels], k=k, cell=cell,
                           left=left, top=top, w=left + k * cell + 10, h=top + k * cell + 10,
                           rows=rows, color=_color, name=name)


def line_chart(series: list[dict[str, Any]], title: str, w: int = 420, h: int = 180) -> Markup:
    """``series``: [{"name", "points": [[x, y], ...], "color"}]"""
    pad = 44
    xs = [p[0] for s in series for p in s["points"]]
    ys = [p[1] for s in series for p in s["points"]]
    if not xs:
        return Markup("")
    xmax, ymin, ymax = max(xs) or 1, min(ys), max(ys)
    span = (ymax - ymin) or 1.0

    def project(p: list[float]) -> str:
        x = pad + (p[0] / xmax) * (w - pad - 10)
        y = 10 + (1 - (p[1] - ymin) / span) * (h - pad - 10)
        return f"{x:.1f},{y:.1f}"

    # sparse series (e.g. one validation loss per epoch) get dots so a single point shows
    drawn = [{"name": s["name"], "color": s.get("color", "#2255aa"), "dots": len(s["points"]) <= 12,
              "points": " ".join(project(p) for p in s["points"])} for s in series if s["points"]]
    return render_fragment(_LINE, series=drawn, title=title, w=w, h=h, pad=pad, xmax=xmax, ymin=ymin, ymax=ymax)


_BARS = """
<svg xmlns="http://www.w3.org/2000/svg" width="{{ w }}" height="{{ h }}" viewBox="0 0 {{ w }} {{ h }}" role="img" aria-label="{{ title }}">
  <line x1="{{ left }}" y1="{{ top }}" x2="{{ left }}" y2="{{ h - 22 }}" class="axisline"/>
  <text x="{{ left }}" y="{{ h - 6 }}" text-anchor="middle" class="tick">{{ "%.3g"|format(lo) }}</text>
  <text x="{{ left + width }}" y="{{ h - 6 }}" text-anchor="end" class="tick">{{ "%.3g"|format(hi) }}</text>
  {% if ref is not none %}<line x1="{{ x(ref) }}" y1="{{ top - 4 }}" x2="{{ x(ref) }}" y2="{{ h - 22 }}" stroke="#b33" stroke-dasharray="4 3"/>
  <text x="{{ x(ref) }}" y="{{ top - 6 }}" text-anchor="middle" class="tick" style="fill:#b33">{{ ref_label }}</text>{% endif %}
  {% for row in rows %}{% set y = top + loop.index0 * step %}
  <text x="{{ left - 6 }}" y="{{ y + bar / 2 + 4 }}" text-anchor="end" class="tick">{{ row.label[:28] }}</text>
  {% if row.base is not none %}<rect x="{{ left }}" y="{{ y + bar + 1 }}" width="{{ [x(row.base) - left, 0]|max }}" height="{{ bar / 3 }}" fill="#9aa5b1"/>{% endif %}
  <rect x="{{ left }}" y="{{ y }}" width="{{ [x(row.value) - left, 0]|max }}" height="{{ bar }}" fill="{{ row.color or '#2f6fb0' }}"/>
  {% if row.ci_low is not none and row.ci_high is not none %}
  <line x1="{{ x(row.ci_low) }}" y1="{{ y + bar / 2 }}" x2="{{ x(row.ci_high) }}" y2="{{ y + bar / 2 }}" stroke="#111" stroke-width="1.5"/>
  <line x1="{{ x(row.ci_low) }}" y1="{{ y + 2 }}" x2="{{ x(row.ci_low) }}" y2="{{ y + bar - 2 }}" stroke="#111"/>
  <line x1="{{ x(row.ci_high) }}" y1="{{ y + 2 }}" x2="{{ x(row.ci_high) }}" y2="{{ y + bar - 2 }}" stroke="#111"/>
  {% endif %}
  <text x="{{ left + width + 6 }}" y="{{ y + bar / 2 + 4 }}" class="tick">{{ "%.3f"|format(row.value) }}{% if row.note %} {{ row.note }}{% endif %}</text>
  {% endfor %}
</svg>
"""


def bar_chart(rows: list[dict[str, Any]], title: str, *, lo: float = 0.0, hi: float | None = None,
              ref: float | None = None, ref_label: str = "", width: int = 300) -> Markup:
    """Horizontal bars with optional 95% CI whiskers and a thin grey bar for the base model.

    ``rows``: [{"label", "value", "ci_low"?, "ci_high"?, "base"?, "note"?, "color"?}];
    ``ref`` draws a dashed reference line (e.g. a gate threshold or the overall figure).
    Non-finite values are skipped, so a missing figure never draws as zero.
    """
    from auditft.records import is_finite

    clean: list[dict[str, Any]] = [{"label": str(r["label"]), "value": float(r["value"]),
              "ci_low": r.get("ci_low") if is_finite(r.get("ci_low")) else None,
              "ci_high": r.get("ci_high") if is_finite(r.get("ci_high")) else None,
              "base": r.get("base") if is_finite(r.get("base")) else None,
              "note": str(r.get("note") or ""), "color": r.get("color")}
             for r in rows if is_finite(r.get("value"))]
    if not clean:
        return Markup("")
    values = [r["value"] for r in clean] + [r[k] for r in clean for k in ("ci_high", "base") if r[k] is not None]
    top_value = hi if hi is not None else max(values + ([ref] if is_finite(ref) else []))
    span = (top_value - lo) or 1.0
    left, top, bar, step = 150, 22, 16, 26

    def x(value: float) -> float:
        return round(left + max(0.0, min(1.0, (value - lo) / span)) * width, 1)

    return render_fragment(_BARS, rows=clean, title=title, x=x, left=left, top=top, bar=bar, step=step,
                           width=width, lo=lo, hi=top_value, ref=ref if is_finite(ref) else None,
                           ref_label=ref_label, w=left + width + 90, h=top + step * len(clean) + 26)
