"""``prepare``: everything a user can get wrong, checked before a run directory exists.

The suite, its plugins' options, every data row and the base model are validated here, and
each kind is looked up once: the result (``auditft.context.Prepared``, the run's resolved
plan) carries the registry entry and validated options of the tuner and of every audit, so
no later phase looks a kind up or validates an option again.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from auditft import guards
from auditft.context import PlannedAudit, Prepared
from auditft.data import load_data
from auditft.errors import SuiteError
from auditft.models import resolve_model, resolve_precision
from auditft.suite import Suite, load_suite, plugin_options

if TYPE_CHECKING:
    from auditft.plugins import PluginManager


def prepare(suite_path: Path | Suite, pm: PluginManager) -> Prepared:
    """Validate the suite, its plugins' options, every data row and the base model. A
    ``Suite`` already loaded and checked against ``pm`` (one tuner of a several-tuner suite,
    ``auditft.tuner_list``) is taken as it is."""
    from auditft.report.compliance import load_map

    started = time.perf_counter()
    load_map()  # a broken AUDITFT_COMPLIANCE_MAP stops here, not when the report is written
    # load_suite checks every kind exists (check_plugins)
    suite = suite_path if isinstance(suite_path, Suite) else load_suite(suite_path, pm)
    here = suite.source.parent
    audits = [PlannedAudit(spec, entry, plugin_options(entry.options, spec.options, here))
              for spec in suite.audits for entry in [pm.audits.require(spec.kind)]]
    # a data-stage audit (e.g. ``data``) measures and gates train/test overlap itself
    data = load_data(suite, tolerate_overlap=any(a.is_data_stage for a in audits))
    base = resolve_model(suite.model.base, base_dir=here,
                         trust_remote_code=suite.model.trust_remote_code, revision=suite.model.revision)
    # every load of this run (tuning, audits, retraining) reads precision and placement from here
    base = replace(base, precision=resolve_precision(suite.tuner.training.precision),
                   device_map=suite.model.device_map)
    tuner = pm.tuners.require(suite.tuner.kind)
    refusal = guards.network_refusal(tuner.needs_network)
    if refusal is not None:  # a tuner is not isolated like an audit: refuse before anything runs
        raise SuiteError(f"{suite.source}: tuner.kind: {suite.tuner.kind!r} (plugin {tuner.plugin!r}) {refusal}")
    tuner_options = plugin_options(tuner.options, suite.tuner.options, here)
    # a tuner may know combinations that cannot work (optional ``check_model`` on its class)
    check_model = getattr(tuner.factory, "check_model", None)
    reason = check_model(base, suite.task, data.labels) if check_model is not None else None
    if reason:
        raise SuiteError(f"{suite.source}: tuner.kind: {reason}")
    return Prepared(suite, data, base, tuner, tuner_options, audits, round(time.perf_counter() - started, 3))
