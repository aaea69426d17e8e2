"""The what-if projection as DuckDB queries over the exported parameters.

Two steps, both SQL with every value bound:

1. ``BUILD_CACHE`` (once per run x items x segment): per replayed trip, the item utilities of
   ``engine.pricing.params.TRIP_UTILITIES``, the 2^n subset utilities enumerated in SQL
   (couplings from ``engine.pricing.params.bundle_coupling``, bound), and the price-free sums over the subsets other than the full set
   (pre-multiplied by the trips the row stands for, so a price change does less arithmetic).
   The result is a table in an in-memory database attached to the connection
   (``pricing_cache``), so every cursor of the process sees it and nothing is written to the
   studio file.
2. ``AGGREGATE`` (per price change): one scan of that table computing the full set's weight at
   the bound price(s), the option probabilities, surplus and the raw sums of
   ``engine.pricing.demand.RAW_FIELDS``, summed per customer (buyers and customers better off
   are customer figures) and then grouped by segment and bucket. When every customer replays one
   trip (a scale population), rows are customers and the per-customer step is skipped.

A price change therefore costs one pass over replayed trips with one ``exp`` and one ``ln`` each.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass

import duckdb
import numpy as np

from engine.cache import PerConnection
from engine.errors import ModelError
from engine.pricing import bundle as B
from engine.pricing import params as P
from engine.pricing.demand import BETTER_OFF_MIN, NO_DISCOUNT_TOLERANCE, RAW_FIELDS

log = logging.getLogger(__name__)

CACHE_DATABASE = "pricing_cache"
MAX_CACHED_TABLES = 16
ATTACH_CACHE = "ATTACH IF NOT EXISTS ':memory:' AS pricing_cache"
ONE_TRIP_EACH = "SELECT min(customer_share) = 1 FROM {table}"

BUILD_CACHE = """
WITH utilities AS ({utilities}),
couplings AS ({couplings}),
slots AS (
    SELECT list_position($items, item_id) AS slot, regular_price, unit_cost
    FROM model_items WHERE run_id = $run AND list_contains($items, item_id)
),
option_rows AS (                      -- every non-empty subset A of S as a bit mask over slots
    SELECT m.range AS mask,
           list_transform(range(4), lambda k: ((m.range >> k) & 1)::DOUBLE) AS bits,   -- 4 slots, 0 past n
           coalesce((SELECT sum(c.coupling) FROM couplings c
                     WHERE (m.range >> (c.slot_a - 1)) & 1 = 1 AND (m.range >> (c.slot_b - 1)) & 1 = 1), 0) AS coupling,
           (SELECT sum(s.regular_price) FROM slots s WHERE (m.range >> (s.slot - 1)) & 1 = 1) AS price,
           (SELECT sum(s.regular_price - s.unit_cost) FROM slots s WHERE (m.range >> (s.slot - 1)) & 1 = 1) AS margin
    FROM range(1, (1 << $n)::BIGINT) m
),
options AS (                          -- one row of lists in mask order; the full set S is last
    SELECT list(bits ORDER BY mask) AS bits,
           list(coupling ORDER BY mask) AS coupling,
           list(price ORDER BY mask) FILTER (WHERE mask < (1 << $n) - 1) AS rest_price,
           list(margin ORDER BY mask) FILTER (WHERE mask < (1 << $n) - 1) AS rest_margin,
           list(bits[1] ORDER BY mask) FILTER (WHERE mask < (1 << $n) - 1) AS rest_slot_1,
           list(bits[2] ORDER BY mask) FILTER (WHERE mask < (1 << $n) - 1) AS rest_slot_2,
           list(bits[3] ORDER BY mask) FILTER (WHERE mask < (1 << $n) - 1) AS rest_slot_3,
           list(bits[4] ORDER BY mask) FILTER (WHERE mask < (1 << $n) - 1) AS rest_slot_4
    FROM option_rows
),
subset_utilities AS (                 -- U_h(A) for every non-empty A, in mask order
    SELECT u.segment_code, u.bucket, u.customer_key, u.customer_share, u.trips_per_week,
           u.bundle_price_coefficient, o.*,
           list_transform(o.bits, lambda bits, j:
                          list_dot_product(bits, [u.u1, u.u2, coalesce(u.u3, 0), coalesce(u.u4, 0)])
                          + o.coupling[j]) AS option_u
    FROM utilities u CROSS JOIN options o
),
scaled AS (SELECT *, greatest(list_max(option_u), 0) AS top FROM subset_utilities),   -- m_h, for exp stability
rest AS (
    SELECT *, list_transform(list_slice(option_u, 1, len(option_u) - 1), lambda x: exp(x - top)) AS rest_w
    FROM scaled
)
SELECT segment_code::USMALLINT AS segment_code,
       (segment_code * $buckets + bucket)::USMALLINT AS group_key,   -- one small key: a fast GROUP BY
       customer_key,
       customer_share,
       trips_per_week AS trips,
       trips_per_week / bundle_price_coefficient AS trips_over_b,
       exp(option_u[-1] - top) AS full_weight,
       exp(-top) + list_sum(rest_w) AS rest_weight,
       ln(exp(-top) + list_sum(rest_w) + exp(option_u[-1] - top)) AS log_without,
       trips_per_week * list_dot_product(rest_w, rest_price) AS trips_rest_revenue,     -- trips x sum over A != S of
       trips_per_week * list_dot_product(rest_w, rest_margin) AS trips_rest_margin,     --   exp(U(A) - m) x ...
       trips_per_week * list_dot_product(rest_w, rest_slot_1) AS trips_rest_units_1,
       trips_per_week * list_dot_product(rest_w, rest_slot_2) AS trips_rest_units_2,
       trips_per_week * list_dot_product(rest_w, rest_slot_3) AS trips_rest_units_3,
       trips_per_week * list_dot_product(rest_w, rest_slot_4) AS trips_rest_units_4,
       bundle_price_coefficient AS b
FROM rest
"""

# Per replayed trip at the bound per-segment prices: every additive raw field.
ROW_FIGURES = """
SELECT group_key, customer_key,
       customer_share AS customers,
       trips,
       CASE WHEN bundle_on THEN full_share ELSE 0 END AS bundle_share,
       CASE WHEN bundle_on THEN 0 ELSE full_share END AS separate_full_share,
       CASE WHEN bundle_on THEN full_share * price ELSE 0 END AS bundle_revenue,
       trips_rest_revenue * inv AS rest_revenue,
       trips_rest_margin * inv AS rest_margin,
       {rest_units_1} AS rest_units_1,
       {rest_units_2} AS rest_units_2,
       {rest_units_3} AS rest_units_3,
       {rest_units_4} AS rest_units_4,
       trips_over_b * (ln(rest_weight + w) - log_without) AS surplus
FROM (
    SELECT *, trips * w * inv AS full_share
    FROM (
        SELECT *, 1 / (rest_weight + w) AS inv
        FROM (
            SELECT *, price < $sum_of_parts - $no_discount_tolerance AS bundle_on,
                   full_weight * exp(CASE WHEN price < $sum_of_parts - $no_discount_tolerance
                                          THEN b * ($sum_of_parts - price) ELSE 0 END) AS w
            FROM (SELECT *, $prices[segment_code + 1] AS price FROM {table})
        )
    )
)
"""
# The same summed over each customer's replayed trips.
CUSTOMER_FIGURES = """
SELECT group_key, sum(customers) AS customers, sum(trips) AS trips, sum(bundle_share) AS bundle_share,
       sum(separate_full_share) AS separate_full_share, sum(bundle_revenue) AS bundle_revenue,
       sum(rest_revenue) AS rest_revenue, sum(rest_margin) AS rest_margin,
       sum(rest_units_1) AS rest_units_1, sum(rest_units_2) AS rest_units_2,
       sum(rest_units_3) AS rest_units_3, sum(rest_units_4) AS rest_units_4, sum(surplus) AS surplus
FROM ({rows})
GROUP BY group_key, customer_key
"""
# Raw sums (demand.RAW_FIELDS, in order) per segment and bucket, from per-customer figures.
AGGREGATE = """
SELECT group_key,
       sum(customers) AS customers, sum(trips) AS trips, sum(bundle_share) AS bundle_share,
       sum(separate_full_share) AS separate_full_share, sum(bundle_revenue) AS bundle_revenue,
       sum(rest_revenue) AS rest_revenue, sum(rest_margin) AS rest_margin,
       sum(rest_units_1) AS rest_units_1, sum(rest_units_2) AS rest_units_2,
       sum(rest_units_3) AS rest_units_3, sum(rest_units_4) AS rest_units_4,
       sum(surplus) AS surplus,
       count(*) FILTER (WHERE surplus * $weeks >= $better_off_min)::DOUBLE AS better_off,
       sum(1 - exp(-$weeks * bundle_share)) AS buyers
FROM ({customers})
GROUP BY group_key
"""
# Stand-alone units of slot k: summed for the bundle's own slots, a constant 0 for empty slots.
SLOT_UNITS = "trips_rest_units_{k} * inv"
EMPTY_SLOT = "0.0"


@dataclass
class CacheTable:
    """A per-replayed-trip cache table of one (bundle, run) on one connection."""

    name: str  # pricing_cache.main.b_<digest>
    one_trip_each: bool  # every customer replays one trip: rows are customers
    before: np.ndarray | None = None  # raw sums with no bundle (the same at any price), once computed


def _drop(con: duckdb.DuckDBPyConnection, _key: str, table: CacheTable) -> None:
    with con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS " + _checked(table.name))


_tables = PerConnection(MAX_CACHED_TABLES, on_evict=_drop)  # per connection: table digest -> CacheTable
_build_lock = threading.Lock()  # one build at a time (two sessions asking for one bundle build it once)


def cached_table(con: duckdb.DuckDBPyConnection, bundle: B.Bundle, run_id: str) -> str:
    """Name of the per-trip cache table of (bundle, run), building it if needed (cold path)."""
    key = repr(
        (
            bundle.dataset,
            bundle.dataset_version,
            run_id,
            str(bundle.run.created_at),
            bundle.item_ids,
            bundle.segment.attribute,
            bundle.segment.value,
            bundle.segment_values,
        )
    )
    digest = "b_" + hashlib.sha1(key.encode()).hexdigest()[:20]
    cache = _tables.of(con)
    with _build_lock:
        known = cache.get(digest)
        if isinstance(known, CacheTable):
            return known.name
        qualified = _qualified(digest)
        _build(con, bundle, run_id, qualified)
        with con.cursor() as cur:
            one_trip = bool(cur.execute(ONE_TRIP_EACH.format(table=_checked(qualified))).fetchall()[0][0])
        cache.put(digest, CacheTable(qualified, one_trip))
    return qualified


def _record(con: duckdb.DuckDBPyConnection, table: str) -> CacheTable:
    record = _tables.of(con).get(table.rsplit(".", 1)[-1])
    if not isinstance(record, CacheTable):
        raise ModelError(f"the pricing cache table {table} is not built on this connection; ask cached_table for it")
    return record


def aggregate(
    con: duckdb.DuckDBPyConnection,
    table: str,
    sum_of_parts: float,
    prices: list[float],
    weeks: float,
    n_segments: int,
    n_items: int = 4,
) -> np.ndarray:
    """Raw sums (n_segments, BUCKETS, len(RAW_FIELDS)) at per-segment ``prices`` (warm path)."""
    params = {
        "prices": [float(p) for p in prices],
        "sum_of_parts": float(sum_of_parts),
        "weeks": float(weeks),
        "better_off_min": BETTER_OFF_MIN,
        "no_discount_tolerance": NO_DISCOUNT_TOLERANCE,
    }
    with con.cursor() as cur:
        sql = _aggregate_sql(table, n_items, _record(con, table).one_trip_each)
        rows = np.array(cur.execute(sql, params).fetchall(), dtype=np.float64)
    out = np.zeros((n_segments * P.BUCKETS, len(RAW_FIELDS)))
    if len(rows):
        out[rows[:, 0].astype(np.int64)] = rows[:, 1:]
    return out.reshape(n_segments, P.BUCKETS, len(RAW_FIELDS))


def _aggregate_sql(table: str, n_items: int, one_trip_each: bool) -> str:
    """``AGGREGATE`` for ``table`` with the unit sums of the bundle's ``n_items`` slots only."""
    slots = {f"rest_units_{k}": SLOT_UNITS.format(k=k) if k <= n_items else EMPTY_SLOT for k in range(1, 5)}
    rows = ROW_FIGURES.format(table=_checked(table), **slots)
    return AGGREGATE.format(customers=rows if one_trip_each else CUSTOMER_FIGURES.format(rows=rows))


def aggregate_without_bundle(
    con: duckdb.DuckDBPyConnection, table: str, sum_of_parts: float, n_segments: int, n_items: int = 4
) -> np.ndarray:
    """Raw sums with no bundle (every price above the sum of the parts), computed once per table."""
    record = _record(con, table)
    if record.before is None:
        # Without a bundle nobody gains surplus, so better_off and buyers are 0 at any horizon.
        record.before = aggregate(con, table, sum_of_parts, [sum_of_parts + 1.0] * n_segments, 1.0, n_segments, n_items)
    return record.before


def _build(con: duckdb.DuckDBPyConnection, bundle: B.Bundle, run_id: str, qualified: str) -> None:
    sql = (
        "CREATE OR REPLACE TABLE "
        + qualified
        + " AS "
        + BUILD_CACHE.format(utilities=P.TRIP_UTILITIES, couplings=P.BOUND_COUPLINGS)
    )
    with B.model_cursor(con, bundle.dataset) as (cur, _):
        coupling = P.coupling_parameters(P.bundle_coupling(cur, bundle, run_id))
        params = P.query_parameters(bundle, run_id) | {"n": len(bundle.items)} | coupling
        cur.execute(ATTACH_CACHE)
        P.prepare(cur)
        try:
            cur.execute(sql, params)
        except duckdb.Error as exc:
            raise ModelError(P.parameter_error(bundle, exc)) from exc
    log.info("pricing cache %s built for %s run %s", qualified, bundle.item_ids, run_id)


def _qualified(table: str) -> str:
    assert re.fullmatch(r"b_[0-9a-f]{20}", table), table  # generated from a digest, never user text
    return f"{CACHE_DATABASE}.main.{table}"


def _checked(qualified: str) -> str:
    assert re.fullmatch(r"pricing_cache\.main\.b_[0-9a-f]{20}", qualified), qualified
    return qualified
