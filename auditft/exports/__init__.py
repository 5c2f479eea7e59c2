"""Where a released adapter goes next: MLflow (``mlflow_export``), a Hugging Face Hub folder
(``hub``), signed in-toto attestations and a sigstore ``model_signing`` signature
(``attest``). Each reads a finished run and its sign-off state from the ledger; none can
approve, waive or release (docs/exports.md)."""
