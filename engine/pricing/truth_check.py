"""Decisions checked against the truth of a synthetic market: what a trained run's prices earn.

On a synthetic market the true parameters are stored as run ``truth``, so every decision of a
trained run can be re-projected with the truth. For every true complement pair S:

- ``decision``: the trained run's recommendation (``optimize_price`` with its defaults, the
  guardrails and the minimum gain worth a bundle included: what a merchandiser would act on), a
  bundle price or no bundle;
- ``true_gain_at_learned_price``: the true incremental margin of that decision (0 for no bundle),
  projected with the truth run;
- ``true_optimal_gain``: the true optimum within the same guardrails (``optimize_price`` on the
  truth run, with no minimum gain: the best there is);
- ``capture`` = true gain at the learned price / true optimal gain, for pairs where some discount
  truly pays (``mean``, ``min`` over them; ``total``: the sum of the true gains at the learned
  prices over the sum of the true optima, which weighs each pair by what is at stake);
  ``losing_pairs`` counts pairs (all of them) whose learned decision loses margin.

``pair_rate_ratio`` compares the magnitudes that drive those decisions: the trained run's
projected no-bundle rate of buying the whole pair, over the truth's (median over the pairs).
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import numpy as np

from engine.model.runs import get_run, update_metrics
from engine.pricing import bundle as B
from engine.pricing.demand import FIELD
from engine.pricing.optimize import PriceDecision, optimize_price
from engine.pricing.vectorized import load_demand
from engine.pricing.whatif import DEFAULT_WEEKS, project_bundle

log = logging.getLogger(__name__)

TRUE_COMPLEMENTS = """
SELECT item_a, item_b FROM model_pairs
WHERE run_id = 'truth' AND coupling > 0
  AND item_a IN (SELECT item_id FROM model_items WHERE run_id = $run)
  AND item_b IN (SELECT item_id FROM model_items WHERE run_id = $run)
ORDER BY item_a, item_b
"""
HAS_TRUTH = "SELECT count(*) FROM model_runs WHERE run_id = 'truth'"
GAIN_TOLERANCE = 1e-6  # currency over the horizon: below this a gain is zero


def truth_decisions(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str, weeks: float = DEFAULT_WEEKS) -> dict:
    """``decision_capture`` and ``pair_rate_ratio`` of run ``run_id`` (empty when no truth)."""
    with B.model_cursor(con, dataset) as (cur, _):
        if cur.execute(HAS_TRUTH).fetchall()[0][0] == 0:
            return {}
        pairs = [list(row) for row in cur.execute(TRUE_COMPLEMENTS, {"run": run_id}).fetchall()]
    rows: list[dict[str, Any]] = []
    rate_ratios: list[float] = []
    for items in pairs:
        learned = optimize_price(con, dataset, items, weeks=weeks, run=run_id, compare=False)
        truth = optimize_price(con, dataset, items, weeks=weeks, run="truth", min_gain_pct=0.0, compare=False)
        at_learned = 0.0
        if learned.discount_pays:
            projection = project_bundle(con, dataset, items, learned.price, weeks=weeks, run="truth")
            at_learned = projection.total.figures["incremental_margin"].value
        optimal = truth.incremental_margin
        rows.append(
            {
                "items": items,
                "learned_price": _one_price(learned) if learned.discount_pays else None,
                "true_price": _one_price(truth) if truth.discount_pays else None,
                "sum_of_parts": learned.projection.sum_of_parts,
                "true_gain_at_learned_price": float(at_learned),
                "true_optimal_gain": float(optimal),
                "capture": float(at_learned / optimal) if optimal > GAIN_TOLERANCE else None,
            }
        )
        rate_ratios.append(_joint_rate(con, dataset, items, run_id) / _joint_rate(con, dataset, items, "truth"))
    captures = [r["capture"] for r in rows if r["capture"] is not None]
    return {
        "decision_capture": {
            "mean": float(np.mean(captures)) if captures else None,
            "min": float(np.min(captures)) if captures else None,
            "total": _total_capture(rows),
            "pairs_where_a_discount_pays": len(captures),
            "losing_pairs": sum(r["true_gain_at_learned_price"] < -GAIN_TOLERANCE for r in rows),
            "weeks": weeks,
            "pairs": rows,
        },
        "pair_rate_ratio": float(np.median(rate_ratios)) if rate_ratios else None,
    }


def _one_price(decision: PriceDecision) -> float:
    """The price of a decision taken for all customers (no segment asked for: one price)."""
    price = decision.price
    assert not isinstance(price, dict), "truth decisions are taken for all customers, with one price"
    return float(price)


def _total_capture(rows: list[dict]) -> float | None:
    optimal = sum(r["true_optimal_gain"] for r in rows if r["capture"] is not None)
    gained = sum(r["true_gain_at_learned_price"] for r in rows if r["capture"] is not None)
    return float(gained / optimal) if optimal > GAIN_TOLERANCE else None


def _joint_rate(con: duckdb.DuckDBPyConnection, dataset: str, items: list[str], run: str) -> float:
    """Projected purchases per week of the whole pair with no bundle on offer."""
    sums = load_demand(con, dataset, items, run=run).without_bundle.sum(axis=(0, 1))
    return float(sums[FIELD["separate_full_share"]])


def add_truth_decisions(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str) -> dict:
    """Compute ``truth_decisions`` for a registered run and store them in its ``truth`` metrics."""
    info = get_run(con, dataset, run_id)
    decisions = truth_decisions(con, dataset, run_id)
    if not decisions:
        return info.metrics
    metrics = dict(info.metrics)
    metrics["truth"] = {**metrics.get("truth", {}), **decisions}
    update_metrics(con, dataset, run_id, metrics)
    log.info("truth decisions of run %s: capture %s", run_id, decisions["decision_capture"]["mean"])
    return metrics
