"""A bundle as a model run knows it: the run that prices it, its items, the customers' segments.

``open_bundle`` resolves (and remembers) run, items and segment; the one-line errors name what
was expected and list close matches. The default run is the latest trained run, else the true
parameters of a synthetic market (run 'truth'): ``choose_run`` is the one place that decides.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb

from engine import store
from engine.cache import PerConnection
from engine.errors import DataError, ModelError
from engine.personal_data import usable_attributes_of
from engine.privacy import sensitive_attributes
from engine.replay import backfill_replayed_trips

log = logging.getLogger(__name__)

MIN_ITEMS, MAX_ITEMS = 2, 4
ALL_CUSTOMERS = "All customers"
UNKNOWN = "Unknown"

DATASET_VERSION = "SELECT version FROM main.datasets WHERE name = $name"
_trips_checked = PerConnection(64)  # per connection: (schema, dataset version) whose runs have replayed trips
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
SEGMENT_VALUES = """
SELECT value FROM (SELECT DISTINCT value FROM customer_attributes WHERE attribute = $attribute UNION SELECT 'Unknown')
ORDER BY value
"""


# c_kl for slots k < l of the bundle.
@dataclass(frozen=True)
class RunInfo:
    """A model run whose exported parameters price bundles."""

    run_id: str
    kind: str  # 'trained' | 'truth'
    level: str  # 'product' | 'category'
    created_at: datetime
    ensemble: str | None  # runs sharing this config value form an ensemble (uncertainty.py)


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
    dataset_version: str  # changes at every re-ingest (cache keys)
    run: RunInfo
    ensemble: tuple[str, ...]  # run ids of the run's ensemble (just the run when none)
    items: tuple[BundleItem, ...]
    segment: Segment
    segment_values: tuple[str, ...]  # segment_code -> value

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    @property
    def sum_of_parts(self) -> float:
        return float(sum(item.regular_price for item in self.items))

    @property
    def bundle_cost(self) -> float:
        return float(sum(item.unit_cost for item in self.items))


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
    """Runs of ``run``'s ensemble, ``run`` first; just ``[run]`` when it has none."""
    if run.ensemble is None:
        return [run.run_id]
    params = {"kind": run.kind, "level": run.level, "ensemble": run.ensemble}
    others = [row[0] for row in cur.execute(ENSEMBLE_MEMBERS, params).fetchall() if row[0] != run.run_id]
    return [run.run_id, *others]


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


def attributes(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Customer attributes that segments can be built on (never a direct identifier)."""
    return usable_attributes_of(cur)


def default_segment_attribute(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The attribute per-segment pricing uses when none is asked: income if there is one, else
    the first attribute (alphabetically); None when customers have no attributes. Sensitive
    attributes (engine.privacy) only when the analyst allowed them as pricing segments."""
    with model_cursor(con, dataset) as (cur, _):
        names = attributes(cur)
    if not store.get_setting(con, "allow_sensitive_segments"):  # personal data only with consent
        names = [name for name in names if name not in sensitive_attributes(con)]
    income = [name for name in names if "income" in name.lower()]
    return (income or names)[0] if names else None


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
        needle = item.lower()
        close = [i for i in catalog if needle in i.lower()][:4]
        close += difflib.get_close_matches(item, list(catalog), n=3, cutoff=0.5)
        close += [by_name[n] for n in difflib.get_close_matches(needle, list(by_name), n=3, cutoff=0.5)]
        close += [i for i, name in catalog.items() if needle in name.lower()][:3]
        close = list(dict.fromkeys(close))[:4]
        hint = ", ".join(f"{i} ({catalog[i]})" for i in close) if close else "none"
        hints.append(f"{item!r} (close matches: {hint})")
    return f"unknown item id in run {run.run_id!r}: {'; '.join(hints)}"


def _run_info(row: tuple) -> RunInfo:
    run_id, kind, level, created_at, config = row
    try:
        ensemble = json.loads(config or "{}").get("ensemble")
    except (ValueError, AttributeError):
        ensemble = None
    return RunInfo(run_id, kind, level, created_at, None if ensemble is None else str(ensemble))


MAX_REMEMBERED_BUNDLES = 64
_bundles = PerConnection(MAX_REMEMBERED_BUNDLES)  # per connection: request -> Bundle


def open_bundle(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    items: list[str],
    segment: Segment | None = None,
    run: str | None = None,
) -> Bundle:
    """Resolve run, items and segment of a bundle in ``dataset``.

    Remembered per connection and (dataset version, model runs, items, segment, run), so the warm
    what-if path costs one tiny query here.
    """
    segment = segment or Segment()
    with model_cursor(con, dataset) as (cur, version):
        try:
            signature = cur.execute(RUNS_SIGNATURE).fetchall()[0]
        except duckdb.CatalogException:  # no model tables: choose_run says so in words
            signature = None
        key = (dataset, version, signature, tuple(map(str, items)), segment, run)
        known = _bundles.of(con).get(key)
        if isinstance(known, Bundle):
            return known
        info = choose_run(cur, dataset, run)
        bundle = resolve_bundle(cur, dataset, version, info, list(items), segment)
    _bundles.of(con).put(key, bundle)
    return bundle


@contextmanager
def model_cursor(con: duckdb.DuckDBPyConnection, dataset: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A cursor on ``dataset``'s schema and the dataset's version (``store.dataset_cursor``
    with a one-row registry lookup instead of the full registry row)."""
    schema = store.schema_of(dataset)
    with con.cursor() as cur:
        try:
            cur.execute("SET search_path = $path", {"path": f"{schema},main"})
            rows = cur.execute(DATASET_VERSION, {"name": dataset}).fetchall()
        except duckdb.CatalogException:  # the dataset's schema does not exist
            rows = []
        if not rows:
            store.get_dataset(con, dataset)  # raises DatasetNotFound naming the datasets there are
        if _trips_checked.of(con).get((schema, rows[0][0])) is None:  # runs registered before replayed trips
            if backfill_replayed_trips(cur):  # get theirs
                log.info("replayed trips backfilled for the runs of %s", dataset)
            _trips_checked.of(con).put((schema, rows[0][0]), True)
        yield cur, rows[0][0]


CATALOG = """
SELECT item_id, name, category, regular_price, unit_cost FROM model_items WHERE run_id = $run
ORDER BY category, name, item_id
"""


def item_catalog(con: duckdb.DuckDBPyConnection, dataset: str, run: str | None = None) -> list[BundleItem]:
    """Every item the pricing run knows, for pickers (id, name, regular price, unit cost)."""
    with model_cursor(con, dataset) as (cur, _):
        info = choose_run(cur, dataset, run)
        rows = cur.execute(CATALOG, {"run": info.run_id}).fetchall()
    return [BundleItem(row[0], row[1], float(row[3]), float(row[4])) for row in rows]


def segment_choices(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, list[str]]:
    """Customer attribute -> its values ('Unknown' included), for segment pickers."""
    with model_cursor(con, dataset) as (cur, _):
        return {
            name: [row[0] for row in cur.execute(SEGMENT_VALUES, {"attribute": name}).fetchall()]
            for name in attributes(cur)
        }


STRONGEST_PAIR = """
SELECT item_a, item_b FROM model_pairs
WHERE run_id = $run AND coupling > 0
  AND item_a IN (SELECT item_id FROM model_items WHERE run_id = $run)
  AND item_b IN (SELECT item_id FROM model_items WHERE run_id = $run)
ORDER BY coupling DESC, item_a, item_b LIMIT 1
"""


def suggested_items(con: duckdb.DuckDBPyConnection, dataset: str, run: str | None = None) -> list[str]:
    """A bundle to start from: the run's most complementary explicit pair, else its first two items."""
    with model_cursor(con, dataset) as (cur, _):
        info = choose_run(cur, dataset, run)
        rows = cur.execute(STRONGEST_PAIR, {"run": info.run_id}).fetchall()
        if rows:
            return list(rows[0])
        return [row[0] for row in cur.execute(CATALOG, {"run": info.run_id}).fetchall()[:2]]


def pricing_run(con: duckdb.DuckDBPyConnection, dataset: str) -> RunInfo | None:
    """The run that would price bundles in ``dataset`` (``choose_run``), or None when it has none."""
    with model_cursor(con, dataset) as (cur, _):
        try:
            return choose_run(cur, dataset)
        except ModelError:
            return None
