"""The sign-off wing: everything between a gated run and a release, and nothing a plugin can reach.

Only people act here, through the CLI and the workspace; no hook calls into this package.
Each module has one concern, and every caller imports the module it needs (the package
re-exports nothing, so importing one piece never drags in the rest):

``layout``       the run directory: naming, ``state.json``, where the shared ledger lives
``clock``        the one clock every time-dependent decision reads
``encoding``     ledger lines, canonical bytes, content hashes
``ledger``       the append-only, hash-chained (optionally keyed) ledger
``signing``      ed25519 signatures over an event's payload
``timestamping`` RFC 3161 timestamps from a time-stamping authority
``identity``     people's names: validation, comparison, printing
``trust``        the trust store of reviewers' public keys
``sealing``      pre-registration and seals of cached files a resume relies on
``events``       a run's events (ledger first, then the run's copy) and the bound artefacts
``review``       the review state of a run, computed from the ledger
``integrity``    what ``auditft verify`` checks
``decisions``    approve, reject, waive
``release``      shipping the approved bytes, and reconciling an interrupted release
``status``       where a run stands
``rendering``    ``report.html`` with the current review state (after each decision)
"""
