"""A registered run's evaluation as display-ready frames (the Model page renders these)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.model.runs import RunInfo

METRICS = ("nll", "loo_nll", "auc", "recall_at_10")
METRIC_LABELS = {
    "nll": "NLL (lower is better)",
    "loo_nll": "Leave-one-out NLL (lower is better)",
    "auc": "AUC (higher is better)",
    "recall_at_10": "Recall@10 (higher is better)",
}
SCORER_LABELS = {
    "model": "Choice model",
    "global_popularity": "Global popularity",
    "personal_frequency": "Personal frequency",
}


@dataclass(frozen=True)
class ModelReport:
    """Everything the Model page shows about one run."""

    run_id: str
    level: str
    device: str | None
    seconds: float | None
    training: dict  # epochs, train_examples_per_s, val_loss, evaluate_seconds
    validation: pd.DataFrame  # epoch, val_loss
    metrics: pd.DataFrame  # scorer x metric
    slices: pd.DataFrame  # slice, scorer, rows, nll, auc
    calibration: pd.DataFrame  # discount, scorer, purchase_rate (long), plus 'Observed'
    elasticities: pd.DataFrame  # segment, customers, mean, p5, p25, p50, p75, p95
    complements: pd.DataFrame  # item_a, item_b, coupling, co_purchase_lift
    substitutes: pd.DataFrame
    truth: dict[str, float] | None


def model_report(run: RunInfo) -> ModelReport:
    """Turn a run's stored metrics JSON into frames."""
    m = run.metrics
    scores = {"model": m.get("model", {}), **m.get("baselines", {})}
    metrics = pd.DataFrame(
        [
            {"scorer": SCORER_LABELS.get(name, name), **{k: values.get(k) for k in METRICS}}
            for name, values in scores.items()
        ]
    )
    slice_rows = []
    for slice_name, content in m.get("slices", {}).items():
        for scorer, label in SCORER_LABELS.items():
            if scorer in content:
                slice_rows.append(
                    {"slice": slice_name.replace("_", " "), "scorer": label, "rows": content["rows"], **content[scorer]}
                )
    calibration_rows = []
    for entry in m.get("calibration_by_discount", []):
        calibration_rows.append(
            {"discount": entry["discount"], "scorer": "Observed", "purchase_rate": entry["observed"]}
        )
        for scorer, label in SCORER_LABELS.items():
            calibration_rows.append({"discount": entry["discount"], "scorer": label, "purchase_rate": entry[scorer]})
    pairs = m.get("pairs", {})
    columns = ["item_a", "item_b", "coupling", "co_purchase_lift"]
    return ModelReport(
        run_id=run.run_id,
        level=run.level,
        device=run.device,
        seconds=run.seconds,
        training=m.get("training", {}),
        validation=pd.DataFrame(
            {
                "epoch": range(1, len(m.get("training", {}).get("val_losses", [])) + 1),
                "val_loss": m.get("training", {}).get("val_losses", []),
            }
        ),
        metrics=metrics,
        slices=pd.DataFrame(slice_rows),
        calibration=pd.DataFrame(calibration_rows, columns=["discount", "scorer", "purchase_rate"]),
        elasticities=pd.DataFrame(m.get("elasticities", [])),
        complements=pd.DataFrame(pairs.get("complements", []), columns=columns),
        substitutes=pd.DataFrame(pairs.get("substitutes", []), columns=columns),
        truth=m.get("truth"),
    )
