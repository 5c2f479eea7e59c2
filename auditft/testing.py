"""The plugin author kit, in one import: fixtures and conformance checks.

* ``isolated_plugin_manager()``: built-ins only, no entry points, no environment.
* ``registered(pm, plugin, name)``: register a plugin for the duration of a ``with`` block.
* ``tiny_classifier(path)`` / ``tiny_causal_lm(path)``: tiny random models saved as
  safetensors with a real tokenizer, built in-process (no hub, seconds on a CPU).
* ``toy_classification_data(dir)``: a small learnable dataset with group columns.
* ``knowing_causal_lm(path)`` / ``toy_facts()``: the tiny causal LM taught general facts
  (sums, differences, weekdays), a base model with something to forget (``retention``).
* ``check_audit(plugin, kind)`` / ``check_tuner(plugin, kind)``: conformance checks for plugin
  authors (``auditft.conformance``), each call into the plugin under a deadline (``timeout``,
  600 s by default) and guarded against ``sys.exit``; docs/plugins.md lists every check.

The fixtures live in ``auditft.fixtures`` and the checks in ``auditft.conformance`` (which
uses the fixtures); this module only gathers them, so neither imports the other through it.
"""

from __future__ import annotations

from auditft.conformance import PluginCheckError, check_audit, check_tuner
# the toy vocabulary (FILLER ... TOY_WORDS) is imported from here by tests and benchmarks,
# outside ``__all__`` as before
from auditft.fixtures import (
    FILLER,
    NEGATIVE,
    POSITIVE,
    TINY_CHAT_TEMPLATE,
    TOY_CAPITALS,
    TOY_WORDS,
    isolated_plugin_manager,
    knowing_causal_lm,
    registered,
    tiny_causal_lm,
    tiny_classifier,
    toy_classification_data,
    toy_facts,
    toy_generation_data,
    write_suite,
)

__all__ = ["PluginCheckError", "check_audit", "check_tuner", "isolated_plugin_manager", "knowing_causal_lm",
           "registered", "tiny_causal_lm", "tiny_classifier", "toy_classification_data", "toy_facts",
           "toy_generation_data", "write_suite"]
