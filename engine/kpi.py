"""KPI definitions as SQL, in one place: headline figures, change vs the previous period, breakdowns.

Every KPI is computed over the cleaned canonical tables of one dataset (``engine.schema``):

    revenue           sum(paid)
    units             sum(quantity)
    baskets           count(DISTINCT basket)
    aov               revenue / baskets
    items_per_basket  lines / baskets             (a line is one distinct product in a basket)
    customers         count(DISTINCT customer with a basket)
    discount_rate     (sum(list_amount) - revenue) / sum(list_amount)
    promo_share       revenue of lines whose product-week has a display or mailer promotion / revenue
    gross_margin      (revenue - cost) / revenue,  cost = quantity * unit_cost where known,
                      else list_amount * cost_ratio(department)   (an analyst's assumption)

Speed: the queries read ``kpi_basket_departments``, one row per basket x department with the
sums every KPI needs (1.4 million lines of the Complete Journey become 370 thousand rows). It
is derived from the canonical tables once per dataset version (a second or two on the full
Complete Journey) and lives in the dataset's schema, so a re-ingest (which drops the schema)
discards it. Cost ratios are joined at query time, so editing them never needs a rebuild. Any
code that changes lines, baskets, products or promotions in place must drop that table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from engine import privacy, store
from engine.errors import DataError, StoreError
from engine.ordering import natural_order
from engine.personal_data import usable_attributes_of
from engine.schema import DEFAULT_COST_RATIO

log = logging.getLogger(__name__)

Breakdown = Literal["week", "department", "segment"]
BREAKDOWNS: tuple[str, ...] = ("week", "department", "segment")
MAX_COST_RATIO = 1.5  # cost above 150% of the shelf price is a typing error, not an assumption


@dataclass(frozen=True)
class KpiDefinition:
    label: str
    formula: str  # in words, shown on the KPI page
    unit: str  # "currency" | "count" | "ratio" (a fraction, shown as %)


KPI_DEFINITIONS: dict[str, KpiDefinition] = {
    "revenue": KpiDefinition("Revenue", "Sum of what customers paid, after all discounts.", "currency"),
    "units": KpiDefinition(
        "Units", "Sum of quantities sold (fuel and other non-merchandise lines are cleaned out).", "count"
    ),
    "baskets": KpiDefinition("Baskets", "Number of distinct baskets (shopping trips).", "count"),
    "aov": KpiDefinition("Average order value", "Revenue / baskets.", "currency"),
    "items_per_basket": KpiDefinition(
        "Items per basket", "Lines / baskets: distinct products per basket (not units).", "count"
    ),
    "customers": KpiDefinition("Active customers", "Distinct customers with at least one basket.", "count"),
    "discount_rate": KpiDefinition(
        "Discount rate", "(Shelf amount - revenue) / shelf amount: retail and coupon discounts.", "ratio"
    ),
    "promo_share": KpiDefinition(
        "Promotion share",
        "Share of revenue from lines whose product was on display or in the mailer that week.",
        "ratio",
    ),
    "gross_margin": KpiDefinition(
        "Gross margin",
        "(Revenue - cost) / revenue. Cost = quantity x unit cost where the product has one, else "
        "shelf amount x the department's cost ratio (an assumption the analyst can edit).",
        "ratio",
    ),
}
KPI_NAMES: tuple[str, ...] = tuple(KPI_DEFINITIONS)


@dataclass(frozen=True)
class KpiFilter:
    """Which lines the KPIs cover. ``None`` dates mean the dataset's first / last day;
    no departments means all; ``segment`` is a customer attribute and its value, e.g. ('age_band', '45-54')."""

    start: date | None = None
    end: date | None = None
    departments: tuple[str, ...] = field(default_factory=tuple)
    segment: tuple[str, str] | None = None


FACTS_EXIST = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name = 'kpi_basket_departments'
"""

# One row per basket x department: everything a KPI sums, plus the basket's day, week and
# customer. Every filter keeps or drops whole rows (a basket's day and customer, a department),
# so KPIs summed from these rows equal those summed from the lines, on a quarter of the rows.
BUILD_FACTS = """
CREATE TABLE IF NOT EXISTS kpi_basket_departments AS
WITH numbered_baskets AS (
    SELECT basket_id, customer_id, day, week,
           row_number() OVER (ORDER BY day, basket_id)::INTEGER AS basket_no,
           dense_rank() OVER (ORDER BY customer_id)::INTEGER AS customer_no
    FROM baskets
), promoted AS (
    SELECT DISTINCT product_id, week FROM promotions WHERE display OR mailer
), basket_departments AS (
    SELECT b.day, b.week, b.basket_no, b.customer_no, b.customer_id, p.department,
           count(*) AS lines,
           sum(l.quantity) AS units,
           sum(l.paid) AS revenue,
           sum(l.list_amount) AS list_amount,
           coalesce(sum(l.paid) FILTER (WHERE pr.product_id IS NOT NULL), 0) AS promo_revenue,
           coalesce(sum(l.quantity * p.unit_cost), 0) AS known_cost,
           coalesce(sum(l.list_amount) FILTER (WHERE p.unit_cost IS NULL), 0) AS uncosted_list_amount,
           coalesce(sum(l.paid) FILTER (WHERE p.unit_cost IS NOT NULL), 0) AS costed_revenue
    FROM lines l
    JOIN numbered_baskets b USING (basket_id)
    JOIN products p USING (product_id)
    LEFT JOIN promoted pr ON pr.product_id = l.product_id AND pr.week = b.week
    GROUP BY b.day, b.week, b.basket_no, b.customer_no, b.customer_id, p.department
)
SELECT *, row_number() OVER (PARTITION BY basket_no ORDER BY department) = 1 AS first_of_basket
FROM basket_departments
ORDER BY day
"""

# Rows in [$scan_start, $end] that pass the department and segment filters, with their cost.
# ``marks_basket`` flags one row per basket (every row when $department_level: a department
# filter or breakdown), so distinct customers are counted over fewer rows.
_SCOPED = """
WITH scoped AS (
    SELECT f.*, f.day >= $start AS is_current,
           $department_level OR f.first_of_basket AS marks_basket,
           f.known_cost + f.uncosted_list_amount * coalesce(c.cost_ratio, $default_ratio) AS cost
    FROM kpi_basket_departments f
    LEFT JOIN cost_ratios c USING (department)
    WHERE f.day BETWEEN $scan_start AND $end
      AND (len($departments) = 0 OR list_contains($departments, f.department))
      AND ($segment_attribute IS NULL OR f.customer_id IN (
            SELECT customer_id FROM customer_attributes
            WHERE attribute = $segment_attribute AND value = $segment_value))
)
"""

_METRICS = """
       sum(revenue) AS revenue,
       sum(units) AS units,
       {baskets} AS baskets,
       sum(revenue) / baskets AS aov,
       sum(lines) / baskets AS items_per_basket,
       count(DISTINCT customer_no) FILTER (WHERE marks_basket) AS customers,
       (sum(list_amount) - sum(revenue)) / sum(list_amount) AS discount_rate,
       sum(promo_revenue) / sum(revenue) AS promo_share,
       (sum(revenue) - sum(cost)) / sum(revenue) AS gross_margin,
       sum(costed_revenue) / sum(revenue) AS unit_cost_share
"""

HEADLINE = _SCOPED + "SELECT is_current," + _METRICS + "FROM scoped GROUP BY is_current"

# Calendar weeks, Monday to Sunday, whatever the dataset's own week numbers say (the Complete
# Journey's run from one Monday to the next, 8 calendar days). ``week`` counts them from the week
# of the dataset's first day; ``days`` is how many of the week's 7 days lie inside the period
# ($covered_from to $covered_to: the period within the data), so only a week cut by the period
# or the data is short; ``days_with_baskets`` may be fewer (a closed day).
BREAKDOWN_BY_WEEK = (
    _SCOPED
    + """, calendar_weeks AS (SELECT date_trunc('week', day)::DATE AS week_start, * FROM scoped)
SELECT (date_diff('day', date_trunc('week', $first_day)::DATE, week_start) // 7 + 1)::INTEGER AS week,
       week_start,
       (date_diff('day', greatest(week_start, $covered_from), least(week_start + 6, $covered_to)) + 1)::INTEGER
           AS days,
       count(DISTINCT day)::INTEGER AS days_with_baskets,"""
    + _METRICS
    + "FROM calendar_weeks GROUP BY week_start ORDER BY week_start"
)

BREAKDOWN_BY_DEPARTMENT = (
    _SCOPED + "SELECT department," + _METRICS + "FROM scoped GROUP BY department ORDER BY revenue DESC, department"
)

# Per segment: sum each customer's rows first (a basket belongs to one customer), then join the
# few thousand customer rows, not every basket row, to their attribute value.
BREAKDOWN_BY_SEGMENT = (
    _SCOPED
    + """, per_customer AS (
    SELECT customer_id, sum(revenue) AS revenue, sum(units) AS units, {baskets} AS baskets, sum(lines) AS lines,
           sum(list_amount) AS list_amount, sum(promo_revenue) AS promo_revenue, sum(cost) AS cost,
           sum(costed_revenue) AS costed_revenue
    FROM scoped GROUP BY customer_id
)
SELECT segment,
       sum(c.revenue) AS revenue,
       sum(c.units) AS units,
       sum(c.baskets)::BIGINT AS baskets,
       sum(c.revenue) / sum(c.baskets) AS aov,
       sum(c.lines) / sum(c.baskets) AS items_per_basket,
       count(*) AS customers,
       (sum(c.list_amount) - sum(c.revenue)) / sum(c.list_amount) AS discount_rate,
       sum(c.promo_revenue) / sum(c.revenue) AS promo_share,
       (sum(c.revenue) - sum(c.cost)) / sum(c.revenue) AS gross_margin,
       sum(c.costed_revenue) / sum(c.revenue) AS unit_cost_share
FROM (
    SELECT per_customer.*, coalesce(a.value, 'Unknown') AS segment
    FROM per_customer
    LEFT JOIN customer_attributes a ON a.customer_id = per_customer.customer_id AND a.attribute = $attribute
) c
GROUP BY segment"""  # in natural order: see breakdown
)

# Baskets in a group: without a department filter, one row per basket is flagged, and in the
# department breakdown every row of a group is a distinct basket, so counting rows is exact.
# Only a department filter on the other queries needs distinct basket numbers (slower).
BASKETS_COUNTED = "count(*) FILTER (WHERE marks_basket)"
BASKETS_DISTINCT = "count(DISTINCT basket_no)"

DEPARTMENTS = "SELECT DISTINCT department FROM products ORDER BY department"
SEGMENT_VALUES = """
SELECT DISTINCT value FROM customer_attributes WHERE attribute = $attribute
"""

COST_RATIOS = """
SELECT p.department,
       coalesce(any_value(c.cost_ratio), $default_ratio) AS cost_ratio,
       count(*) AS products,
       count(*) FILTER (WHERE p.unit_cost IS NULL) AS products_without_unit_cost
FROM products p LEFT JOIN cost_ratios c USING (department)
GROUP BY p.department ORDER BY p.department
"""
SET_COST_RATIO = "INSERT OR REPLACE INTO cost_ratios VALUES ($department, $ratio)"

DATE_RANGE = "SELECT min(day), max(day) FROM kpi_basket_departments"

_facts_lock = threading.Lock()


@contextmanager
def _facts_cursor(con: duckdb.DuckDBPyConnection, dataset: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on ``dataset`` whose ``kpi_basket_departments`` table exists (built on first use)."""
    with store.dataset_cursor(con, dataset) as cur:
        if not cur.execute(FACTS_EXIST).fetchall()[0][0]:
            with _facts_lock:
                try:
                    cur.execute(BUILD_FACTS)
                except duckdb.Error as exc:
                    raise StoreError(
                        f"cannot prepare the KPI table of dataset {dataset!r}: expected a writable studio "
                        f"database, found: {str(exc).splitlines()[0]}"
                    ) from exc
            log.info("built kpi_basket_departments for dataset %s", dataset)
        yield cur


def ensure_facts(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    """Build ``kpi_basket_departments`` for ``dataset`` if this version of it has none yet (idempotent)."""
    with _facts_cursor(con, dataset):
        pass


def departments(con: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """The departments of ``dataset``'s products, sorted."""
    with store.dataset_cursor(con, dataset) as cur:
        return _column(cur, DEPARTMENTS)


def segment_attributes(con: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """The customer attributes (demographics, derived segments) of ``dataset`` that may be segments:
    the whitelist (direct identifiers never are, ``engine.personal_data``)."""
    with store.dataset_cursor(con, dataset) as cur:
        return usable_attributes_of(cur)


def segment_values(con: duckdb.DuckDBPyConnection, dataset: str, attribute: str) -> list[str]:
    """The values of one customer attribute in their natural order ('15-24K' before '100-124K'), 'Unknown' last."""
    with store.dataset_cursor(con, dataset) as cur:
        return _segment_values(cur, dataset, attribute)


def default_period(first_day: date, last_day: date) -> tuple[date, date]:
    """The latest half of the data: the default period, so the previous period (the first half) has data."""
    half = ((last_day - first_day).days + 1) // 2
    return (last_day - timedelta(days=half - 1), last_day) if half > 0 else (first_day, last_day)


def headline(con: duckdb.DuckDBPyConnection, dataset: str, flt: KpiFilter = KpiFilter()) -> dict:
    """Every KPI for the filtered period, the previous period of equal length, and the change.

    Returns
    -------
    dict with the KPI names (current period) plus ``start``, ``end``, ``previous_start``,
    ``previous_end``, ``unit_cost_share`` (share of revenue costed from unit costs, the rest
    uses cost ratios), ``previous`` (KPI -> value, None where the previous period has no
    data) and ``change`` (KPI -> relative change for currency and counts, difference for
    ratios; None without a previous value), ``suppressed`` (why the figures are None, or "").

    Privacy: a period with fewer than ``min_group_size`` customers (studio setting) has every
    figure suppressed (None), as in ``engine.segments``, whatever the filter: a small dataset
    as a whole is a small group too. A previous period that small gives no change.
    """
    with _facts_cursor(con, dataset) as cur:
        params = _params(cur, dataset, flt)
        days = (params["end"] - params["start"]).days + 1
        params["scan_start"] = params["start"] - timedelta(days=days)
        params["department_level"] = bool(flt.departments)
        frame = cur.execute(_with_baskets(HEADLINE, flt, "headline"), params).df()
    periods = {bool(row.pop("is_current")): row for row in frame.to_dict("records")}
    current = periods.get(True, _empty_period())
    previous = periods.get(False)
    smallest = min_group_size(con)
    suppressed = ""
    if 0 < current["customers"] < smallest:
        group = f" in {flt.segment[0]} = {flt.segment[1]}" if flt.segment else ""
        suppressed = f"fewer than {smallest} customers{group} in this period"
        current = {name: None for name in current}
    if previous is not None and previous["customers"] < smallest:
        previous = None
    result: dict = {
        "start": params["start"],
        "end": params["end"],
        "previous_start": params["scan_start"],
        "previous_end": params["start"] - timedelta(days=1),
    }
    result.update({name: _plain(current[name]) for name in KPI_NAMES})
    result["unit_cost_share"] = _plain(current["unit_cost_share"])
    result["previous"] = {name: None if previous is None else _plain(previous[name]) for name in KPI_NAMES}
    result["change"] = {name: _change(name, result[name], result["previous"][name]) for name in KPI_NAMES}
    result["suppressed"] = suppressed
    return result


def headline_table(result: dict) -> pd.DataFrame:
    """A headline result as one row per KPI: label, unit, current, previous, change, definition."""
    rows = [
        {
            "kpi": name,
            "label": d.label,
            "unit": d.unit,
            "current": result[name],
            "previous": result["previous"][name],
            "change": result["change"][name],
            "change_kind": "difference" if d.unit == "ratio" else "relative",
            "definition": d.formula,
        }
        for name, d in KPI_DEFINITIONS.items()
    ]
    return pd.DataFrame(rows)


def breakdown(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    flt: KpiFilter = KpiFilter(),
    by: Breakdown = "week",
    attribute: str | None = None,
) -> pd.DataFrame:
    """Every KPI per week, department or customer segment over the filtered period.

    Per department or segment, baskets and customers count those with at least one line in
    the group. ``attribute`` names the customer attribute for ``by='segment'`` (default: the
    first attribute of the dataset); segments come in their natural order
    (``engine.ordering.natural_order``: '15-24K' before '100-124K', 'Unknown' last).

    Weeks are calendar weeks, Monday to Sunday: one row per ``week_start`` (a Monday), ``week``
    counted from the week of the dataset's first day, ``days`` = the week's days inside the
    period and the data (7, fewer only for a first or last week that the period or the data
    cuts: then ``partial`` is True), ``days_with_baskets`` = the days that had baskets.

    Privacy: a row over fewer than ``min_group_size`` customers has its figures suppressed
    (NaN) and its ``suppressed`` column says why (empty otherwise).
    """
    if by not in BREAKDOWNS:
        raise DataError(f"breakdown must be one of {', '.join(BREAKDOWNS)}; found {by!r}")
    sql = {"week": BREAKDOWN_BY_WEEK, "department": BREAKDOWN_BY_DEPARTMENT}.get(by, BREAKDOWN_BY_SEGMENT)
    with _facts_cursor(con, dataset) as cur:
        params = _params(cur, dataset, flt)
        params["scan_start"] = params["start"]
        params["department_level"] = by == "department" or bool(flt.departments)
        if by == "segment":
            params["attribute"] = _check_attribute(cur, dataset, attribute)
        if by == "week":
            first_day, last_day = cur.execute(DATE_RANGE).fetchall()[0]
            params |= {
                "first_day": first_day,
                "covered_from": max(params["start"], first_day),
                "covered_to": min(params["end"], last_day),
            }
        frame = cur.execute(_with_baskets(sql, flt, by), params).df()
    if by == "week":
        frame["week_start"] = pd.to_datetime(frame["week_start"]).dt.date
        frame.insert(frame.columns.get_loc("days_with_baskets") + 1, "partial", frame["days"] < 7)
    if by == "segment":
        order = natural_order(frame["segment"].tolist())
        frame = frame.set_index("segment").loc[order].reset_index()
    smallest = min_group_size(con)
    small = frame["customers"] < smallest
    if small.any():
        frame.loc[small, list(KPI_NAMES)] = None
    frame["suppressed"] = np.where(small, f"fewer than {smallest} customers", "")
    return frame.drop(columns="unit_cost_share")


def min_group_size(con: duckdb.DuckDBPyConnection) -> int:
    """Smallest customer group whose figures may be shown (studio setting ``min_group_size``)."""
    return privacy.min_group_size(con)


def cost_ratios(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    """Cost ratio (cost / shelf price) per department, with how many products lack a unit cost."""
    with store.dataset_cursor(con, dataset) as cur:
        return cur.execute(COST_RATIOS, {"default_ratio": DEFAULT_COST_RATIO}).df()


def set_cost_ratio(con: duckdb.DuckDBPyConnection, dataset: str, department: str, ratio: float) -> None:
    """Set the cost ratio assumed for ``department``'s products without a unit cost."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value < MAX_COST_RATIO:
        raise DataError(
            f"cost ratio must be a number above 0 and below {MAX_COST_RATIO} (cost / shelf price); found {ratio!r}"
        )
    with store.dataset_cursor(con, dataset) as cur:
        known = _column(cur, DEPARTMENTS)
        if department not in known:
            raise DataError(f"no department {department!r} in dataset {dataset!r}; expected one of: {', '.join(known)}")
        cur.execute(SET_COST_RATIO, {"department": department, "ratio": value})
    log.info("dataset %s: cost ratio of %s set to %.3f", dataset, department, value)


def _params(cur: duckdb.DuckDBPyConnection, dataset: str, flt: KpiFilter) -> dict:
    """Bound parameters of the KPI queries for ``flt``, checked against the dataset (on its cursor)."""
    first_day, last_day = cur.execute(DATE_RANGE).fetchall()[0]
    start, end = flt.start or first_day, flt.end or last_day
    if start is None or end is None:
        raise DataError(f"dataset {dataset!r} has no baskets, so it has no KPIs")
    if start > end:
        raise DataError(f"the period must start on or before its end; found {start} to {end}")
    if flt.departments:
        known = _column(cur, DEPARTMENTS)
        unknown = [d for d in flt.departments if d not in known]
        if unknown:
            raise DataError(
                f"unknown department(s) {', '.join(map(repr, unknown))}; expected some of: {', '.join(known)}"
            )
    segment_attribute, segment_value = flt.segment if flt.segment else (None, None)
    if segment_attribute is not None:
        values = _segment_values(cur, dataset, segment_attribute)
        if segment_value not in values:
            raise DataError(
                f"no customers with {segment_attribute} = {segment_value!r}; expected one of: {', '.join(values)}"
            )
    return {
        "start": start,
        "end": end,
        "departments": list(flt.departments),
        "segment_attribute": segment_attribute,
        "segment_value": segment_value,
        "default_ratio": DEFAULT_COST_RATIO,
    }


def _with_baskets(sql: str, flt: KpiFilter, query: str) -> str:
    """``sql`` with the cheapest exact basket count for this filter (a choice of two constants)."""
    distinct = bool(flt.departments) and query != "department"
    return sql.replace("{baskets}", BASKETS_DISTINCT if distinct else BASKETS_COUNTED)


def _column(cur: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list:
    return [row[0] for row in cur.execute(sql, params).fetchall()]


def _check_attribute(cur: duckdb.DuckDBPyConnection, dataset: str, attribute: str | None) -> str:
    """``attribute`` if the dataset has it (None: the first one), else a one-line DataError."""
    attributes = usable_attributes_of(cur)
    if attribute is None and attributes:
        return attributes[0]
    if attribute not in attributes:
        raise DataError(
            f"no customer attribute {attribute!r} in dataset {dataset!r}; "
            f"expected one of: {', '.join(attributes) or 'none'}"
        )
    assert attribute is not None  # it is one of the dataset's attributes
    return attribute


def _segment_values(cur: duckdb.DuckDBPyConnection, dataset: str, attribute: str) -> list[str]:
    return natural_order(_column(cur, SEGMENT_VALUES, {"attribute": _check_attribute(cur, dataset, attribute)}))


def _empty_period() -> dict:
    return {"revenue": 0.0, "units": 0.0, "baskets": 0, "customers": 0} | {
        name: None
        for name in ("aov", "items_per_basket", "discount_rate", "promo_share", "gross_margin", "unit_cost_share")
    }


def _plain(value):
    """numpy / pandas scalars as Python numbers; NaN and NA as None."""
    if value is None or pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _change(name: str, current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    if KPI_DEFINITIONS[name].unit == "ratio":
        return current - previous
    return None if previous == 0 else current / previous - 1
