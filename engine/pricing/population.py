"""A large synthetic population for scale tests: resample a dataset's customers with noise.

``resample_population`` copies one model run of a source dataset into a new dataset with many
more customers: each new customer is a random source customer with Gaussian noise on the
preference vector and the price coefficient and log-normal noise on the trip rate, and keeps
that customer's attributes (segments) and one of its replayed trips, drawn at random (the basket
context of the projection: a million customers replay a million trips). Items, couplings and pairs
are copied as they are; habits are not carried over. Canonical tables other than products, customers and
customer_attributes stay empty: the dataset exists to price bundles at scale (``bench``).
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from engine import store
from engine.errors import DataError
from engine.pricing import bundle as B
from engine.schema import CANONICAL_DDL, MODEL_DDL

log = logging.getLogger(__name__)

SOURCE = "population"
READ_CUSTOMERS = """
SELECT customer_id, theta, beta_customer, trips_per_week FROM model_customers WHERE run_id = $run ORDER BY customer_id
"""
READ_TRIPS = "SELECT customer_id, items FROM model_trips WHERE run_id = $run ORDER BY customer_id, trip"
READ_ITEMS = "SELECT * EXCLUDE (run_id) FROM model_items WHERE run_id = $run"
READ_PAIRS = "SELECT * EXCLUDE (run_id) FROM model_pairs WHERE run_id = $run"
READ_RUN = "SELECT * EXCLUDE (run_id) FROM model_runs WHERE run_id = $run"
READ_ATTRIBUTES = "SELECT customer_id, attribute, value FROM customer_attributes"
READ_PRODUCTS = "SELECT * FROM products"

INSERT_RUN = "INSERT INTO model_runs SELECT $run, * FROM source_run"
INSERT_ITEMS = "INSERT INTO model_items SELECT $run, * FROM source_items"
INSERT_PAIRS = "INSERT INTO model_pairs SELECT $run, * FROM source_pairs"
INSERT_TRIPS = "INSERT INTO model_trips SELECT $run, customer_id, 1, items FROM new_trips"
INSERT_PRODUCTS = "INSERT INTO products SELECT * FROM source_products"
INSERT_CUSTOMERS = """
INSERT INTO model_customers SELECT $run, customer_id, theta, beta_customer, trips_per_week FROM new_customers
"""
INSERT_CANONICAL_CUSTOMERS = """
INSERT INTO customers
SELECT n.customer_id, coalesce(bool_or(a.value <> 'Unknown'), false)
FROM new_customers n LEFT JOIN source_attributes a ON a.customer_id = n.source_id
GROUP BY n.customer_id
"""
INSERT_ATTRIBUTES = """
INSERT INTO customer_attributes
SELECT n.customer_id, a.attribute, a.value
FROM new_customers n JOIN source_attributes a ON a.customer_id = n.source_id
"""


def resample_population(
    con: duckdb.DuckDBPyConnection,
    source: str,
    name: str,
    customers: int = 1_000_000,
    seed: int = 0,
    noise: float = 0.1,
    run: str | None = None,
) -> store.DatasetInfo:
    """Create dataset ``name`` with ``customers`` customers resampled from ``source``'s model run."""
    if customers < 1:
        raise DataError(f"a population needs at least one customer; found {customers}")
    with B.model_cursor(con, source) as (cur, _):
        info = B.choose_run(cur, source, run)
        frames = {
            "customers": cur.execute(READ_CUSTOMERS, {"run": info.run_id}).df(),
            "trips": cur.sql(READ_TRIPS, params={"run": info.run_id}).to_arrow_table(),
            "items": cur.execute(READ_ITEMS, {"run": info.run_id}).df(),
            "pairs": cur.execute(READ_PAIRS, {"run": info.run_id}).df(),
            "run": cur.execute(READ_RUN, {"run": info.run_id}).df(),
            "attributes": cur.execute(READ_ATTRIBUTES).df(),
            "products": cur.execute(READ_PRODUCTS).df(),
        }
    new_customers, new_trips = _resample(frames["customers"], frames["trips"], customers, seed, noise)

    def build(cur: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict]:
        cur.execute(CANONICAL_DDL)
        cur.execute(MODEL_DDL)
        registered = {
            "source_run": frames["run"],
            "source_items": frames["items"],
            "source_pairs": frames["pairs"],
            "source_attributes": frames["attributes"],
            "source_products": frames["products"],
            "new_customers": new_customers,
            "new_trips": new_trips,
        }
        for view, frame in registered.items():
            cur.register(view, frame)
        for statement in (INSERT_RUN, INSERT_ITEMS, INSERT_PAIRS, INSERT_CUSTOMERS, INSERT_TRIPS):
            cur.execute(statement, {"run": info.run_id})
        for statement in (INSERT_PRODUCTS, INSERT_CANONICAL_CUSTOMERS, INSERT_ATTRIBUTES):
            cur.execute(statement)
        for view in registered:
            cur.unregister(view)
        details = {"source": source, "run": info.run_id, "customers": customers, "seed": seed, "noise": noise}
        return {}, details

    result = store.replace_dataset(con, name, SOURCE, build)
    log.info("population %s: %d customers resampled from %s", name, customers, source)
    return result


def _resample(
    source: pd.DataFrame, trips: pa.Table, customers: int, seed: int, noise: float
) -> tuple[pa.Table, pa.Table]:
    """``customers`` new customers drawn from ``source`` with noise, and one replayed trip of each
    (drawn from its source customer's trips; none when the source customer has none), as Arrow tables."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(source), size=customers)  # (N,)
    theta = np.stack(source["theta"].to_numpy())[pick].astype(np.float32)  # (N, K)
    theta += rng.normal(0.0, noise, size=theta.shape).astype(np.float32)
    beta = source["beta_customer"].to_numpy()[pick] + rng.normal(0.0, noise, size=customers)
    trips_per_week = source["trips_per_week"].to_numpy()[pick] * np.exp(rng.normal(0.0, noise, size=customers))
    k = theta.shape[1]
    ids = pa.array([f"R{n:08d}" for n in range(customers)])
    new_customers = pa.table(
        {
            "customer_id": ids,
            "source_id": pa.array(source["customer_id"].to_numpy()[pick].astype(str)),
            "theta": pa.ListArray.from_arrays(
                pa.array(np.arange(0, (customers + 1) * k, k, dtype=np.int32)), pa.array(theta.ravel())
            ),
            "beta_customer": pa.array(beta),
            "trips_per_week": pa.array(trips_per_week),
        }
    )
    # source trips are sorted by customer: each source customer's trips are one block
    owner = np.searchsorted(
        source["customer_id"].to_numpy().astype(str),
        trips.column("customer_id").to_numpy(zero_copy_only=False).astype(str),
    )  # (T,)
    counts = np.bincount(owner, minlength=len(source))  # (H_source,)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has_trip = counts[pick] > 0  # (N,)
    chosen = starts[pick] + np.floor(rng.random(customers) * counts[pick]).astype(np.int64)  # (N,)
    new_trips = pa.table(
        {
            "customer_id": ids.filter(pa.array(has_trip)),
            "items": trips.column("items").take(pa.array(chosen[has_trip])),
        }
    )
    return new_customers, new_trips
