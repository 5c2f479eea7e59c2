"""The ``data`` audit's pure checks in one namespace (for tests and scripts): plain lists and
arrays in, results indexed by position out; callers map positions to file rows. Each lives in
the module of its concern; heavy libraries (sklearn, cleanlab, datasketch) load on first call."""

from __future__ import annotations

from auditft.default_plugins.audits.data.duplicates import (
    Duplicates,
    Pair,
    find_duplicates,
    jaccard,
    lsh_bands,
    normalise,
    shingles,
)
from auditft.default_plugins.audits.data.groups import GroupCount, representation
from auditft.default_plugins.audits.data.labels import LabelIssues, label_issues, out_of_fold_probs, text_features
from auditft.default_plugins.audits.data.lengths import LengthStats, token_lengths
from auditft.default_plugins.audits.data.options import PII_TYPES
from auditft.default_plugins.audits.data.personal_data import PiiScan, detect_pii, mask_pii, scan_pii
from auditft.pii import Finding as PiiFinding
from auditft.pii import digits, luhn_valid, mask_value, ssn_valid

__all__ = [
    "PII_TYPES", "Duplicates", "GroupCount", "LabelIssues", "LengthStats", "Pair", "PiiFinding", "PiiScan",
    "detect_pii", "digits", "find_duplicates", "jaccard", "label_issues", "lsh_bands", "luhn_valid", "mask_pii",
    "mask_value", "normalise", "out_of_fold_probs", "representation", "scan_pii", "shingles", "ssn_valid",
    "text_features", "token_lengths",
]
