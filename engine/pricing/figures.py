"""Analyst figures from the additive raw sums of ``engine.pricing.demand.RAW_FIELDS``.

One function, ``derive``, turns raw sums (with the bundle, and without it) into every figure
the studio shows, for any leading shape: one group, segments, bootstrap replicates, ensemble
members. The SQL path and the vectorized path both end here, so a figure is defined once.

Horizon scaling: raw sums are per week (each customer's expected trips per week); figures are
over ``weeks`` weeks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.pricing.demand import FIELD

# The headline figures of a bundle projection, in the order every table, curve, scenario and
# CLI object lists them (one place: the what-if JSON, the strategies, the curves and scenarios).
HEADLINE_FIGURES = (
    "take_rate",
    "bundle_units",
    "revenue",
    "margin",
    "incremental_revenue",
    "incremental_margin",
    "cannibalized_revenue",
    "consumer_surplus_change",
    "share_better_off",
)

# Figure name -> plain-language label (the CLI keys are the names).
FIGURE_LABELS: dict[str, str] = {
    "take_rate": "Bundle take rate (share of trips)",
    "bundle_units": "Bundle units",
    "bundle_buyers": "Bundle buyers",
    "revenue": "Revenue of the items, with bundle",
    "margin": "Margin of the items, with bundle",
    "revenue_before": "Revenue of the items, no bundle",
    "margin_before": "Margin of the items, no bundle",
    "bundle_revenue": "Bundle revenue",
    "bundle_margin": "Bundle margin",
    "incremental_revenue": "Incremental revenue vs no bundle",
    "incremental_margin": "Incremental margin vs no bundle",
    "cannibalized_revenue": "Cannibalized stand-alone revenue",
    "consumer_surplus_change": "Consumer surplus change",
    "consumer_surplus_per_buyer": "Consumer surplus change per buyer",
    "share_better_off": "Share of customers better off",
}
FIGURES: tuple[str, ...] = tuple(FIGURE_LABELS)


def derive(
    after: np.ndarray, before: np.ndarray, weeks: float, prices: np.ndarray, costs: np.ndarray
) -> dict[str, np.ndarray]:
    """Every figure, and the per-item units, from raw sums.

    Parameters
    ----------
    after : (..., F) raw sums with the bundle offered.
    before : (..., F) raw sums with no bundle (same customers).
    weeks : horizon in weeks.
    prices, costs : (n,) regular prices and unit costs of the bundle's items.

    Returns
    -------
    name -> (...) array for each of ``FIGURES``, plus ``customers``, ``units_before`` and
    ``units_after`` (..., n) stand-alone units of each item.
    """
    n = len(prices)
    sum_price, sum_cost = float(np.sum(prices)), float(np.sum(costs))

    def get(raw: np.ndarray, name: str) -> np.ndarray:
        return raw[..., FIELD[name]]

    def standalone(raw: np.ndarray, field: str, full_value: float) -> np.ndarray:
        return weeks * (get(raw, field) + get(raw, "separate_full_share") * full_value)

    bundle_units = weeks * get(after, "bundle_share")
    bundle_revenue = weeks * get(after, "bundle_revenue")
    bundle_margin = bundle_revenue - sum_cost * bundle_units
    standalone_revenue_after = standalone(after, "rest_revenue", sum_price)
    standalone_revenue_before = standalone(before, "rest_revenue", sum_price)
    revenue = bundle_revenue + standalone_revenue_after
    margin = bundle_margin + standalone(after, "rest_margin", sum_price - sum_cost)
    revenue_before = standalone_revenue_before
    margin_before = standalone(before, "rest_margin", sum_price - sum_cost)
    surplus = weeks * get(after, "surplus")
    buyers = get(after, "buyers")
    customers = get(after, "customers")
    trips = weeks * get(after, "trips")
    rest_units = [f"rest_units_{k + 1}" for k in range(n)]
    units_after = weeks * (after[..., [FIELD[f] for f in rest_units]] + get(after, "separate_full_share")[..., None])
    units_before = weeks * (before[..., [FIELD[f] for f in rest_units]] + get(before, "separate_full_share")[..., None])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "take_rate": _ratio(bundle_units, trips),
            "bundle_units": bundle_units,
            "bundle_buyers": buyers,
            "revenue": revenue,
            "margin": margin,
            "revenue_before": revenue_before,
            "margin_before": margin_before,
            "bundle_revenue": bundle_revenue,
            "bundle_margin": bundle_margin,
            "incremental_revenue": revenue - revenue_before,
            "incremental_margin": margin - margin_before,
            "cannibalized_revenue": standalone_revenue_before - standalone_revenue_after,
            "consumer_surplus_change": surplus,
            "consumer_surplus_per_buyer": _ratio(surplus, buyers),
            "share_better_off": _ratio(get(after, "better_off"), customers),
            "customers": customers,
            "units_before": units_before,
            "units_after": units_after,
        }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), 0.0)


@dataclass(frozen=True)
class Figure:
    """A projected figure with its uncertainty band (``low <= value <= high``)."""

    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class ItemUnits:
    """Stand-alone units of one item of the bundle, without and with the bundle."""

    item_id: str
    name: str
    regular_price: float
    units_before: Figure
    units_after: Figure

    @property
    def cannibalized_units(self) -> float:
        return self.units_before.value - self.units_after.value

    @property
    def cannibalized_revenue(self) -> float:
        return self.cannibalized_units * self.regular_price


@dataclass(frozen=True)
class BundleFigures:
    """Every figure of a projection for one group of customers (a segment or everyone)."""

    segment: str
    customers: int
    price: float | None  # the bundle price this group sees (None: several)
    figures: dict[str, Figure]  # name (FIGURES) -> figure with band
    items: tuple[ItemUnits, ...]

    def __getattr__(self, name: str) -> Figure:
        # take_rate, margin, ... read as attributes; dataclass fields are found before this.
        figures = self.__dict__.get("figures", {})
        if name in figures:
            return figures[name]
        raise AttributeError(name)
