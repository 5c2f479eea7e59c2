"""auditft: fine-tune, audit, and release only what people reviewed and signed.

The public surface for plugin authors is re-exported here: the ``hookimpl`` marker,
the records a plugin returns, and the error types.
"""

from auditft.errors import AuditError, AuditftError, PluginError, SuiteError
from auditft.hookspecs import hookimpl
from auditft.records import AuditResult, Metric, ReportSection, TuneResult
from auditft.version import __version__

__all__ = [
    "AuditError",
    "AuditResult",
    "AuditftError",
    "Metric",
    "PluginError",
    "ReportSection",
    "SuiteError",
    "TuneResult",
    "__version__",
    "hookimpl",
]
