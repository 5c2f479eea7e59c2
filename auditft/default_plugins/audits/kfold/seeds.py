"""Seed stability (``seeds`` >= 2): fold 1's split trained again with other seeds, so that
the spread of the held-out figure across seeds can be set beside the spread across folds.

Fold 1's own adapter is seed 1 (``job.seed``, as k-fold always trained it); seed ``s`` >= 2 is
``job.seed + SEED_STRIDE * (s - 1)``, far from the fold seeds ``job.seed + i``. Every seed
trains on the same rows (with early stopping: the same validation part) and is scored on the
same held-out rows, so the seeds differ only in what core's retraining service seeds before
the tuner builds the model: the fresh classifier head and the adapter matrices (LoRA A).
"""

from __future__ import annotations

from typing import Any

from auditft.default_plugins.audits.kfold.statistics import seed_spread, std_interval, t_interval
from auditft.records import Metric

#: distance between the seeds of the seed-stability runs (the folds use job.seed + i, i < 50)
SEED_STRIDE = 1000

SEED_NOTE = (
    "Seed stability: {n} adapters trained on fold 1's split ({n_train} training rows, scored on the same "
    "{n_heldout} held-out rows), fold 1's own adapter being seed 1. Core's retraining service seeds before the "
    "tuner builds the model, so the seed sets the fresh classifier head and the adapter's initial weights "
    "(LoRA A); the training loop (batch order, dropout) follows the suite's seed in every run, so this spread "
    "is the initialisation's alone. seed_std: sample std over the seeds with the chi-square 95% interval "
    "(df = seeds - 1), as for kfold_std; seed_range: max - min, its interval the std interval times d_n, the "
    "expected range of that many normal draws. With few seeds these intervals are wide (3 seeds: the upper "
    "bound is 6.3 times the std). n is the number of held-out rows each seed was scored on."
)


def seed_values(base_seed: int, n: int) -> list[int]:
    """The ``n`` seeds: ``base_seed`` (fold 1's adapter) and ``base_seed + SEED_STRIDE * j``."""
    return [base_seed + SEED_STRIDE * j for j in range(n)]


def seed_record(index: int, seed: int, model: str, record: dict[str, Any],
                predictions: list[int] | None) -> dict[str, Any]:
    """One seed's evidence row from a fold-style record (``heldout_*``, ``train_*``, timings);
    ``_predictions`` (held-out class predictions) is dropped once the agreement is counted."""
    keep = ("heldout_accuracy", "heldout_macro_f1", "train_accuracy", "heldout_token_f1", "heldout_exact_match",
            "train_token_f1", "gap", "steps", "train_seconds", "tune_seconds", "fold_seconds")
    out = {"seed_index": index, "seed": seed, "model": model}
    out.update({key: record[key] for key in keep if key in record})
    out["seconds"] = out.pop("fold_seconds", None)
    out["_predictions"] = predictions
    return out


def disagreement(predictions: list[list[int]]) -> float | None:
    """Share of held-out rows on which not every seed's model predicts the same class."""
    if len(predictions) < 2 or not predictions[0]:
        return None
    rows = list(zip(*predictions))
    return sum(len(set(row)) > 1 for row in rows) / len(rows)


def seed_result(runs: list[dict[str, Any]], *, name: str, fold_held: list[float], n_train: int,
                n_heldout: int) -> tuple[dict[str, Metric], dict[str, Any], str]:
    """The seed metrics, the ``evidence.seeds`` block and the note, from the seed runs."""
    predictions = [r.pop("_predictions") for r in runs]
    values = [float(r[f"heldout_{name}"]) for r in runs]
    metrics = seed_spread(values, n_heldout=n_heldout, name=name)
    fold_low, fold_high = std_interval(fold_held)
    std, spread = metrics[f"seed_std_{name}"], metrics[f"seed_range_{name}"]
    extra = [r["seconds"] for r in runs[1:] if r.get("seconds") is not None]
    agree = disagreement([p for p in predictions if p is not None]) if all(p is not None for p in predictions) else None
    label = "accuracy" if name == "accuracy" else "token F1"
    summary = (f"Across {len(runs)} seeds on one split ({n_heldout} held-out rows) the held-out {label} ranged "
               f"{min(values):.3f}-{max(values):.3f} (std {std.value:.3f}, 95% CI {std.ci_low:.3f}-{std.ci_high:.3f}); "
               f"across the {len(fold_held)} folds its std was {t_interval(fold_held)['std']:.3f}.")
    evidence = {
        "n_seeds": len(runs),
        "split": "fold 1",
        "n_train": n_train,
        "n_heldout": n_heldout,
        "seeds": [r["seed"] for r in runs],
        "runs": runs,
        "mean": sum(values) / len(values),
        "std": std.value,
        "range": spread.value,
        "disagreement": agree,
        "beside": {"seed_std": std.value, "seed_std_ci": [std.ci_low, std.ci_high], "seed_range": spread.value,
                   "fold_std": t_interval(fold_held)["std"], "fold_std_ci": [fold_low, fold_high],
                   "fold_range": max(fold_held) - min(fold_held)},
        "varies": "weight initialisation (classifier head, adapter matrices); batch order and dropout follow "
                  "the suite's seed",
        "extra_trainings": len(runs) - 1,
        "extra_seconds": round(sum(extra), 3),
        "extra_seconds_per_seed": round(sum(extra) / len(extra), 3) if extra else None,
        "summary": summary,
    }
    note = SEED_NOTE.format(n=len(runs), n_train=n_train, n_heldout=n_heldout)
    return metrics, evidence, note
