"""Figures of a bundle over a range of prices (the what-if studio's curves), vectorized."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.pricing import bundle as B
from engine.pricing import figures as F
from engine.pricing.vectorized import load_demand
from engine.pricing.whatif import DEFAULT_WEEKS

CURVE_FIGURES = F.HEADLINE_FIGURES
DEFAULT_LOWEST_SHARE = 0.5  # curves start at half the sum of the parts


@dataclass(frozen=True)
class PriceCurve:
    """Whole-population figures (targeted customers) at each bundle price, over the horizon."""

    prices: tuple[float, ...]
    sum_of_parts: float
    bundle_cost: float
    weeks: float
    figures: dict[str, tuple[float, ...]]  # name (CURVE_FIGURES) -> value at each price

    def to_frame(self) -> pd.DataFrame:
        """One row per price: price, discount_pct and every figure."""
        frame = pd.DataFrame({"price": self.prices})
        frame["discount_pct"] = 100 * (1 - frame["price"] / self.sum_of_parts)
        for name, values in self.figures.items():
            frame[name] = values
        return frame


def price_curve(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    items: list[str],
    segment: B.Segment | str | None = None,
    weeks: float = DEFAULT_WEEKS,
    run: str | None = None,
    lowest: float | None = None,
    points: int = 41,
) -> PriceCurve:
    """Figures at ``points`` prices from ``lowest`` (default half the sum of the parts) to one cent
    below the sum (at the sum itself the bundle is no offer and every figure is the no-bundle one).

    With ``segment`` "attribute=value" the curve covers that segment; otherwise everyone.
    """
    if not 2 <= points <= 1000:
        raise DataError(f"a price curve needs 2 to 1000 points; found {points}")
    segment = segment if isinstance(segment, B.Segment) else B.Segment.parse(segment)
    data = load_demand(con, dataset, items, B.Segment(segment.attribute, segment.value) if segment.value else None, run)
    parts = data.bundle.sum_of_parts
    low = DEFAULT_LOWEST_SHARE * parts if lowest is None else float(lowest)
    if not 0 < low < parts:
        raise DataError(f"the lowest curve price must be between 0 and the sum of the parts {parts:.2f}; found {low}")
    prices = np.round(np.linspace(low, parts - 0.01, points), 2)  # (G,)
    before = data.without_bundle.sum(axis=(0, 1))  # (F,)
    after = np.stack([data.sums(p, weeks).sum(axis=(0, 1)) for p in prices])  # (G, F)
    derived = F.derive(
        after, np.broadcast_to(before, after.shape), weeks, data.parameters.prices, data.parameters.costs
    )
    return PriceCurve(
        prices=tuple(float(p) for p in prices),
        sum_of_parts=parts,
        bundle_cost=data.bundle.bundle_cost,
        weeks=float(weeks),
        figures={name: tuple(float(v) for v in derived[name]) for name in CURVE_FIGURES},
    )
