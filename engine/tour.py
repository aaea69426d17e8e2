"""The stakeholder tour: one story over the default dataset, computed in one call.

KPIs of the dataset, the choice model's evaluation against its baselines, the best bundle the
studio finds, its optimized price and projected effect. Where the dataset has no trained model
yet, the pricing steps use the synthetic sample (whose true preferences price bundles at once)
and the story says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from engine import kpi, store
from engine.bundles import BundleQuery, find_bundles
from engine.errors import StudioError
from engine.model.runs import latest_run
from engine.pricing.bundle import pricing_run
from engine.pricing.optimize import PriceDecision, optimize_price


@dataclass(frozen=True)
class TourStory:
    dataset: str
    kpis: dict  # engine.kpi.headline
    model_run: str | None  # latest trained run of ``dataset``
    evaluation: dict | None  # its stored metrics (model vs baselines), None when untrained
    pricing_dataset: str  # ``dataset``, or the sample when ``dataset`` has no model
    bundle: object | None  # engine.bundles.BundleCandidate
    decision: PriceDecision | None
    notes: tuple[str, ...]


def trained_run(con: duckdb.DuckDBPyConnection, dataset: str) -> tuple[str | None, dict | None]:
    """The latest trained run of a dataset and its stored metrics (None, None: not trained)."""
    run = latest_run(con, dataset)
    return (run.run_id, run.metrics) if run else (None, None)


def tour_story(con: duckdb.DuckDBPyConnection, dataset: str, sample: str = "sample") -> TourStory:
    """Everything the tour shows, for ``dataset`` (pricing falls back to ``sample``)."""
    notes: list[str] = []
    kpis = kpi.headline(con, dataset, kpi.KpiFilter())
    run, evaluation = trained_run(con, dataset)
    pricing_dataset = dataset
    if pricing_run(con, dataset) is None:
        known = {d.name for d in store.list_datasets(con)}
        if sample not in known:
            notes.append(
                f"{dataset} has no choice model yet and there is no synthetic sample: train the model to price bundles."
            )
            return TourStory(dataset, kpis, run, evaluation, dataset, None, None, tuple(notes))
        pricing_dataset = sample
        notes.append(
            f"{dataset} has no trained choice model yet, so the bundle and its price come from the synthetic "
            "sample market, priced with its true preferences. Train the model on the Model page to price "
            f"{dataset}'s own bundles."
        )
    try:
        found = find_bundles(con, pricing_dataset, BundleQuery(top=5, across_categories=True))
        bundle = found.candidates[0] if found.candidates else None
        decision = optimize_price(con, pricing_dataset, list(bundle.items)) if bundle else None
    except StudioError as exc:
        notes.append(f"Bundle pricing is not available: {exc}")
        bundle, decision = None, None
    return TourStory(dataset, kpis, run, evaluation, pricing_dataset, bundle, decision, tuple(notes))
