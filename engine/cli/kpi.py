"""``kpi``: headline KPIs with change vs the previous period, and optional breakdown rows."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated

import typer

from engine import kpi
from engine.cli import DatasetOption, DbOption, JsonOption, app, emit, open_store
from engine.errors import DataError, StoreError
from engine.store import DEFAULT_DB


@app.command("kpi")
def kpi_command(
    dataset: DatasetOption,
    by: Annotated[str | None, typer.Option("--by", help="Breakdown rows: week, department or segment.")] = None,
    attribute: Annotated[
        str | None, typer.Option("--attribute", help="Customer attribute for --by segment (default: the first one).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First day, YYYY-MM-DD (default: the data's first).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day, YYYY-MM-DD (default: the data's last).")] = None,
    department: Annotated[
        list[str] | None, typer.Option("--department", help="Only this department (repeat for several).")
    ] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="Only customers with ATTRIBUTE=VALUE.")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """KPIs of a dataset: revenue, units, baskets, aov, items_per_basket, customers, discount_rate,
    promo_share, gross_margin (change vs the previous period of equal length), and `rows` per --by."""
    flt = kpi.KpiFilter(
        start=_day(start, "--start"),
        end=_day(end, "--end"),
        departments=tuple(department or ()),
        segment=_segment(segment),
    )
    con = open_store(db, read_only=True)
    try:
        kpi.ensure_facts(con, dataset)
    except StoreError:  # this version of the dataset has no KPI table yet: build it once, as a writer
        con.close()
        con = open_store(db)
    result = kpi.headline(con, dataset, flt)
    result = {"dataset": dataset, **result, "by": by, "rows": []}
    if by is not None:
        frame = kpi.breakdown(con, dataset, flt, by, attribute)  # type: ignore[arg-type]
        if by == "segment":
            result["attribute"] = attribute or kpi.segment_attributes(con, dataset)[0]
        result["rows"] = [{key: _plain(value) for key, value in row.items()} for row in frame.to_dict("records")]
    emit(result, as_json)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DataError(f"{option} expects a date as YYYY-MM-DD; found {text!r}") from None


def _segment(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    attribute, sep, value = text.partition("=")
    if not sep or not attribute or not value:
        raise DataError(f"--segment expects ATTRIBUTE=VALUE, e.g. age_band=45-54; found {text!r}")
    return attribute, value


def _plain(value):
    """JSON-ready scalars: numpy numbers as Python numbers, NaN as null."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value
