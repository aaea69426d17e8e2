"""What the Bundles page shows: the candidates table, the pair heatmap, filter and builder options."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import duckdb
import pandas as pd

from engine import store
from engine.bundles import copurchase, itemsets
from engine.bundles.candidates import BundleQuery, BundleResult, find_bundles
from engine.bundles.complementarity import load_complementarity
from engine.bundles.copurchase import Segment
from engine.errors import StudioError
from engine.pricing import bundle as pricing_bundle

log = logging.getLogger(__name__)

DEPARTMENTS = "SELECT DISTINCT department FROM products ORDER BY department"
CATEGORIES = """
SELECT DISTINCT category FROM products
WHERE $department IS NULL OR department = $department
ORDER BY category
"""

LABEL_LENGTH = 28
HEATMAP_METRICS = ("lift", "complementarity")


@dataclass(frozen=True)
class FilterOptions:
    """Choices for the page's filters."""

    departments: tuple[str, ...]
    categories: tuple[str, ...]
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class PairMatrix:
    """A symmetric item x item matrix of one pair metric (diagonal and unseen pairs are NaN)."""

    metric: str
    items: tuple[str, ...]
    labels: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # (I, I)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.values), index=list(self.labels), columns=list(self.labels))


def candidates_frame(result: BundleResult) -> pd.DataFrame:
    """One row per candidate with the "why" columns, in rank order (for ``st.dataframe``)."""
    rows = [
        {
            "rank": rank,
            "bundle": " + ".join(c.names),
            "items": ", ".join(c.items),
            "margin": c.expected_incremental_margin,
            "complementarity": c.complementarity,
            "lift": c.lift,
            "support": c.support,
            "together baskets": c.together_baskets,
            "customers together": c.together_customers,
            "shared customers": c.shared_customers,
            "confidence": " / ".join(f"{x:.1%}" for x in c.confidences),
        }
        for rank, c in enumerate(result.candidates, start=1)
    ]
    columns = [
        "rank",
        "bundle",
        "items",
        "margin",
        "complementarity",
        "lift",
        "support",
        "together baskets",
        "customers together",
        "shared customers",
        "confidence",
    ]
    return pd.DataFrame(rows, columns=columns)


def candidate_labels(result: BundleResult) -> list[str]:
    """A short, unique label per candidate, in rank order (for a chooser)."""
    return [f"{rank}. " + " + ".join(short(n) for n in c.names) for rank, c in enumerate(result.candidates, start=1)]


def pair_matrix(
    con: duckdb.DuckDBPyConnection, result: BundleResult, metric: str = "lift", max_items: int = 12
) -> PairMatrix:
    """``metric`` between every two of the items of the strongest candidates (at most ``max_items``)."""
    if metric not in HEATMAP_METRICS:
        raise ValueError(f"metric must be one of {HEATMAP_METRICS}; found {metric!r}")
    chosen: list[str] = []
    for candidate in result.candidates:
        for item in candidate.items:
            if item not in chosen and len(chosen) < max_items:
                chosen.append(item)
    query = result.query
    encoded = copurchase.basket_items(con, result.dataset, query.level, query.segment)
    meta = encoded.items.set_index("item").loc[chosen] if chosen else encoded.items.head(0)
    if metric == "lift":
        keys = meta["k"].astype(int).tolist()
        together = itemsets.pair_counts_among(con, encoded, keys)
        n_item = encoded.item_baskets()
        by_pair = {
            frozenset((a, b)): t for a, b, t in zip(together["a"], together["b"], together["together"], strict=True)
        }
        values = [
            [
                math.nan
                if a == b or frozenset((a, b)) not in by_pair
                else by_pair[frozenset((a, b))] * encoded.baskets / (n_item[a] * n_item[b])
                for b in keys
            ]
            for a in keys
        ]
    else:
        model = load_complementarity(con, result.dataset, query.level)
        values = [[math.nan if a == b or model is None else _nan(model.coupling(a, b)) for b in chosen] for a in chosen]
    return PairMatrix(
        metric,
        tuple(chosen),
        _unique_labels(meta["name"].tolist(), chosen),
        tuple(tuple(float(v) for v in row) for row in values),
    )


def filter_options(con: duckdb.DuckDBPyConnection, dataset: str, department: str | None = None) -> FilterOptions:
    """Departments, the categories (of ``department`` when given) and customer segments."""
    with store.dataset_cursor(con, dataset) as cur:
        departments = tuple(r[0] for r in cur.execute(DEPARTMENTS).fetchall())
        categories = tuple(r[0] for r in cur.execute(CATEGORIES, {"department": department}).fetchall())
    return FilterOptions(departments, categories, tuple(copurchase.segment_options(con, dataset)))


def builder_items(
    con: duckdb.DuckDBPyConnection, dataset: str, level: str, segment: Segment | None = None, limit: int = 2000
) -> pd.DataFrame:
    """The ``limit`` most bought items at ``level`` (columns item, label, baskets) for the builder."""
    encoded = copurchase.basket_items(con, dataset, level, segment)
    items = encoded.items[encoded.items["baskets"] > 0].sort_values(["baskets", "item"], ascending=[False, True])
    items = items.head(limit)
    labels = [
        name if level == "category" else f"{short(name, 40)} ({item})"
        for name, item in zip(items["name"], items["item"], strict=True)
    ]
    return pd.DataFrame({"item": items["item"].tolist(), "label": labels, "baskets": items["baskets"].tolist()})


def short(name: str, length: int = LABEL_LENGTH) -> str:
    """``name`` cut to ``length`` characters with an ellipsis."""
    return name if len(name) <= length else name[: length - 1].rstrip() + "…"


def _unique_labels(names: list[str], items: list[str]) -> tuple[str, ...]:
    labels = [short(n) for n in names]
    return tuple(
        f"{label} ({item})" if labels.count(label) > 1 else label for label, item in zip(labels, items, strict=True)
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def priceable_candidates(con: duckdb.DuckDBPyConnection, dataset: str, top: int = 10) -> list[tuple[str, ...]]:
    """The top co-purchase candidates (by score) whose items the pricing run knows, for the Pricing
    studio's picker; none when the dataset cannot be ranked or priced."""
    try:
        result = find_bundles(con, dataset, BundleQuery(top=top, rank_by="score", margin_pool=0))
        known = {item.item_id for item in pricing_bundle.item_catalog(con, dataset)}
    except StudioError as exc:  # no baskets, no trained model
        log.info("no bundle candidates for %s: %s", dataset, exc)
        return []
    return [tuple(c.items) for c in result.candidates if set(c.items) <= known]
