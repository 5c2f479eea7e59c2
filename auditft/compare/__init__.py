"""``auditft compare``: runs of one task on the same test rows, side by side, with paired
bootstrap intervals from each run's per-row outcomes (``evidence``), their cost, a Pareto view,
and what changed since the last sign-off (``released``). See docs/compare.md."""
