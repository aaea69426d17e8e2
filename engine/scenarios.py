"""Saved pricing scenarios: save, list, open, duplicate, rename, delete, compare.

A scenario is one pricing decision with its context: dataset (and the registry version it was
priced on), model run, bundle items, prices per segment, guardrails, the projected figures with
their bands at save time, and notes. Scenarios live in ``main.scenarios`` - outside the
datasets' schemas - so they survive a re-ingest; one whose dataset or run has since been
replaced still opens and is marked stale (``staleness``).

Concurrent saves (several browser sessions at once) each run in their own transaction on their
own cursor; a write conflict is retried, so no save is lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import duckdb
import pandas as pd

from engine import store
from engine.bounds import check_price, check_weeks
from engine.errors import DataError, StudioError
from engine.pricing.curves import price_curve
from engine.pricing.figures import HEADLINE_FIGURES
from engine.pricing.guardrails import Guardrails
from engine.pricing.optimize import optimize_price
from engine.pricing.whatif import project_bundle
from engine.privacy import check_pricing_segment

T = TypeVar("T")
log = logging.getLogger(__name__)

# Table main.scenarios(name, created_at, updated_at, payload JSON) is made by store.MIGRATIONS.
INSERT = "INSERT INTO main.scenarios VALUES ($name, now()::TIMESTAMP, now()::TIMESTAMP, $payload)"
UPSERT = """
INSERT INTO main.scenarios VALUES ($name, now()::TIMESTAMP, now()::TIMESTAMP, $payload)
ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at, payload = excluded.payload
"""
SELECT_ONE = "SELECT payload, created_at, updated_at FROM main.scenarios WHERE name = $name"
SELECT_ALL = "SELECT payload, created_at, updated_at FROM main.scenarios ORDER BY updated_at DESC, name"
DELETE_RETURNING = "DELETE FROM main.scenarios WHERE name = $name RETURNING name"
WRITE_ATTEMPTS = 50  # a write that conflicts with another session's is retried this many times
RUN_EXISTS = "SELECT count(*) FROM model_runs WHERE run_id = $run"

# The projected figures every scenario carries (the keys of a what-if projection).
FIGURES = HEADLINE_FIGURES
STATUS_QUO = "No bundle (status quo)"
MAX_NAME = 80


@dataclass(frozen=True)
class Scenario:
    """One saved pricing decision."""

    name: str
    dataset: str
    dataset_version: str
    run_id: str | None
    items: tuple[str, ...]
    item_names: tuple[str, ...]
    prices: dict[str, float]  # segment value -> bundle price ("All customers" for one price)
    regular_prices: tuple[float, ...]  # component prices at save time
    segment_attribute: str | None = None
    guardrails: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)  # figure -> value, plus "band": {figure: [low, high]}
    segment_figures: dict = field(default_factory=dict)  # segment value -> {"customers", "take_rate", "margin", ...}
    curve: dict = field(default_factory=dict)  # "price" -> [...], and a list per figure over those prices
    weeks: int = 4
    notes: str = ""
    uses_personal_data: bool = False  # prices depend on a sensitive attribute (disclosure notice)
    created_at: str | None = None
    updated_at: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def check_name(name: str) -> str:
    """A scenario name: 1-80 printable characters, trimmed."""
    cleaned = " ".join(str(name).split())
    if not cleaned or len(cleaned) > MAX_NAME:
        raise DataError(f"scenario name must be 1-{MAX_NAME} characters; found {name!r}")
    return cleaned


def save(con: duckdb.DuckDBPyConnection, scenario: Scenario, *, overwrite: bool = False) -> Scenario:
    """Store ``scenario``; refuses an existing name unless ``overwrite``. Retries write conflicts."""
    scenario = replace(scenario, name=check_name(scenario.name))
    check_weeks(scenario.weeks)
    for value, price in scenario.prices.items():
        check_price(price, sum(scenario.regular_prices), f"the bundle price for {value}")
    payload = json.dumps(scenario.to_json() | {"created_at": None, "updated_at": None}, default=str)

    def write(cur: duckdb.DuckDBPyConnection) -> Scenario:
        try:
            cur.execute(UPSERT if overwrite else INSERT, {"name": scenario.name, "payload": payload})
        except duckdb.ConstraintException as exc:
            raise DataError(
                f"a scenario named {scenario.name!r} already exists; choose another name or overwrite it"
            ) from exc
        return _from_row(*cur.execute(SELECT_ONE, {"name": scenario.name}).fetchall()[0])  # as committed

    return _transaction(con, f"save scenario {scenario.name!r}", write)


def _transaction(con: duckdb.DuckDBPyConnection, what: str, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run ``work`` in one transaction; a write conflict with another session is retried, and any
    other database error becomes a one-line studio error (never a raw DuckDB exception)."""
    for attempt in range(WRITE_ATTEMPTS):
        with con.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                result = work(cur)
                cur.execute("COMMIT")
                return result
            except duckdb.TransactionException:
                _rollback(cur)
                time.sleep(0.005 * (attempt + 1))  # another session committed first: try again
            except duckdb.Error as exc:
                _rollback(cur)
                raise StudioError(f"could not {what}: {str(exc).splitlines()[0]}") from exc
            except BaseException:
                _rollback(cur)
                raise
    raise StudioError(f"could not {what}: other sessions kept writing the same scenarios; try again")


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:  # a failed COMMIT has already ended the transaction
        pass


def get(con: duckdb.DuckDBPyConnection, name: str) -> Scenario:
    """The scenario called ``name``."""
    with con.cursor() as cur:
        rows = cur.execute(SELECT_ONE, {"name": name}).fetchall()
    if not rows:
        known = ", ".join(s.name for s in list_all(con)[:10]) or "none yet"
        raise DataError(f"no scenario named {name!r}; saved scenarios: {known}")
    return _from_row(*rows[0])


def list_all(con: duckdb.DuckDBPyConnection) -> list[Scenario]:
    """Every saved scenario, newest first."""
    with con.cursor() as cur:
        rows = cur.execute(SELECT_ALL).fetchall()
    return [_from_row(*row) for row in rows]


def delete(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Delete scenario ``name`` (the page asks for confirmation first)."""

    def remove(cur: duckdb.DuckDBPyConnection) -> None:
        if not cur.execute(DELETE_RETURNING, {"name": name}).fetchall():
            raise DataError(f"no scenario named {name!r}")

    _transaction(con, f"delete scenario {name!r}", remove)


def duplicate(con: duckdb.DuckDBPyConnection, name: str, new_name: str) -> Scenario:
    """Save a copy of ``name`` as ``new_name``."""
    return save(con, replace(get(con, name), name=new_name))


def rename(con: duckdb.DuckDBPyConnection, name: str, new_name: str) -> Scenario:
    """Rename a scenario in one transaction that reads it, saves the copy and removes the old name:
    of two sessions renaming one scenario at once, one wins and the other is told it is gone."""
    new_name = check_name(new_name)

    def move(cur: duckdb.DuckDBPyConnection) -> Scenario:
        rows = cur.execute(SELECT_ONE, {"name": name}).fetchall()
        if not rows:
            raise DataError(f"no scenario named {name!r}")
        old = _from_row(*rows[0])
        if new_name == name:
            return old
        payload = json.dumps(replace(old, name=new_name, created_at=None, updated_at=None).to_json())
        try:
            cur.execute(INSERT, {"name": new_name, "payload": payload})
        except duckdb.ConstraintException as exc:
            raise DataError(f"a scenario named {new_name!r} already exists; choose another name") from exc
        if not cur.execute(DELETE_RETURNING, {"name": name}).fetchall():
            raise DataError(f"no scenario named {name!r}")
        return _from_row(*cur.execute(SELECT_ONE, {"name": new_name}).fetchall()[0])

    return _transaction(con, f"rename scenario {name!r}", move)


def staleness(con: duckdb.DuckDBPyConnection, scenario: Scenario) -> str | None:
    """Why a scenario no longer matches the data, or None when it is current."""
    try:
        info = store.get_dataset(con, scenario.dataset)
    except StudioError:
        return f"dataset {scenario.dataset!r} no longer exists"
    if info.version != scenario.dataset_version:
        return f"dataset {scenario.dataset!r} was re-imported after this scenario was saved"
    if scenario.run_id is not None:
        with store.dataset_cursor(con, scenario.dataset) as cur:
            try:
                found = cur.execute(RUN_EXISTS, {"run": scenario.run_id}).fetchall()[0][0]
            except duckdb.CatalogException:
                found = 0
        if not found:
            return f"model run {scenario.run_id!r} no longer exists"
    return None


def compare(scenarios: list[Scenario], baseline: str = STATUS_QUO) -> pd.DataFrame:
    """Figures of 2-4 scenarios side by side, with deltas against a baseline.

    The baseline is another of the scenarios (by name) or the no-bundle status quo, whose
    figures follow from any scenario's: no bundle sales, and revenue and margin without the
    bundle's increments. Returns one row per figure: ``figure``, one column per scenario and
    one ``delta: <name>`` column per non-baseline scenario.
    """
    if not 1 <= len(scenarios) <= 4:
        raise DataError(f"compare needs 1 to 4 scenarios; found {len(scenarios)}")
    datasets = {s.dataset for s in scenarios}
    if len(datasets) > 1:
        raise DataError(f"compare scenarios of one dataset; found {', '.join(sorted(datasets))}")
    columns: dict[str, dict[str, Any]] = {s.name: {f: s.figures.get(f) for f in FIGURES} for s in scenarios}
    if baseline == STATUS_QUO:
        first = scenarios[0].figures
        status_quo = dict.fromkeys(FIGURES, 0.0)
        status_quo["revenue"] = first.get("revenue", 0.0) - first.get("incremental_revenue", 0.0)
        status_quo["margin"] = first.get("margin", 0.0) - first.get("incremental_margin", 0.0)
        columns = {STATUS_QUO: status_quo} | columns
    elif baseline not in columns:
        raise DataError(f"baseline {baseline!r} is not one of the compared scenarios: {', '.join(columns)}")
    table = pd.DataFrame(columns).rename_axis("figure").reset_index()
    for name in columns:
        if name != baseline:
            table[f"delta: {name}"] = table[name].astype(float) - table[baseline].astype(float)
    return table


def _from_row(payload: str, created_at: datetime, updated_at: datetime) -> Scenario:
    data = json.loads(payload)
    data["items"] = tuple(data["items"])
    data["item_names"] = tuple(data["item_names"])
    data["regular_prices"] = tuple(data["regular_prices"])
    data["created_at"], data["updated_at"] = created_at.isoformat(), updated_at.isoformat()
    return Scenario(**data)


# ---- from the pricing engine to a scenario, and back


def from_projection(
    con: duckdb.DuckDBPyConnection,
    name: str,
    projection,
    *,
    notes: str = "",
    guardrails: dict | None = None,
    curve=None,
) -> Scenario:
    """A scenario holding a what-if projection (``engine.pricing.whatif.BundleProjection``)."""
    segment = projection.segment
    segment_text = (
        None
        if segment.attribute is None
        else (f"{segment.attribute}={segment.value}" if segment.value else segment.attribute)
    )
    total = projection.total
    figures = {key: total.figures[key].value for key in FIGURES}
    figures["band"] = {key: [total.figures[key].low, total.figures[key].high] for key in FIGURES}
    figures["customers"] = total.customers
    per_segment = {
        group.segment: {"customers": group.customers, "price": group.price}
        | {key: group.figures[key].value for key in FIGURES}
        for group in projection.segments
    }
    curve_json = {}
    if curve is not None:
        curve_json = {"price": list(curve.prices)} | {k: list(v) for k, v in curve.figures.items() if k in FIGURES}
    return Scenario(
        name=check_name(name),
        dataset=projection.dataset,
        dataset_version=store.get_dataset(con, projection.dataset).version,
        run_id=projection.run_id,
        items=tuple(item.item_id for item in projection.items),
        item_names=tuple(item.name for item in projection.items),
        prices={segment_value: float(price) for segment_value, price in projection.prices},
        regular_prices=tuple(float(item.regular_price) for item in projection.items),
        segment_attribute=segment_text,
        guardrails=guardrails or {},
        figures=figures,
        segment_figures=per_segment,
        curve=curve_json,
        weeks=int(round(projection.weeks)),
        notes=notes,
        uses_personal_data=check_pricing_segment(con, segment.attribute),
    )


def price_scenario(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    name: str,
    items: list[str],
    *,
    price: float | dict[str, float] | None = None,
    segment: str | None = None,
    notes: str = "",
    weeks: float = 4.0,
    guardrails=None,
    objective: str = "margin",
) -> Scenario:
    """Project (at ``price``) or optimize (without one) a bundle and save it as scenario ``name``."""
    check_name(name)
    check_pricing_segment(con, (segment or "").partition("=")[0] or None)
    rails = guardrails or Guardrails()
    if price is None:
        decision = optimize_price(con, dataset, items, segment, objective, rails, weeks)
        # Without a segment the decision is one price; project it for everyone (the optimizer's own
        # projection is split by its comparison segment).
        projection = (
            decision.projection if segment else project_bundle(con, dataset, items, decision.price, None, weeks)
        )
        kept = decision.guardrails.to_json() | {"objective": objective, "recommendation": decision.recommendation}
    else:
        projection = project_bundle(con, dataset, items, price, segment, weeks)
        kept = {}
    curve = price_curve(con, dataset, items, None, weeks)
    return save(con, from_projection(con, name, projection, notes=notes, guardrails=kept, curve=curve))


def reproject(con: duckdb.DuckDBPyConnection, scenario: Scenario) -> Scenario:
    """The same decision (items, prices, segment, horizon) projected on the current data and model."""

    price = scenario.prices if len(scenario.prices) > 1 else next(iter(scenario.prices.values()))
    projection = project_bundle(
        con, scenario.dataset, list(scenario.items), price, scenario.segment_attribute, scenario.weeks
    )
    fresh = from_projection(con, scenario.name, projection, notes=scenario.notes, guardrails=scenario.guardrails)
    return save(con, replace(fresh, curve=scenario.curve), overwrite=True)
