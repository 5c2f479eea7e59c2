"""A finished run in MLflow: one tracking run (params, every gated check as metrics, the
sign-off as tags, the bound artefacts) and one model version in the registered model named
after the suite, whose alias follows the ledger's state (docs/exports.md).

Idempotent: the MLflow run and the model version are found again by the tag
``auditft.run_id``; a second export only updates tags and aliases, since the ledger's state is
the one thing that changes after a run. Only the ``MlflowClient`` API is used, so the
process's tracking URI is never changed, and mlflow is imported inside the functions (it
takes over a second) so that ``auditft --help`` stays fast."""

from __future__ import annotations

import json
import logging
import math
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import AuditftError, RunDirError
from auditft.exports.facts import RunFacts, run_facts

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT = "auditft"
#: the states that own a registered-model alias of the same name
ALIASED_STATES = ("approved", "released")
ARTEFACTS = ("report.json", "report.html", "model_card.md", "compliance.md", "manifest.json", "suite.yaml")
INSTALL_HINT = "the MLflow export needs MLflow: pip install 'auditft[export]'"
_MAX_KEY, _MAX_PARAM, _MAX_TAG = 250, 6000, 8000  # MLflow's limits (mlflow.utils.validation)
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\- ]")  # "/" too: a key must not read as a path
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # quoted into search filters


def default_tracking_uri(reports: Path) -> str:
    """The local store beside a reports directory's ledger: absolute, so that the store does
    not depend on the directory the command runs from."""
    return f"sqlite:///{(Path(reports).resolve() / 'mlflow' / 'mlflow.db').as_posix()}"


def export_run(run_dir: Path, *, tracking_uri: str | None = None) -> dict[str, Any]:
    """Log ``run_dir`` to MLflow (created once, then only re-tagged) and register its adapter;
    returns what was done. The run is checked against the ledger before anything is written."""
    facts = run_facts(Path(run_dir))  # RunDirError (2) / IntegrityError (6) before MLflow is touched
    if not _SAFE_ID.fullmatch(facts.run_id) or not _SAFE_ID.fullmatch(str(facts.report.get("suite", ""))):
        raise RunDirError(f"{facts.run_dir}: run id or suite name is not a plain name; cannot export it")
    uri = tracking_uri or default_tracking_uri(facts.run_dir.parent)
    client_class = _client_class()  # first: importing mlflow configures its loggers, then quietened
    with _quiet():
        try:
            client = _client(client_class, uri)
            return _export(client, facts, uri)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in ("mlflow", "sqlalchemy", "alembic"):
                raise AuditftError(f"{INSTALL_HINT} ({exc.name} is missing)") from exc
            raise


def run_params(facts: RunFacts) -> dict[str, str]:
    """What the run was trained with: suite, task, tuner and its options, training settings,
    seeds and base model, as MLflow params (strings of at most 6000 characters)."""
    report = facts.report
    tuner = report.get("tuner") or {}
    found: dict[str, Any] = {"suite": report.get("suite"), "task": report.get("task"), "tuner.kind": tuner.get("kind"),
                             "base_model.ref": (report.get("base_model") or {}).get("ref")}
    for prefix, values in (("tuner.options", tuner.get("options")), ("training", tuner.get("training")),
                           ("seed", facts.manifest.get("seeds"))):
        for key, value in (values or {}).items():
            found[_key(prefix, key)] = value
    return {key: _text(value)[:_MAX_PARAM] for key, value in found.items()}


def run_metrics(facts: RunFacts) -> dict[str, float]:
    """Every gated check: ``<audit>.<metric>`` and, when numeric and finite, its interval
    (``.ci_low``/``.ci_high``) and the base model's figure (``.base``/``.delta``)."""
    out: dict[str, float] = {}
    for check in facts.report.get("checks") or []:
        stem = _key(check.get("audit"), check.get("metric"))
        for suffix, field in (("", "value"), (".ci_low", "ci_low"), (".ci_high", "ci_high"),
                              (".base", "base_value"), (".delta", "delta")):
            number = _number(check.get(field))
            if number is not None:
                out.setdefault((stem + suffix)[:_MAX_KEY], number)
    return out


def run_tags(facts: RunFacts) -> dict[str, str]:
    """The sign-off as tags (state from the ledger, not the report) and each check's status."""
    report = facts.report
    tags = {"auditft.run_id": facts.run_id, "auditft.suite": str(report.get("suite", "")),
            "auditft.verdict": str(report.get("verdict", "")), "auditft.state": facts.state,
            "auditft.ledger_hash": facts.ledger_hash or "",
            "auditft.ledger_seq": "" if facts.ledger_seq is None else str(facts.ledger_seq),
            "auditft.approvers": ",".join(facts.approvers),
            # a blocked verdict that was approved was approved over these
            "auditft.waived": "; ".join(facts.waivers),
            "auditft.report_sha256": facts.artefacts.get("report.json", "")}
    for check in report.get("checks") or []:
        tags[_key("auditft.check", check.get("audit"), check.get("metric"))] = str(check.get("status", ""))
    return {key: value[:_MAX_TAG] for key, value in tags.items()}


def version_tags(facts: RunFacts) -> dict[str, str]:
    """The model version's tags: where it came from and its sign-off, plus the rejection."""
    keep = ("run_id", "suite", "verdict", "state", "ledger_hash", "ledger_seq", "approvers", "waived", "report_sha256")
    tags = {key: value for key, value in run_tags(facts).items() if key.removeprefix("auditft.") in keep}
    if facts.state == "rejected":
        tags.update({"auditft.rejected": "true", "auditft.rejected_by": ",".join(facts.rejected_by)})
    return tags


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow logs INFO lines (database migrations) and warns about its own and its store's
    deprecations: one export prints only auditft's lines. Restored afterwards."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # e.g. SQLAlchemy's, from MLflow's store
            yield
    finally:
        logger.setLevel(level)


def _client_class() -> type[MlflowClient]:
    import os

    # MLflow 3 sends usage telemetry from import on; auditft runs offline and sends nothing
    # (a user who wants it sets MLFLOW_DISABLE_TELEMETRY=false)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise AuditftError(INSTALL_HINT) from exc
    return MlflowClient


def _client(client_class: type[MlflowClient], uri: str) -> MlflowClient:
    """A client bound to ``uri`` for tracking and registry alike (no process-wide setting)."""
    database = _sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)  # sqlite creates the file, not its folder
    return client_class(tracking_uri=uri, registry_uri=uri)


def _sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?")[0]
    return Path(path).resolve() if path and path != ":memory:" else None


def _experiment(client: MlflowClient, uri: str) -> str:
    """The ``auditft`` experiment; a new one on SQLite keeps artefacts beside the database
    (MLflow's default root, ``./mlruns``, would depend on the working directory)."""
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        database = _sqlite_file(uri)
        location = (database.parent / "artifacts").as_uri() if database is not None else None
        return str(client.create_experiment(EXPERIMENT, artifact_location=location))
    if found.lifecycle_stage != "active":
        raise AuditftError(f"MLflow experiment '{EXPERIMENT}' is deleted in {uri}: restore it "
                           "(mlflow experiments restore) or give another --tracking-uri")
    return str(found.experiment_id)


def _export(client: MlflowClient, facts: RunFacts, uri: str) -> dict[str, Any]:
    experiment_id = _experiment(client, uri)
    tags = run_tags(facts)
    mlflow_run_id, created = _tracking_run(client, experiment_id, facts, tags)
    model = str(facts.report["suite"])
    version, aliases = _model_version(client, model, mlflow_run_id, facts)
    return {"tracking_uri": uri, "experiment_id": experiment_id, "mlflow_run_id": mlflow_run_id, "model_name": model,
            "model_version": version, "aliases": aliases, "created": created, "tags": tags}


def _tracking_run(client: MlflowClient, experiment_id: str, facts: RunFacts, tags: dict[str, str]) -> tuple[str, bool]:
    """The MLflow run of this auditft run: found by tag and re-tagged, or created with its
    params, metrics and artefacts. A run left unfinished by an interrupted export is deleted
    (MLflow keeps it recoverable) and made again, so no half-logged run is ever reused."""
    from mlflow.entities import Metric, Param, RunTag

    found = client.search_runs([experiment_id], filter_string=f"tags.`auditft.run_id` = '{facts.run_id}'",
                               order_by=["attributes.start_time ASC"])
    for run in found:
        if run.info.status != "FINISHED":
            client.delete_run(run.info.run_id)
    finished = [run for run in found if run.info.status == "FINISHED"]
    if finished:
        run_id = finished[0].info.run_id
        client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])
        return run_id, False
    author = str(facts.report.get("author", ""))
    run_id = client.create_run(experiment_id, run_name=facts.run_id, tags={**tags, "mlflow.user": author}).info.run_id
    try:
        params = [Param(key, value) for key, value in run_params(facts).items()]
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, 0) for key, value in run_metrics(facts).items()]
        for start in range(0, max(len(params), len(metrics)), 100):  # MLflow's batch limits
            client.log_batch(run_id, metrics=metrics[start:start + 100], params=params[start:start + 100])
        for name in ARTEFACTS:
            if (facts.run_dir / name).is_file():
                client.log_artifact(run_id, str(facts.run_dir / name))
        if (facts.run_dir / "adapter").is_dir():
            client.log_artifacts(run_id, str(facts.run_dir / "adapter"), "adapter")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    return run_id, True


def _model_version(client: MlflowClient, model: str, run_id: str, facts: RunFacts) -> tuple[str, list[str]]:
    """This run's version of ``model`` (found by tag, or registered from the run's adapter),
    re-tagged, with the alias of its state. An alias moves to this version when its state
    changed (or the alias is unset), so re-exporting an older release never takes ``released``
    back from a newer one; an alias this version no longer merits is removed."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(model, description=f"adapters of the auditft suite '{model}'")
    tags = version_tags(facts)
    found = client.search_model_versions(f"name='{model}' and tags.`auditft.run_id` = '{facts.run_id}'")
    if found:
        existing = min(found, key=lambda v: int(v.version))
        version, before = str(existing.version), existing.tags.get("auditft.state")
        for key, value in tags.items():
            client.set_model_version_tag(model, version, key, value)
    else:
        version, before = str(client.create_model_version(model, f"runs:/{run_id}/adapter", run_id=run_id,
                                                          tags=tags).version), None
    holders = {alias: str(v) for alias, v in client.get_registered_model(model).aliases.items()}
    for alias in ALIASED_STATES:
        if alias == facts.state and holders.get(alias) != version and (before != facts.state or alias not in holders):
            client.set_registered_model_alias(model, alias, version)
            holders[alias] = version
        elif alias != facts.state and holders.get(alias) == version:
            client.delete_registered_model_alias(model, alias)
            del holders[alias]
    return version, sorted(alias for alias, held in holders.items() if held == version)


def _key(*parts: object) -> str:
    """An MLflow key from names users chose: alphanumerics, ``_ - .`` and spaces only."""
    key = ".".join(_BAD_KEY_CHARS.sub("_", str(part)) for part in parts)
    return ("_" + key if key.startswith(".") else key)[:_MAX_KEY]


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
