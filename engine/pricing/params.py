"""Exported model parameters for one bundle: the ONE place the item utility is evaluated.

The utility equation of ``engine.schema.MODEL_DDL`` (DESIGN.md section 4; SHOPPER, Ruiz, Athey
& Blei 2020), at regular price and with no other basket context::

    u(h,i) = lambda_i + <theta_h, alpha_i> + habit(h,i) - b(h,i) * regular_price_i
    b(h,i) = softplus(beta_customer_h + beta_item_i)                       (1/currency, > 0)
    c_ij   = <rho_i, alpha_j> + <rho_j, alpha_i> + pair_ij                 (pair_ij: model_pairs)

is written once, as the SQL macros below, and evaluated in DuckDB over the exported tables with
the run, the items and the segment as bound parameters. Both projection paths start from the
relation ``CUSTOMER_UTILITIES``: the SQL path (``engine.pricing.whatif``) embeds it, the
vectorized path (``load_bundle``) fetches it into numpy arrays.

Items sit in "slots" 1..4 in the order the caller gave them; slots past the bundle size are NULL.
"""

from __future__ import annotations

import difflib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from engine import store
from engine.errors import DataError, ModelError

log = logging.getLogger(__name__)

MIN_ITEMS, MAX_ITEMS = 2, 4
BUCKETS = 64  # customers are hashed into this many buckets; bands resample buckets (uncertainty.py)
ALL_CUSTOMERS = "All customers"
UNKNOWN = "Unknown"

MACROS = """
CREATE OR REPLACE TEMP MACRO softplus(x) AS greatest(x, 0) + ln(1 + exp(-abs(x)));
CREATE OR REPLACE TEMP MACRO price_coefficient(beta_customer, beta_item) AS softplus(beta_customer + beta_item);
CREATE OR REPLACE TEMP MACRO item_utility(theta, beta_customer, habit, popularity, alpha, beta_item, price) AS
    popularity + list_dot_product(theta, alpha) + habit - price_coefficient(beta_customer, beta_item) * price;
"""

DATASET_VERSION = "SELECT version FROM main.datasets WHERE name = $name"
RUNS_SIGNATURE = "SELECT count(*), max(created_at)::VARCHAR, string_agg(run_id, ',' ORDER BY run_id) FROM model_runs"
HAS_MODEL_TABLES = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name IN ('model_runs', 'model_items', 'model_customers')
"""
RUNS = """
SELECT run_id, kind, level, created_at, config FROM model_runs
ORDER BY (kind = 'trained') DESC, created_at DESC, run_id
"""
ENSEMBLE_MEMBERS = """
SELECT run_id FROM model_runs
WHERE kind = $kind AND level = $level AND json_extract_string(config, '$.ensemble') = $ensemble
ORDER BY run_id
"""
RUN_ITEMS = """
SELECT item_id, name, category, regular_price, unit_cost,
       list_position($items, item_id) AS slot
FROM model_items WHERE run_id = $run AND list_contains($items, item_id)
ORDER BY slot
"""
ALL_RUN_ITEMS = "SELECT item_id, name FROM model_items WHERE run_id = $run ORDER BY item_id"
ATTRIBUTES = "SELECT DISTINCT attribute FROM customer_attributes ORDER BY attribute"
SEGMENT_VALUES = """
SELECT value FROM (SELECT DISTINCT value FROM customer_attributes WHERE attribute = $attribute UNION SELECT 'Unknown')
ORDER BY value
"""

# c_kl for slots k < l of the bundle.
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

# One row per customer of the run (in the segment, when a value is given).
CUSTOMER_UTILITIES = """
SELECT (list_position($segment_values, p.segment) - 1)::INTEGER AS segment_code,
       (hash(p.customer_id) % $buckets::UBIGINT)::INTEGER AS bucket,  -- UBIGINT: a BIGINT modulus is 10x slower
       p.trips_per_week::DOUBLE AS trips_per_week,
       item_utility(p.theta, p.beta_customer, coalesce(h.habit_1, 0), s.popularity[1], s.alpha[1], s.beta_item[1], s.price[1])::DOUBLE AS u1,
       item_utility(p.theta, p.beta_customer, coalesce(h.habit_2, 0), s.popularity[2], s.alpha[2], s.beta_item[2], s.price[2])::DOUBLE AS u2,
       item_utility(p.theta, p.beta_customer, coalesce(h.habit_3, 0), s.popularity[3], s.alpha[3], s.beta_item[3], s.price[3])::DOUBLE AS u3,
       item_utility(p.theta, p.beta_customer, coalesce(h.habit_4, 0), s.popularity[4], s.alpha[4], s.beta_item[4], s.price[4])::DOUBLE AS u4,
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
           sum(habit) FILTER (WHERE item_id = $items[1]) AS habit_1, sum(habit) FILTER (WHERE item_id = $items[2]) AS habit_2,
           sum(habit) FILTER (WHERE item_id = $items[3]) AS habit_3, sum(habit) FILTER (WHERE item_id = $items[4]) AS habit_4
    FROM model_habits WHERE run_id = $run AND list_contains($items, item_id)
    GROUP BY customer_id
) h ON h.customer_id = p.customer_id
WHERE $value IS NULL OR p.segment = $value
"""


# The same relation as numpy-friendly columns (no NULLs: empty slots are 0).
CUSTOMER_ARRAYS = (
    "SELECT segment_code, bucket, trips_per_week, bundle_price_coefficient, coalesce(u1, 0) AS u1, "
    "coalesce(u2, 0) AS u2, coalesce(u3, 0) AS u3, coalesce(u4, 0) AS u4 FROM (" + CUSTOMER_UTILITIES + ")"
)


@dataclass(frozen=True)
class RunInfo:
    """A model run whose exported parameters price bundles."""

    run_id: str
    kind: str                  # 'trained' | 'truth'
    level: str                 # 'product' | 'category'
    created_at: datetime
    ensemble: str | None       # runs sharing this config value form an ensemble (uncertainty.py)


@dataclass(frozen=True)
class BundleItem:
    item_id: str
    name: str
    regular_price: float
    unit_cost: float


@dataclass(frozen=True)
class Segment:
    """Who is priced: everyone (``attribute`` None), one attribute's values, or one value."""

    attribute: str | None = None
    value: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Segment:
        """``None``/``""`` -> everyone; ``"attr"`` -> per value of attr; ``"attr=value"`` -> one value."""
        if not text:
            return cls()
        attribute, _, value = text.partition("=")
        return cls(attribute.strip(), value.strip() or None)

    @property
    def label(self) -> str:
        if self.attribute is None:
            return ALL_CUSTOMERS
        return f"{self.attribute} = {self.value}" if self.value else f"by {self.attribute}"


@dataclass(frozen=True)
class Bundle:
    """Items of a bundle as the run knows them, with the segment coding of its population."""

    dataset: str
    dataset_version: str              # changes at every re-ingest (cache keys)
    run: RunInfo
    ensemble: tuple[str, ...]         # run ids of the run's ensemble (just the run when none)
    items: tuple[BundleItem, ...]
    segment: Segment
    segment_values: tuple[str, ...]   # segment_code -> value

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    @property
    def sum_of_parts(self) -> float:
        return float(sum(item.regular_price for item in self.items))

    @property
    def bundle_cost(self) -> float:
        return float(sum(item.unit_cost for item in self.items))


@dataclass(frozen=True)
class BundleParameters:
    """Per-customer inputs of the bundle model, as arrays (H customers, n items)."""

    utilities: np.ndarray          # (H, n) u(h,i) at regular price
    price_coefficient: np.ndarray  # (H,) b_h,S = mean of b(h,i) over S
    trips_per_week: np.ndarray     # (H,)
    segment_code: np.ndarray       # (H,) index into Bundle.segment_values
    bucket: np.ndarray             # (H,) 0..BUCKETS-1
    coupling: np.ndarray           # (n, n) symmetric c_ij, zero diagonal
    prices: np.ndarray             # (n,) regular prices
    costs: np.ndarray              # (n,) unit costs


def prepare(cur: duckdb.DuckDBPyConnection) -> None:
    """Define the utility macros on this cursor (temp macros live per cursor)."""
    cur.execute(MACROS)


def choose_run(cur: duckdb.DuckDBPyConnection, dataset: str, run: str | None = None) -> RunInfo:
    """The run that prices bundles: ``run`` if given, else the latest trained run, else 'truth'."""
    if cur.execute(HAS_MODEL_TABLES).fetchall()[0][0] != 3:
        raise ModelError(f"dataset {dataset!r} has no model parameters: train the choice model first")
    runs = [_run_info(row) for row in cur.execute(RUNS).fetchall()]
    if not runs:
        raise ModelError(f"dataset {dataset!r} has no model run: train the choice model first")
    if run is None:
        return runs[0]  # trained runs first, newest first; 'truth' otherwise
    for info in runs:
        if info.run_id == run:
            return info
    raise ModelError(f"no model run {run!r} in dataset {dataset!r}; runs: {', '.join(r.run_id for r in runs)}")


def ensemble_members(cur: duckdb.DuckDBPyConnection, run: RunInfo) -> list[str]:
    """Runs of ``run``'s ensemble (itself included); just ``[run]`` when it has none."""
    if run.ensemble is None:
        return [run.run_id]
    params = {"kind": run.kind, "level": run.level, "ensemble": run.ensemble}
    members = [row[0] for row in cur.execute(ENSEMBLE_MEMBERS, params).fetchall()]
    return members if run.run_id in members else [run.run_id, *members]


def resolve_bundle(
    cur: duckdb.DuckDBPyConnection, dataset: str, version: str, run: RunInfo, item_ids: list[str], segment: Segment
) -> Bundle:
    """Check the items and the segment against the run; raise one-line errors with close matches."""
    item_ids = [str(i).strip() for i in item_ids if str(i).strip()]
    if not MIN_ITEMS <= len(item_ids) <= MAX_ITEMS or len(set(item_ids)) != len(item_ids):
        raise DataError(
            f"a bundle needs {MIN_ITEMS} to {MAX_ITEMS} different items; found {len(item_ids)} "
            f"({', '.join(item_ids) or 'none'})"
        )
    rows = cur.execute(RUN_ITEMS, {"run": run.run_id, "items": item_ids}).fetchall()
    found = {row[0] for row in rows}
    missing = [i for i in item_ids if i not in found]
    if missing:
        raise DataError(_unknown_items_message(cur, run, missing))
    items = tuple(BundleItem(r[0], r[1], float(r[3]), float(r[4])) for r in rows)
    members = tuple(ensemble_members(cur, run))
    return Bundle(dataset, version, run, members, items, segment, _segment_values(cur, run, segment))


def load_bundle(cur: duckdb.DuckDBPyConnection, bundle: Bundle, run_id: str | None = None) -> BundleParameters:
    """Fetch the per-customer utilities of ``bundle`` (from run ``run_id``, default its run)."""
    prepare(cur)
    params = query_parameters(bundle, run_id)
    try:
        columns = cur.execute(CUSTOMER_ARRAYS, params).fetchnumpy()
        pairs = cur.execute(PAIR_COUPLINGS, {"run": params["run"], "items": params["items"]}).fetchall()
    except duckdb.Error as exc:
        raise ModelError(_parameter_error(bundle, exc)) from exc
    n = len(bundle.items)
    if len(columns["u1"]) == 0:
        raise DataError(f"no customer of run {params['run']!r} is in segment {bundle.segment.label}")
    utilities = np.column_stack([np.asarray(columns[f"u{k + 1}"], dtype=np.float64) for k in range(n)])  # (H, n)
    coupling = np.zeros((n, n))
    for slot_a, slot_b, value in pairs:
        coupling[slot_a - 1, slot_b - 1] = coupling[slot_b - 1, slot_a - 1] = value
    return BundleParameters(
        utilities=utilities,
        price_coefficient=np.asarray(columns["bundle_price_coefficient"], dtype=np.float64),
        trips_per_week=np.asarray(columns["trips_per_week"], dtype=np.float64),
        segment_code=np.asarray(columns["segment_code"], dtype=np.int64),
        bucket=np.asarray(columns["bucket"], dtype=np.int64),
        coupling=coupling,
        prices=np.array([item.regular_price for item in bundle.items]),
        costs=np.array([item.unit_cost for item in bundle.items]),
    )


def query_parameters(bundle: Bundle, run_id: str | None = None) -> dict:
    """Bound parameters of ``CUSTOMER_UTILITIES`` for ``bundle``."""
    return {
        "run": run_id or bundle.run.run_id,
        "items": bundle.item_ids,
        "attribute": bundle.segment.attribute,
        "value": bundle.segment.value,
        "segment_values": list(bundle.segment_values),
        "buckets": BUCKETS,
    }


def attributes(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Customer attributes that segments can be built on."""
    return [row[0] for row in cur.execute(ATTRIBUTES).fetchall()]


def default_segment_attribute(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The attribute per-segment pricing uses when none is asked: income if there is one, else
    the first attribute (alphabetically); None when customers have no attributes."""
    with model_cursor(con, dataset) as (cur, _):
        names = attributes(cur)
    income = [name for name in names if "income" in name.lower()]
    return (income or names or [None])[0]


def _segment_values(cur: duckdb.DuckDBPyConnection, run: RunInfo, segment: Segment) -> tuple[str, ...]:
    if segment.attribute is None:
        return (ALL_CUSTOMERS,)
    known = attributes(cur)
    if segment.attribute not in known:
        raise DataError(
            f"unknown customer attribute {segment.attribute!r}; expected one of: {', '.join(known) or 'none'}"
        )
    # 'Unknown' is always a value: customers without a row for the attribute fall there.
    values = tuple(row[0] for row in cur.execute(SEGMENT_VALUES, {"attribute": segment.attribute}).fetchall())
    if segment.value is not None and segment.value not in values:
        raise DataError(f"no customer has {segment.attribute} = {segment.value!r}; values: {', '.join(values)}")
    return values


def _unknown_items_message(cur: duckdb.DuckDBPyConnection, run: RunInfo, missing: list[str]) -> str:
    catalog = dict(cur.execute(ALL_RUN_ITEMS, {"run": run.run_id}).fetchall())
    by_name = {name.lower(): item for item, name in catalog.items()}
    hints = []
    for item in missing:
        close = difflib.get_close_matches(item, list(catalog), n=3, cutoff=0.5)
        close += [by_name[n] for n in difflib.get_close_matches(item.lower(), list(by_name), n=3, cutoff=0.5)]
        close += [i for i, name in catalog.items() if item.lower() in name.lower()][:3]
        close = list(dict.fromkeys(close))[:4]
        hint = ", ".join(f"{i} ({catalog[i]})" for i in close) if close else "none"
        hints.append(f"{item!r} (close matches: {hint})")
    return f"unknown item id in run {run.run_id!r}: {'; '.join(hints)}"


def _parameter_error(bundle: Bundle, exc: duckdb.Error) -> str:
    return (
        f"cannot evaluate the utilities of run {bundle.run.run_id!r} for {', '.join(bundle.item_ids)}: expected "
        f"theta and alpha vectors of one length, found: {str(exc).splitlines()[0]}"
    )


def _run_info(row: tuple) -> RunInfo:
    run_id, kind, level, created_at, config = row
    try:
        ensemble = json.loads(config or "{}").get("ensemble")
    except (ValueError, AttributeError):
        ensemble = None
    return RunInfo(run_id, kind, level, created_at, None if ensemble is None else str(ensemble))


_bundles: OrderedDict[tuple, Bundle] = OrderedDict()
_bundles_lock = threading.Lock()
MAX_REMEMBERED_BUNDLES = 64


def open_bundle(
    con: duckdb.DuckDBPyConnection, dataset: str, items: list[str], segment: Segment | None = None, run: str | None = None
) -> Bundle:
    """Resolve run, items and segment of a bundle in ``dataset``.

    Remembered per (connection, dataset version, model runs, items, segment, run), so the warm
    what-if path costs two tiny queries here.
    """
    segment = segment or Segment()
    with model_cursor(con, dataset) as (cur, version):
        has_tables = cur.execute(HAS_MODEL_TABLES).fetchall()[0][0] == 3
        signature = cur.execute(RUNS_SIGNATURE).fetchall()[0] if has_tables else None
        key = (id(con), dataset, version, signature, tuple(map(str, items)), segment, run)
        with _bundles_lock:
            known = _bundles.get(key)
        if known is not None:
            return known
        info = choose_run(cur, dataset, run)
        bundle = resolve_bundle(cur, dataset, version, info, list(items), segment)
    with _bundles_lock:
        _bundles[key] = bundle
        while len(_bundles) > MAX_REMEMBERED_BUNDLES:
            _bundles.popitem(last=False)
    return bundle


@contextmanager
def model_cursor(con: duckdb.DuckDBPyConnection, dataset: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A cursor on ``dataset``'s schema and the dataset's version (``store.dataset_cursor``
    with a one-row registry lookup instead of the full registry row)."""
    schema = store.schema_of(dataset)
    with con.cursor() as cur:
        rows = cur.execute(DATASET_VERSION, {"name": dataset}).fetchall()
        if not rows:
            store.get_dataset(con, dataset)  # raises DatasetNotFound naming the datasets there are
        cur.execute("SET search_path = $path", {"path": f"{schema},main"})
        yield cur, rows[0][0]
