"""What-if projection of a bundle at a price: ``project_bundle`` -> ``BundleProjection``.

The projection runs as DuckDB queries over the exported parameters (``engine.pricing.query``):
the per-customer subset sums are cached per (run, items, segment), so moving the price only
re-aggregates. Every figure carries a band (``engine.pricing.uncertainty``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import duckdb
import numpy as np
import pandas as pd

from engine.bounds import check_price, check_weeks
from engine.errors import DataError
from engine.pricing import bundle as B
from engine.pricing import figures as F
from engine.pricing import query, uncertainty
from engine.privacy import check_pricing_segment

log = logging.getLogger(__name__)

DEFAULT_WEEKS = 4.0  # horizon of a typical bundle promotion
CLI_KEYS = F.HEADLINE_FIGURES


@dataclass(frozen=True)
class BundleProjection:
    """Projected figures of a bundle at a price, for the targeted customers and per segment."""

    dataset: str
    run_id: str
    items: tuple[B.BundleItem, ...]
    segment: B.Segment
    prices: tuple[tuple[str, float], ...]  # (segment value, bundle price); one pair when one price
    sum_of_parts: float
    bundle_cost: float
    weeks: float
    band: str  # where the bands come from, in plain words
    total: F.BundleFigures  # every targeted customer
    segments: tuple[F.BundleFigures, ...]  # per value of the segment attribute (empty: none asked)

    @property
    def price(self) -> float | dict[str, float]:
        values = {price for _, price in self.prices}
        return self.prices[0][1] if len(values) == 1 else dict(self.prices)

    def to_json(self) -> dict:
        """The CLI's ``whatif --json`` object."""
        total = self.total
        result: dict = {"price": self.price, "sum_of_parts": self.sum_of_parts, "weeks": self.weeks}
        result |= {key: total.figures[key].value for key in CLI_KEYS}
        result["consumer_surplus_per_buyer"] = total.figures["consumer_surplus_per_buyer"].value
        result["customers"] = total.customers
        result["band"] = {key: {"low": f.low, "high": f.high} for key, f in total.figures.items()}
        result |= {
            "dataset": self.dataset,
            "run": self.run_id,
            "items": [i.item_id for i in self.items],
            "segment": self.segment.label,
            "band_method": self.band,
        }
        result["per_segment"] = [_segment_json(s) for s in self.segments]
        result["item_units"] = [
            {
                "item_id": u.item_id,
                "name": u.name,
                "units_before": u.units_before.value,
                "units_after": u.units_after.value,
                "cannibalized_revenue": u.cannibalized_revenue,
            }
            for u in total.items
        ]
        return result

    def segment_table(self) -> pd.DataFrame:
        """One row per segment (and the total): the main figures with their bands."""
        rows = []
        for group in (*self.segments, self.total):
            row = {"segment": group.segment, "customers": group.customers, "price": group.price}
            for key in (
                "take_rate",
                "bundle_units",
                "incremental_revenue",
                "incremental_margin",
                "cannibalized_revenue",
                "consumer_surplus_change",
                "share_better_off",
            ):
                fig = group.figures[key]
                row[key] = fig.value
                row[key + "_low"], row[key + "_high"] = fig.low, fig.high
            rows.append(row)
        return pd.DataFrame(rows)

    def item_table(self) -> pd.DataFrame:
        """Item-level cannibalization: stand-alone units of each item without and with the bundle."""
        return pd.DataFrame(
            [
                {
                    "item_id": u.item_id,
                    "name": u.name,
                    "regular_price": u.regular_price,
                    "units_no_bundle": u.units_before.value,
                    "units_with_bundle": u.units_after.value,
                    "units_moved": u.cannibalized_units,
                    "revenue_moved": u.cannibalized_revenue,
                }
                for u in self.total.items
            ]
        )


def project_bundle(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    items: list[str],
    price: float | Mapping[str, float],
    segment: B.Segment | str | None = None,
    weeks: float = DEFAULT_WEEKS,
    run: str | None = None,
    resamples: int = uncertainty.BOOTSTRAP_RESAMPLES,
) -> BundleProjection:
    """Project a bundle of ``items`` at ``price`` over the customers of ``dataset``.

    Parameters
    ----------
    price : one bundle price, or a price per value of the segment attribute.
    segment : ``None`` (everyone), ``"attribute"`` (figures per value), ``"attribute=value"``
        (only that segment), or a ``Segment``.
    weeks : horizon; each customer's expected trips per week times ``weeks``.
    run : model run (default: the latest trained run, else the truth of a synthetic market).
    """
    weeks = check_weeks(weeks)
    segment = segment if isinstance(segment, B.Segment) else B.Segment.parse(segment)
    if segment.value is not None or isinstance(price, Mapping):  # priced by segment: consent for personal data
        check_pricing_segment(con, segment.attribute)
    bundle = B.open_bundle(con, dataset, items, segment, run)
    prices = segment_prices(bundle, price)
    n_seg = len(bundle.segment_values)

    def sums(run_id: str) -> tuple[np.ndarray, np.ndarray]:
        table = query.cached_table(con, bundle, run_id)
        n_items = len(bundle.items)
        return (
            query.aggregate(con, table, bundle.sum_of_parts, prices, weeks, n_seg, n_items),
            query.aggregate_without_bundle(con, table, bundle.sum_of_parts, n_seg, n_items),
        )

    members = [sums(run_id) for run_id in bundle.ensemble]  # the chosen run first
    return assemble_projection(bundle, prices, members, weeks, segment.attribute is not None, resamples)


def assemble_projection(
    bundle: B.Bundle,
    prices: list[float],
    members: list[tuple[np.ndarray, np.ndarray]],
    weeks: float,
    show_segments: bool,
    resamples: int = uncertainty.BOOTSTRAP_RESAMPLES,
) -> BundleProjection:
    """A projection from raw sums (S, BUCKETS, F) with and without the bundle, per ensemble member.

    ``members[0]`` is the chosen run; with more than one member, bands span the ensemble, else they
    come from a bootstrap of customer buckets. Both projection paths (SQL, vectorized) end here.
    """
    derive = partial(
        F.derive, weeks=weeks, prices=_item_array(bundle, "regular_price"), costs=_item_array(bundle, "unit_cost")
    )
    after, before = members[0]
    if len(members) > 1:

        def figures_of(pair: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
            return derive(_with_total(pair[0].sum(axis=1)), _with_total(pair[1].sum(axis=1)))

        point = figures_of(members[0])
        bands, source = uncertainty.bands_from_members(point, [figures_of(m) for m in members])
    else:
        point, bands, source = uncertainty.bands_from_buckets(after, before, derive, resamples)
    n_seg = len(bundle.segment_values)
    groups = [_group(bundle, point, bands, g, prices) for g in range(n_seg + 1)]
    present = [g for g in groups[:-1] if g.customers > 0]
    shown = tuple((value, prices[k]) for k, value in enumerate(bundle.segment_values) if groups[k].customers > 0)
    if not show_segments and len({price for _, price in shown}) == 1:
        shown = ((groups[-1].segment, shown[0][1]),)  # one price for everyone targeted
    return BundleProjection(
        dataset=bundle.dataset,
        run_id=bundle.run.run_id,
        items=bundle.items,
        segment=bundle.segment if show_segments else B.Segment(),
        prices=shown,
        sum_of_parts=bundle.sum_of_parts,
        bundle_cost=bundle.bundle_cost,
        weeks=float(weeks),
        band=source.label,
        total=groups[-1],
        segments=tuple(present) if show_segments else (),
    )


def segment_prices(bundle: B.Bundle, price: float | Mapping[str, float]) -> list[float]:
    """Bundle price per segment code; one price for all, or a mapping segment value -> price."""
    if isinstance(price, Mapping):
        missing = [v for v in bundle.segment_values if v not in price]
        unknown = [k for k in price if k not in bundle.segment_values]
        if unknown or (missing and bundle.segment.value is None):
            raise DataError(
                f"prices per segment must name each of {', '.join(bundle.segment_values)}; "
                f"found {', '.join(map(str, price)) or 'none'}"
            )
        values = [float(price.get(v, np.nan)) for v in bundle.segment_values]
    else:
        values = [float(price)] * len(bundle.segment_values)
    checked = [v for v in values if v == v]
    if not checked or min(checked) <= 0:
        raise DataError(f"a bundle price must be a positive amount; found {price}")
    given = price.items() if isinstance(price, Mapping) else [(None, price)]
    for value, amount in given:  # finite, and at most bounds.MAX_PRICE_MULTIPLE x the sum of the parts
        check_price(amount, bundle.sum_of_parts, "a bundle price" if value is None else f"the bundle price for {value}")
    return [v if v == v else bundle.sum_of_parts + 1.0 for v in values]


def _with_total(sums: np.ndarray) -> np.ndarray:
    return np.concatenate([sums, sums.sum(axis=0, keepdims=True)])


def _item_array(bundle: B.Bundle, field: str) -> np.ndarray:
    return np.array([getattr(item, field) for item in bundle.items])


def _group(bundle: B.Bundle, point: dict, bands: dict, g: int, prices: list[float]) -> F.BundleFigures:
    def figure(name: str, *index: int) -> F.Figure:
        low, high = bands[name]
        at = (g, *index)
        return F.Figure(float(point[name][at]), float(low[at]), float(high[at]))

    is_total = g == len(bundle.segment_values)
    if is_total:
        label = bundle.segment.label if bundle.segment.value else B.ALL_CUSTOMERS
    else:
        label = bundle.segment_values[g]
    if is_total:
        shown = {p for k, p in enumerate(prices) if point["customers"][k] > 0}
        price = shown.pop() if len(shown) == 1 else None
    else:
        price = prices[g]
    items = tuple(
        F.ItemUnits(item.item_id, item.name, item.regular_price, figure("units_before", k), figure("units_after", k))
        for k, item in enumerate(bundle.items)
    )
    return F.BundleFigures(
        segment=label,
        customers=int(round(float(point["customers"][g]))),
        price=price,
        figures={name: figure(name) for name in F.FIGURES},
        items=items,
    )


def _segment_json(group: F.BundleFigures) -> dict:
    out = {"segment": group.segment, "customers": group.customers, "price": group.price}
    out |= {key: group.figures[key].value for key in CLI_KEYS}
    out["band"] = {key: {"low": group.figures[key].low, "high": group.figures[key].high} for key in CLI_KEYS}
    return out
