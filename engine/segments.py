"""Customer segments: demographic, RFM, and learned preference clusters.

A segment is an (attribute, value) pair of ``customer_attributes``. Demographic attributes come
from ingest; this module derives two more kinds and stores them as attributes too, so KPI
breakdowns, the pricing studio and the optimizer target every kind the same way:

- ``rfm``: recency, frequency and monetary quintiles (1-5, 5 best) over the whole history,
  named with the usual RFM labels (Champions, Loyal, New, At risk, Hibernating, Others).
- ``preference_cluster``: k-means (scikit-learn) on the learned preference vectors theta_h of a
  model run, so customers who like the same things share a segment.

Any figure computed over fewer than ``min_group_size`` customers (a studio setting, default 10)
is suppressed: its value is None and ``suppressed`` says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from engine import privacy, store
from engine.errors import DataError, ModelError
from engine.personal_data import usable_attributes

KINDS = ("demographic", "rfm", "learned")
DERIVED = {"rfm": "rfm_segment", "learned": "preference_cluster"}

DROP_DERIVED = "DELETE FROM customer_attributes WHERE attribute = $attribute"

RFM_SEGMENTS = """
INSERT INTO customer_attributes
WITH per_customer AS (
    SELECT b.customer_id,
           date_diff('day', max(b.day), (SELECT max(day) FROM baskets)) AS recency_days,
           count(DISTINCT b.basket_id) AS frequency,
           sum(l.paid) AS monetary
    FROM baskets b JOIN lines l USING (basket_id)
    GROUP BY b.customer_id
), scored AS (
    SELECT customer_id,
           ntile(5) OVER (ORDER BY recency_days DESC) AS r,
           ntile(5) OVER (ORDER BY frequency) AS f,
           ntile(5) OVER (ORDER BY monetary) AS m
    FROM per_customer
)
SELECT customer_id, $attribute,
       CASE WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'Champions'
            WHEN f >= 4 THEN 'Loyal'
            WHEN r >= 4 AND f <= 2 THEN 'New'
            WHEN r <= 2 AND f >= 3 THEN 'At risk'
            WHEN r <= 2 AND f <= 2 THEN 'Hibernating'
            ELSE 'Others' END
FROM scored
"""

RUN_THETAS = "SELECT customer_id, theta FROM model_customers WHERE run_id = $run ORDER BY customer_id"
INSERT_CLUSTERS = "INSERT INTO customer_attributes SELECT customer_id, $attribute, value FROM clusters"


SEGMENT_PROFILE = """
WITH members AS (
    SELECT customer_id, value AS segment FROM customer_attributes WHERE attribute = $attribute
), spend AS (
    SELECT m.segment, count(DISTINCT b.customer_id) AS active, count(DISTINCT b.basket_id) AS baskets,
           sum(l.paid) AS revenue
    FROM members m JOIN baskets b USING (customer_id) JOIN lines l USING (basket_id)
    GROUP BY m.segment
), sizes AS (SELECT segment, count(*) AS customers FROM members GROUP BY segment),
category_revenue AS (
    SELECT m.segment, p.category, sum(l.paid) AS revenue,
           row_number() OVER (PARTITION BY m.segment ORDER BY sum(l.paid) DESC) AS rank
    FROM members m JOIN baskets b USING (customer_id) JOIN lines l USING (basket_id) JOIN products p USING (product_id)
    GROUP BY m.segment, p.category
), top AS (
    SELECT segment, string_agg(category, ', ' ORDER BY rank) AS top_categories FROM category_revenue WHERE rank <= 3 GROUP BY segment
)
SELECT s.segment, s.customers, coalesce(sp.active, 0) AS active_customers, coalesce(sp.baskets, 0) AS baskets,
       round(coalesce(sp.revenue, 0), 2) AS revenue,
       coalesce(sp.baskets, 0) / (SELECT count(*) FROM baskets) AS basket_share,
       t.top_categories
FROM sizes s LEFT JOIN spend sp USING (segment) LEFT JOIN top t USING (segment)
ORDER BY s.customers DESC
"""

PRICE_SENSITIVITY = """
-- b(h) = mean over the run's items of softplus(beta_customer_h + beta_item_i) (engine.schema MODEL_DDL)
WITH b AS (
    SELECT c.customer_id, avg(ln(1 + exp(c.beta_customer + i.beta_item))) AS sensitivity
    FROM model_customers c JOIN model_items i ON i.run_id = c.run_id
    WHERE c.run_id = $run GROUP BY c.customer_id
)
SELECT a.value AS segment,
       quantile_cont(b.sensitivity, [0.1, 0.25, 0.5, 0.75, 0.9]) AS q
FROM b JOIN customer_attributes a ON a.customer_id = b.customer_id AND a.attribute = $attribute
GROUP BY a.value
"""


@dataclass(frozen=True)
class SegmentProfile:
    """Per-segment figures for one segmentation; small segments suppressed."""

    attribute: str
    kind: str
    table: pd.DataFrame  # segment, customers, active_customers, baskets, revenue, basket_share, top_categories, sensitivity_p10..p90, suppressed
    run_id: str | None  # the model run the sensitivities come from (None: no model)
    min_group_size: int


def attributes(con: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """Every segmentation attribute of a dataset (demographic and derived), direct identifiers left out."""
    return usable_attributes(con, dataset)


def kind_of(attribute: str) -> str:
    """'rfm', 'learned' or 'demographic' for an attribute name."""
    return next((kind for kind, name in DERIVED.items() if name == attribute), "demographic")


def build_rfm(con: duckdb.DuckDBPyConnection, dataset: str) -> str:
    """(Re)compute the RFM segment of every customer; returns the attribute name."""
    attribute = DERIVED["rfm"]
    with store.dataset_cursor(con, dataset) as cur:
        cur.execute("BEGIN TRANSACTION")
        cur.execute(DROP_DERIVED, {"attribute": attribute})
        cur.execute(RFM_SEGMENTS, {"attribute": attribute})
        cur.execute("COMMIT")
    return attribute


def model_run(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The newest trained run, else the truth of a synthetic market, else None."""
    from engine.model.runs import list_runs

    runs = list_runs(con, dataset)  # trained runs first, newest first; the truth last
    return runs[0].run_id if runs else None


def build_learned(con: duckdb.DuckDBPyConnection, dataset: str, clusters: int = 5, seed: int = 0) -> str:
    """Cluster customers on their learned preference vectors (k-means); returns the attribute."""
    from sklearn.cluster import KMeans

    if not 2 <= clusters <= 20:
        raise DataError(f"preference clusters: expected between 2 and 20 clusters, found {clusters}")
    attribute = DERIVED["learned"]
    run = model_run(con, dataset)
    with store.dataset_cursor(con, dataset) as cur:
        if run is None:
            raise ModelError(f"dataset {dataset!r} has no model run yet: train the model to get preference clusters")
        thetas = cur.execute(RUN_THETAS, {"run": run}).df()
        theta = np.stack(thetas.theta.to_numpy())  # (H, K)
        labels = KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit_predict(theta)  # (H,)
        # Name clusters by size so "Cluster 1" is the largest, stable across refits.
        order = {label: rank for rank, label in enumerate(pd.Series(labels).value_counts().index)}
        frame = pd.DataFrame({"customer_id": thetas.customer_id, "value": [f"Cluster {order[x] + 1}" for x in labels]})
        cur.register("clusters", frame)
        cur.execute("BEGIN TRANSACTION")
        cur.execute(DROP_DERIVED, {"attribute": attribute})
        cur.execute(INSERT_CLUSTERS, {"attribute": attribute})
        cur.execute("COMMIT")
        cur.unregister("clusters")
    return attribute


def profile(con: duckdb.DuckDBPyConnection, dataset: str, attribute: str) -> SegmentProfile:
    """Size, revenue, basket share, top categories and price sensitivity per segment."""
    known = attributes(con, dataset)
    if attribute not in known:
        raise DataError(
            f"segment attribute {attribute!r} not in dataset {dataset!r}; expected one of {', '.join(known)}"
        )
    k = privacy.min_group_size(con)
    run = model_run(con, dataset)
    with store.dataset_cursor(con, dataset) as cur:
        table = cur.execute(SEGMENT_PROFILE, {"attribute": attribute}).df()
        quantiles = cur.execute(PRICE_SENSITIVITY, {"run": run, "attribute": attribute}).df() if run else None
    for j, name in enumerate(("p10", "p25", "p50", "p75", "p90")):
        column = f"sensitivity_{name}"
        table[column] = np.nan
        if quantiles is not None and not quantiles.empty:
            lookup = dict(zip(quantiles.segment, (q[j] for q in quantiles.q), strict=True))
            table[column] = table.segment.map(lookup)
    small = table.customers < k
    table["suppressed"] = np.where(small, f"fewer than {k} customers", "")
    figures = [c for c in table.columns if c not in ("segment", "suppressed")]
    table[figures] = table[figures].astype(object).where(~small, None)
    return SegmentProfile(attribute, kind_of(attribute), table, run, k)


def segments_json(con: duckdb.DuckDBPyConnection, dataset: str, kind: str) -> dict:
    """The CLI's ``segments`` result: build the derived kind if needed, then profile it."""
    if kind not in KINDS:
        raise DataError(f"segment kind must be one of {', '.join(KINDS)}; found {kind!r}")
    if kind == "rfm":
        chosen = [build_rfm(con, dataset)]
    elif kind == "learned":
        chosen = [build_learned(con, dataset)]
    else:
        chosen = [a for a in attributes(con, dataset) if kind_of(a) == "demographic"]
    segmentations: list[dict] = []
    for attribute in chosen:
        prof = profile(con, dataset, attribute)
        rows = json.loads(prof.table.to_json(orient="records"))
        segmentations.append({"attribute": attribute, "run_id": prof.run_id, "segments": rows})
    return {"dataset": dataset, "kind": kind, "segmentations": segmentations}
