"""Fair pricing: which attributes are sensitive, and how prices and surplus differ across them.

Which attributes are sensitive, and who may price on them, is ``engine.privacy``.

The fairness view takes per-customer outcomes of a pricing decision - the bundle price each
customer is offered, its discount vs the parts, and the change in consumer surplus - and
compares group means across every sensitive attribute. The largest gap per measure is
flagged. Groups with fewer than ``min_group_size`` customers are suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from engine import store
from engine.errors import DataError
from engine.privacy import min_group_size, sensitive_attributes

MEASURES = ("price", "discount_pct", "surplus_change")
GROUP_OUTCOMES = """
SELECT a.attribute, a.value AS "group", count(*) AS customers,
       avg(o.price) AS price, avg(o.discount_pct) AS discount_pct, avg(o.surplus_change) AS surplus_change
FROM outcomes o JOIN customer_attributes a USING (customer_id)
WHERE list_contains($attributes, a.attribute)
GROUP BY ALL
ORDER BY a.attribute, a.value
"""


@dataclass(frozen=True)
class FairnessView:
    """Group means of each measure per sensitive attribute, with the largest gaps."""

    groups: pd.DataFrame  # attribute, group, customers, price, discount_pct, surplus_change, suppressed
    gaps: pd.DataFrame  # attribute, measure, gap, low_group, high_group, largest (bool)
    min_group_size: int


def fairness_view(con: duckdb.DuckDBPyConnection, dataset: str, outcomes: pd.DataFrame) -> FairnessView:
    """Compare per-customer outcomes across sensitive attributes.

    Parameters
    ----------
    outcomes : DataFrame with ``customer_id``, ``price``, ``discount_pct``, ``surplus_change``,
        one row per customer offered the bundle.
    """
    missing = {"customer_id", *MEASURES} - set(outcomes.columns)
    if missing:
        raise DataError(
            f"fairness view needs columns customer_id, {', '.join(MEASURES)}; missing {', '.join(sorted(missing))}"
        )
    k = min_group_size(con)
    with store.dataset_cursor(con, dataset) as cur:
        cur.register("outcomes", outcomes[["customer_id", *MEASURES]])
        groups = cur.execute(GROUP_OUTCOMES, {"attributes": sensitive_attributes(con)}).df()
        cur.unregister("outcomes")
    small = groups.customers < k
    groups["suppressed"] = small.map({True: f"fewer than {k} customers", False: ""})
    groups.loc[small, list(MEASURES)] = None
    rows = []
    for attribute, part in groups[~small].groupby("attribute"):
        for measure in MEASURES:
            values = part.set_index("group")[measure].astype(float)
            if len(values) >= 2:
                rows.append(
                    {
                        "attribute": attribute,
                        "measure": measure,
                        "gap": values.max() - values.min(),
                        "low_group": values.idxmin(),
                        "high_group": values.idxmax(),
                    }
                )
    gaps = pd.DataFrame(rows, columns=["attribute", "measure", "gap", "low_group", "high_group"])
    gaps["largest"] = gaps.gap.eq(gaps.groupby("measure").gap.transform("max")) & (gaps.gap > 0)
    return FairnessView(groups, gaps, k)


CUSTOMER_SEGMENT = """
SELECT c.customer_id, coalesce(a.value, 'Unknown') AS segment
FROM customers c LEFT JOIN customer_attributes a ON a.customer_id = c.customer_id AND a.attribute = $attribute
"""
ALL_CUSTOMERS = "SELECT customer_id, 'All customers' AS segment FROM customers"


def scenario_outcomes(con: duckdb.DuckDBPyConnection, scenario) -> pd.DataFrame:
    """Per-customer outcomes of a saved scenario (``engine.scenarios.Scenario``).

    Each customer's price and discount are exact (the price of their pricing segment); their
    surplus change is their pricing segment's average per customer (the scenario keeps
    segment-level figures only, never individual ones).
    """
    attribute = (scenario.segment_attribute or "").partition("=")[0] or None
    with store.dataset_cursor(con, scenario.dataset) as cur:
        frame = (
            cur.execute(CUSTOMER_SEGMENT, {"attribute": attribute}).df()
            if attribute
            else cur.execute(ALL_CUSTOMERS).df()
        )
    frame = frame[frame.segment.isin(list(scenario.prices))].copy()
    regular = sum(scenario.regular_prices)
    frame["price"] = frame.segment.map(scenario.prices).astype(float)
    frame["discount_pct"] = 100 * (1 - frame.price / regular)
    per_customer = {}
    for segment in scenario.prices:
        figures = scenario.segment_figures.get(segment) or scenario.figures
        customers = figures.get("customers") or scenario.figures.get("customers") or len(frame)
        per_customer[segment] = figures.get("consumer_surplus_change", 0.0) / max(customers, 1)
    frame["surplus_change"] = frame.segment.map(per_customer).astype(float)
    return frame.drop(columns="segment")
