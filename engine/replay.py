"""Replayed trips: the basket context in which bundle projections evaluate a model run.

The item utility of the model (``engine.model.network``) includes the coupling to the rest of the
trip's basket, ``sum_{j in B\\i} c_ij``. That pull is large exactly on the trips that contain the
item, so a projection with an empty basket under-predicts joint purchases several-fold (DESIGN.md
section 4). Bundle projections therefore run over each customer's recent trips, replayed: the
customer's last ``replay_trips`` trips up to the end of the run's window, each with the run's
catalog items of its basket as context (the bundle's own items are removed by the projection,
``engine.pricing.params``). Each replayed trip stands for ``trips_per_week / n_h`` of the
customer's future trips per week (n_h: the customer's replayed trips).

This module fills ``model_trips`` (SQL): at the registration of a trained run, for the truth of a
synthetic market, and for runs registered before replayed trips existed. Its numpy twin over a
prepared run, for the held-out calibration, is ``engine.model.replay``; tests hold them together.
"""

from __future__ import annotations

import json

import duckdb

from engine.schema import MODEL_TRIPS_DDL

DEFAULT_REPLAY_TRIPS = 8  # trips replayed per customer

# Trips are ordered as engine.model.features.TRIPS orders them (ts, then basket_id).
REPLAY_TRIPS = """
INSERT INTO model_trips
WITH recent AS (
    SELECT basket_id, customer_id,
           row_number() OVER (PARTITION BY customer_id ORDER BY ts DESC, basket_id DESC) AS trip
    FROM baskets
    WHERE week <= $last_week AND customer_id IN (SELECT customer_id FROM model_customers WHERE run_id = $run)
    QUALIFY trip <= $replay_trips
), basket_items AS (
    SELECT DISTINCT l.basket_id, CASE WHEN $level = 'category' THEN p.category ELSE p.product_id END AS item_id
    FROM lines l JOIN products p USING (product_id)
    WHERE l.basket_id IN (SELECT basket_id FROM recent)
)
SELECT $run, r.customer_id, r.trip::INTEGER,
       coalesce(list(b.item_id ORDER BY b.item_id) FILTER (WHERE b.item_id IS NOT NULL), []::VARCHAR[])
FROM recent r
LEFT JOIN basket_items b
       ON b.basket_id = r.basket_id
      AND b.item_id IN (SELECT item_id FROM model_items WHERE run_id = $run)
GROUP BY r.customer_id, r.trip
"""


def insert_replayed_trips(
    cur: duckdb.DuckDBPyConnection, run_id: str, level: str, last_week: int, replay_trips: int
) -> None:
    """Fill ``model_trips`` for ``run_id`` from the dataset's baskets up to ``last_week``."""
    cur.execute(
        REPLAY_TRIPS, {"run": run_id, "level": level, "last_week": int(last_week), "replay_trips": int(replay_trips)}
    )


MISSING_TRIPS = """
SELECT (SELECT count(*) FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_name = 'model_runs') > 0
   AND (SELECT count(*) FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_name = 'model_trips') = 0
"""
RUNS_TO_BACKFILL = "SELECT run_id, kind, level, config FROM model_runs"
LAST_WEEK = "SELECT max(week) FROM baskets"


def backfill_replayed_trips(cur: duckdb.DuckDBPyConnection) -> bool:
    """Give the runs of a dataset registered before replayed trips existed their trips.

    ``cur`` is on the dataset's schema. A trained run replays up to the end of its training
    window (the last ``holdout_weeks`` weeks held out, as its features were built); the truth of
    a synthetic market up to the end of the data. Returns whether anything was done.
    """
    if not cur.execute(MISSING_TRIPS).fetchall()[0][0]:
        return False
    cur.execute(MODEL_TRIPS_DDL)
    last_week = cur.execute(LAST_WEEK).fetchall()[0][0] or 0
    for run_id, kind, level, config_json in cur.execute(RUNS_TO_BACKFILL).fetchall():
        config = json.loads(config_json or "{}") if kind == "trained" else {}
        holdout = int(config.get("holdout_weeks", 8)) if kind == "trained" else 0
        insert_replayed_trips(
            cur, run_id, level, last_week - holdout, int(config.get("replay_trips", DEFAULT_REPLAY_TRIPS))
        )
    return True
