"""Exported model parameters for one bundle: the ONE place the item utility is evaluated.

The utility equation of ``engine.schema.MODEL_DDL`` (DESIGN.md section 4; SHOPPER, Ruiz, Athey
& Blei 2020) for bundle item i of customer h on replayed trip t (``engine.replay``), at the
item's regular price::

    u(h,i,t) = lambda_i + <theta_h, alpha_i> + habit(h,i) - b(h,i) * regular_price_i
             + sum_{j in B_t \\ S} c_ij                                     the rest of the basket
    b(h,i)   = softplus(beta_customer_h + beta_item_i)                       (1/currency, > 0)
    c_ij     = <rho_i, alpha_j> + <rho_j, alpha_i> + pair_ij                 (pair_ij: model_pairs)

B_t is trip t's basket and S the bundle: the bundle's own items are left out of the context (the
subset model of ``engine.pricing.demand`` decides them, with their couplings c_ij, i, j in S).
Each replayed trip stands for ``trips_per_week / n_h`` of the customer's trips per week (n_h: the
customer's replayed trips); a customer with no replayed trip gets one trip with an empty basket.

The equation is written once, as the SQL macros and the relation ``TRIP_UTILITIES`` below, and
evaluated in DuckDB over the exported tables with the run, the items and the segment as bound
parameters. Both projection paths start from it: the SQL path (``engine.pricing.query``) embeds
it, the vectorized path (``load_bundle``) fetches it into numpy arrays.

Items sit in "slots" 1..4 in the order the caller gave them; slots past the bundle size are NULL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import numpy as np

from engine.cache import LruCache
from engine.errors import DataError, ModelError
from engine.model.projection import PAIR_PRIOR, anchor_couplings
from engine.pricing.bundle import ALL_CUSTOMERS, Bundle

log = logging.getLogger(__name__)

BUCKETS = 64  # customers are hashed into this many buckets; bands resample buckets (uncertainty.py)

MACROS = """
CREATE OR REPLACE TEMP MACRO softplus(x) AS greatest(x, 0) + ln(1 + exp(-abs(x)));
CREATE OR REPLACE TEMP MACRO price_coefficient(beta_customer, beta_item) AS softplus(beta_customer + beta_item);
CREATE OR REPLACE TEMP MACRO item_utility(theta, beta_customer, habit, popularity, alpha, beta_item, price) AS
    popularity + list_dot_product(theta, alpha) + habit - price_coefficient(beta_customer, beta_item) * price;
"""

PAIR_COUPLINGS = """
WITH chosen AS (
    SELECT list_position($items, item_id) AS slot, item_id, alpha, rho
    FROM model_items WHERE run_id = $run AND list_contains($items, item_id)
)
SELECT a.slot AS slot_a, b.slot AS slot_b,
       list_dot_product(a.rho, b.alpha) + list_dot_product(b.rho, a.alpha)
       + coalesce((SELECT avg(p.coupling) FROM model_pairs p
                   WHERE p.run_id = $run
                     AND ((p.item_a = a.item_id AND p.item_b = b.item_id)
                       OR (p.item_a = b.item_id AND p.item_b = a.item_id))), 0) AS coupling
FROM chosen a JOIN chosen b ON a.slot < b.slot
ORDER BY slot_a, slot_b
"""

# One row per (customer, replayed trip) of the run (customers in the segment, when a value is given).
TRIP_UTILITIES = """
WITH slot_items AS (
    SELECT list_position($items, item_id) AS slot, item_id, alpha, rho
    FROM model_items WHERE run_id = $run AND list_contains($items, item_id)
), run_pairs AS (             -- explicit couplings, both ways round
    SELECT item_a AS item, item_b AS partner, coupling FROM model_pairs WHERE run_id = $run
    UNION ALL
    SELECT item_b, item_a, coupling FROM model_pairs WHERE run_id = $run
), partner_couplings AS (     -- c_kj of bundle slot k with every catalog item j outside the bundle
    SELECT item_id,
           sum(c) FILTER (WHERE slot = 1) AS c1, sum(c) FILTER (WHERE slot = 2) AS c2,
           sum(c) FILTER (WHERE slot = 3) AS c3, sum(c) FILTER (WHERE slot = 4) AS c4
    FROM (
        SELECT i.item_id, s.slot,
               list_dot_product(s.rho, i.alpha) + list_dot_product(i.rho, s.alpha)
               + coalesce((SELECT avg(r.coupling) FROM run_pairs r
                           WHERE r.item = s.item_id AND r.partner = i.item_id), 0) AS c
        FROM model_items i CROSS JOIN slot_items s
        WHERE i.run_id = $run AND NOT list_contains($items, i.item_id)
    )
    GROUP BY item_id
), trip_context AS (          -- sum_{j in B_t \\ S} c_kj per replayed trip and slot
    SELECT t.customer_id, t.trip,
           coalesce(sum(c.c1), 0) AS x1, coalesce(sum(c.c2), 0) AS x2,
           coalesce(sum(c.c3), 0) AS x3, coalesce(sum(c.c4), 0) AS x4
    FROM (SELECT customer_id, trip,
                 unnest(CASE WHEN len(items) = 0 THEN [NULL::VARCHAR] ELSE items END) AS item_id  -- keep empty baskets
          FROM model_trips WHERE run_id = $run) t
    LEFT JOIN partner_couplings c USING (item_id)
    GROUP BY t.customer_id, t.trip
)
SELECT (list_position($segment_values, p.segment) - 1)::INTEGER AS segment_code,
       (hash(p.customer_id) % $buckets::UBIGINT)::INTEGER AS bucket,  -- UBIGINT: a BIGINT modulus is 10x slower
       hash(p.customer_id) AS customer_key,
       coalesce(t.trip, 1)::INTEGER AS trip,
       t.trip IS NOT NULL AS replayed,                               -- a real replayed trip (not a stand-in)
       1.0 / count(*) OVER (PARTITION BY p.customer_id) AS customer_share,
       p.trips_per_week::DOUBLE / count(*) OVER (PARTITION BY p.customer_id) AS trips_per_week,
       (item_utility(p.theta, p.beta_customer, coalesce(h.habit_1, 0),
                     s.popularity[1], s.alpha[1], s.beta_item[1], s.price[1]) + coalesce(t.x1, 0))::DOUBLE AS u1,
       (item_utility(p.theta, p.beta_customer, coalesce(h.habit_2, 0),
                     s.popularity[2], s.alpha[2], s.beta_item[2], s.price[2]) + coalesce(t.x2, 0))::DOUBLE AS u2,
       (item_utility(p.theta, p.beta_customer, coalesce(h.habit_3, 0),
                     s.popularity[3], s.alpha[3], s.beta_item[3], s.price[3]) + coalesce(t.x3, 0))::DOUBLE AS u3,
       (item_utility(p.theta, p.beta_customer, coalesce(h.habit_4, 0),
                     s.popularity[4], s.alpha[4], s.beta_item[4], s.price[4]) + coalesce(t.x4, 0))::DOUBLE AS u4,
       ((price_coefficient(p.beta_customer, s.beta_item[1]) + price_coefficient(p.beta_customer, s.beta_item[2])
         + coalesce(price_coefficient(p.beta_customer, s.beta_item[3]), 0)
         + coalesce(price_coefficient(p.beta_customer, s.beta_item[4]), 0)) / len(s.price))::DOUBLE
           AS bundle_price_coefficient
FROM (
    SELECT c.customer_id, c.theta, c.beta_customer, c.trips_per_week,
           CASE WHEN $attribute IS NULL THEN 'All customers' ELSE coalesce(a.value, 'Unknown') END AS segment
    FROM model_customers c
    LEFT JOIN customer_attributes a ON a.customer_id = c.customer_id AND a.attribute = $attribute
    WHERE c.run_id = $run
) p
CROSS JOIN (
    SELECT list(popularity ORDER BY slot) AS popularity, list(alpha ORDER BY slot) AS alpha,
           list(beta_item ORDER BY slot) AS beta_item, list(regular_price ORDER BY slot) AS price
    FROM (SELECT list_position($items, item_id) AS slot, * FROM model_items
          WHERE run_id = $run AND list_contains($items, item_id))
) s
LEFT JOIN (
    SELECT customer_id,
           sum(habit) FILTER (WHERE item_id = $items[1]) AS habit_1,
           sum(habit) FILTER (WHERE item_id = $items[2]) AS habit_2,
           sum(habit) FILTER (WHERE item_id = $items[3]) AS habit_3,
           sum(habit) FILTER (WHERE item_id = $items[4]) AS habit_4
    FROM model_habits WHERE run_id = $run AND list_contains($items, item_id)
    GROUP BY customer_id
) h ON h.customer_id = p.customer_id
LEFT JOIN trip_context t ON t.customer_id = p.customer_id
WHERE $value IS NULL OR p.segment = $value
"""


# Every real replayed trip of the run (all customers, no segment): what the couplings are anchored on.
ANCHOR_ROWS = (
    "SELECT coalesce(u1, 0) AS u1, coalesce(u2, 0) AS u2, coalesce(u3, 0) AS u3, coalesce(u4, 0) AS u4 FROM ("
    + TRIP_UTILITIES
    + ") WHERE replayed"
)
# Replayed trips whose basket holds both items of each pair of slots.
OBSERVED_JOINT = """
WITH slots AS (SELECT unnest($items) AS item_id, generate_subscripts($items, 1) AS slot)
SELECT a.slot, b.slot,
       (SELECT count(*) FROM model_trips t
        WHERE t.run_id = $run AND list_contains(t.items, a.item_id) AND list_contains(t.items, b.item_id))
FROM slots a JOIN slots b ON a.slot < b.slot
"""
RUN_KIND = "SELECT kind FROM model_runs WHERE run_id = $run"

# The same relation as numpy-friendly columns (no NULLs: empty slots are 0), each customer's trips
# in a row (ordered by customer, then trip).
TRIP_ARRAYS = (
    "SELECT segment_code, bucket, trip, customer_share, trips_per_week, bundle_price_coefficient, "
    "coalesce(u1, 0) AS u1, coalesce(u2, 0) AS u2, coalesce(u3, 0) AS u3, coalesce(u4, 0) AS u4 FROM ("
    + TRIP_UTILITIES
    + ") ORDER BY customer_key, trip"
)


@dataclass(frozen=True)
class BundleParameters:
    """Per-trip inputs of the bundle model, as arrays (R replayed trips of H customers, n items).

    Rows are replayed trips; each customer's rows are contiguous, its first row flagged ``first``.
    """

    utilities: np.ndarray  # (R, n) u(h,i,t) at regular price, the trip's basket as context
    price_coefficient: np.ndarray  # (R,) b_h,S = mean of b(h,i) over S (the customer's)
    trips_per_week: np.ndarray  # (R,) the customer's trips per week / n_h: what the row stands for
    customer_share: np.ndarray  # (R,) 1 / n_h (sums to 1 over a customer's rows)
    first: np.ndarray  # (R,) bool: the customer's first row
    segment_code: np.ndarray  # (R,) index into Bundle.segment_values
    bucket: np.ndarray  # (R,) 0..BUCKETS-1 (a hash of the customer)
    coupling: np.ndarray  # (n, n) symmetric c_ij, zero diagonal
    prices: np.ndarray  # (n,) regular prices
    costs: np.ndarray  # (n,) unit costs

    @property
    def n_customers(self) -> int:
        return int(self.first.sum())


def prepare(cur: duckdb.DuckDBPyConnection) -> None:
    """Define the utility macros on this cursor (temp macros live per cursor)."""
    cur.execute(MACROS)


def load_bundle(cur: duckdb.DuckDBPyConnection, bundle: Bundle, run_id: str | None = None) -> BundleParameters:
    """Fetch the per-trip utilities of ``bundle`` (from run ``run_id``, default its run)."""
    prepare(cur)
    params = query_parameters(bundle, run_id)
    try:
        columns = cur.execute(TRIP_ARRAYS, params).fetchnumpy()
    except duckdb.Error as exc:
        raise ModelError(parameter_error(bundle, exc)) from exc
    n = len(bundle.items)
    if len(columns["u1"]) == 0:
        raise DataError(f"no customer of run {params['run']!r} is in segment {bundle.segment.label}")
    utilities = np.column_stack([np.asarray(columns[f"u{k + 1}"], dtype=np.float64) for k in range(n)])  # (R, n)
    return BundleParameters(
        utilities=utilities,
        price_coefficient=np.asarray(columns["bundle_price_coefficient"], dtype=np.float64),
        trips_per_week=np.asarray(columns["trips_per_week"], dtype=np.float64),
        customer_share=np.asarray(columns["customer_share"], dtype=np.float64),
        first=np.asarray(columns["trip"]) == 1,
        segment_code=np.asarray(columns["segment_code"], dtype=np.int64),
        bucket=np.asarray(columns["bucket"], dtype=np.int64),
        coupling=bundle_coupling(cur, bundle, params["run"]),
        prices=np.array([item.regular_price for item in bundle.items]),
        costs=np.array([item.unit_cost for item in bundle.items]),
    )


def bundle_coupling(cur: duckdb.DuckDBPyConnection, bundle: Bundle, run_id: str) -> np.ndarray:
    """(n, n) couplings of the bundle's items: the model's, re-anchored for a trained run to the
    joint purchases of its replayed trips (``engine.model.projection.anchor_couplings``; the truth
    of a synthetic market is used as it is). Both projection paths take them from here; they are
    computed once per (dataset version, run, items)."""
    key = (bundle.dataset, bundle.dataset_version, run_id, tuple(bundle.item_ids))
    return _COUPLINGS.get_or_compute(key, lambda: _bundle_coupling(cur, bundle, run_id)).copy()


_COUPLINGS = LruCache(256)  # anchored couplings: a dataset version and a run id fix them


def _bundle_coupling(cur: duckdb.DuckDBPyConnection, bundle: Bundle, run_id: str) -> np.ndarray:
    prepare(cur)
    everyone = query_parameters(bundle, run_id) | {"attribute": None, "value": None, "segment_values": [ALL_CUSTOMERS]}
    try:
        pairs = cur.execute(PAIR_COUPLINGS, {"run": run_id, "items": bundle.item_ids}).fetchall()
        kind = cur.execute(RUN_KIND, {"run": run_id}).fetchall()
        if kind and kind[0][0] == "trained":
            rows = cur.execute(ANCHOR_ROWS, everyone).fetchnumpy()
            joint = cur.execute(OBSERVED_JOINT, {"run": run_id, "items": bundle.item_ids}).fetchall()
        else:
            rows, joint = None, []
    except duckdb.Error as exc:
        raise ModelError(parameter_error(bundle, exc)) from exc
    n = len(bundle.items)
    coupling = np.zeros((n, n))
    for slot_a, slot_b, value in pairs:
        coupling[slot_a - 1, slot_b - 1] = coupling[slot_b - 1, slot_a - 1] = value
    if rows is None or len(rows["u1"]) == 0:
        return coupling
    observed = np.zeros((n, n))
    for slot_a, slot_b, count in joint:
        observed[slot_a - 1, slot_b - 1] = observed[slot_b - 1, slot_a - 1] = count
    utilities = np.column_stack([np.asarray(rows[f"u{k + 1}"], dtype=np.float64) for k in range(n)])  # (R, n)
    return anchor_couplings(utilities, coupling, observed, PAIR_PRIOR)


def coupling_parameters(coupling: np.ndarray) -> dict[str, list]:
    """The couplings as bound lists (slot_a, slot_b, coupling) for the SQL path's cache build."""
    n = coupling.shape[0]
    upper = [(a, b) for a in range(n) for b in range(a + 1, n)]
    return {
        "slot_a": [a + 1 for a, _ in upper],
        "slot_b": [b + 1 for _, b in upper],
        "coupling": [float(coupling[a, b]) for a, b in upper],
    }


# The couplings handed to the SQL path (from ``coupling_parameters``).
BOUND_COUPLINGS = "SELECT unnest($slot_a) AS slot_a, unnest($slot_b) AS slot_b, unnest($coupling) AS coupling"


def query_parameters(bundle: Bundle, run_id: str | None = None) -> dict:
    """Bound parameters of ``TRIP_UTILITIES`` for ``bundle``."""
    return {
        "run": run_id or bundle.run.run_id,
        "items": bundle.item_ids,
        "attribute": bundle.segment.attribute,
        "value": bundle.segment.value,
        "segment_values": list(bundle.segment_values),
        "buckets": BUCKETS,
    }


def parameter_error(bundle: Bundle, exc: duckdb.Error) -> str:
    """One line for a DuckDB error while evaluating a run's utilities (vectors of unequal length)."""
    return (
        f"cannot evaluate the utilities of run {bundle.run.run_id!r} for {', '.join(bundle.item_ids)}: expected "
        f"theta and alpha vectors of one length, found: {str(exc).splitlines()[0]}"
    )
