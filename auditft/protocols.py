"""The contract's protocols, re-exported from where they live (``auditft.jobs``, beside the
jobs they take) under the name the architecture docs use."""

from auditft.jobs import AdapterLoader, Audit, Models, Retrained, Retrainer, RunAdapter, Tuner

__all__ = ["AdapterLoader", "Audit", "Models", "Retrained", "Retrainer", "RunAdapter", "Tuner"]
