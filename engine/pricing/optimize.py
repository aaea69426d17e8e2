"""The bundle price optimizer: ``optimize_price`` -> ``PriceDecision``.

Objective (over the horizon, versus selling the items separately at regular prices): margin
(default), revenue, or margin plus ``welfare_weight`` x consumer surplus. The price grid is
evaluated with vectorized arrays (``engine.pricing.grid``; coarse on a sample, then exactly on
every customer around the optimum, ``engine.pricing.search``); the decision's figures and bands
come from the same projection code as the what-if (``whatif.assemble_projection``).

When no price within the guardrails adds at least ``min_gain_pct`` % of the items' margin (or
revenue, for that objective), the decision says plainly: do not discount.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from engine.bounds import check_weeks, check_welfare_weight
from engine.errors import DataError
from engine.pricing import bundle as B
from engine.pricing import search, solver, strategies
from engine.pricing.guardrails import BindingConstraint, Guardrails, Strategy
from engine.pricing.vectorized import BundleDemand, load_demand
from engine.pricing.whatif import CLI_KEYS, DEFAULT_WEEKS, BundleProjection, assemble_projection
from engine.privacy import check_pricing_segment

log = logging.getLogger(__name__)

DEFAULT_WELFARE_WEIGHT = 0.5  # currency of margin per currency of consumer surplus
MIN_GAIN_PCT = 0.5  # a discount "pays" when it adds at least this % of the items' margin


@dataclass(frozen=True)
class PriceDecision:
    """The recommended bundle price(s), why, and how the alternatives compare."""

    dataset: str
    run_id: str
    items: tuple[B.BundleItem, ...]
    objective: str
    welfare_weight: float
    weeks: float
    guardrails: Guardrails
    segment: B.Segment
    prices: tuple[tuple[str, float], ...]  # segment -> recommended price (the sum of the parts: no discount)
    discount_pays: bool
    recommendation: str  # plain words
    objective_gain: float  # of the recommendation, vs no bundle, over the horizon
    binding_constraints: tuple[BindingConstraint, ...]
    strategies: tuple[Strategy, ...]
    projection: BundleProjection  # what-if figures (with bands) at the recommended price(s)
    evaluated_prices: int  # prices evaluated exactly on every customer

    @property
    def incremental_margin(self) -> float:
        """Incremental margin of the recommendation vs no bundle, over the horizon (0: no discount)."""
        return self.projection.total.figures["incremental_margin"].value if self.discount_pays else 0.0

    @property
    def price(self) -> float | dict[str, float]:
        if self.segment.attribute and not self.segment.value:
            return dict(self.prices)
        return self.prices[0][1]

    def strategy_table(self) -> pd.DataFrame:
        """The strategies side by side, one row each."""
        rows = []
        for strategy in self.strategies:
            prices = ", ".join(
                f"{segment}: " + ("no discount" if price is None else f"{price:.2f}")
                for segment, price in strategy.prices
            )
            if all(price is None for _, price in strategy.prices):
                prices = "no discount"
            if not strategy.deployable:
                prices = "each customer's own"
            rows.append(
                {
                    "strategy": strategy.name,
                    "deployable": strategy.deployable,
                    "prices": prices,
                    "objective_gain": strategy.objective_gain,
                    **strategy.figures,
                    "note": strategy.note,
                }
            )
        return pd.DataFrame(rows)

    def to_json(self) -> dict:
        """The CLI's ``optimize --json`` object."""
        projected = self.projection.to_json()
        out: dict[str, Any] = {
            "price": self.price,
            "discount_pays": self.discount_pays,
            "recommendation": self.recommendation,
        }
        out |= {key: projected[key] for key in (*CLI_KEYS, "consumer_surplus_per_buyer", "customers", "band")}
        out["binding_constraints"] = [b.to_json() for b in self.binding_constraints]
        out["strategies"] = [s.to_json() for s in self.strategies]
        out |= {
            "objective": self.objective,
            "objective_gain": self.objective_gain,
            "weeks": self.weeks,
            "sum_of_parts": self.projection.sum_of_parts,
            "guardrails": self.guardrails.to_json(),
            "dataset": self.dataset,
            "run": self.run_id,
            "items": [i.item_id for i in self.items],
            "segment": self.segment.label,
            "band_method": self.projection.band,
            "per_segment": projected["per_segment"],
            "evaluated_prices": self.evaluated_prices,
        }
        return out


def optimize_price(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    items: list[str],
    segment: B.Segment | str | None = None,
    objective: str = "margin",
    guardrails: Guardrails | None = None,
    weeks: float = DEFAULT_WEEKS,
    run: str | None = None,
    welfare_weight: float = DEFAULT_WELFARE_WEIGHT,
    min_gain_pct: float = MIN_GAIN_PCT,
    compare: bool = True,
) -> PriceDecision:
    """Recommend a bundle price (one, or one per value of ``segment``'s attribute).

    Parameters
    ----------
    segment : None (one price for everyone), ``"attribute"`` (a price per value), or
        ``"attribute=value"`` (one price for that segment only).
    objective : ``"margin"``, ``"revenue"`` or ``"welfare"`` (margin + welfare_weight x surplus).
    compare : also compare strategies (no bundle, one price, per segment, per customer). Without
        it the decision is several times cheaper: for ranking many candidate bundles.
    """
    if objective not in ("margin", "revenue", "welfare"):
        raise DataError(f"objective must be margin, revenue or welfare; found {objective!r}")
    weeks = check_weeks(weeks)
    check_welfare_weight(welfare_weight)
    segment = segment if isinstance(segment, B.Segment) else B.Segment.parse(segment)
    check_pricing_segment(con, segment.attribute)  # sensitive attributes need the analyst's consent
    guardrails = guardrails or Guardrails()
    per_segment = bool(segment.attribute) and segment.value is None
    attribute = segment.attribute or (B.default_segment_attribute(con, dataset) if compare else None)
    data = load_demand(con, dataset, items, B.Segment(attribute, segment.value) if attribute else B.Segment(), run)
    bundle = data.bundle
    base = guardrails.rules(bundle.sum_of_parts, bundle.bundle_cost)
    relaxed = guardrails.relaxations(bundle.sum_of_parts, bundle.bundle_cost)
    before = strategies.figures_at(data, None, weeks)
    baseline = before["revenue_before" if objective == "revenue" else "margin_before"]

    present = np.bincount(data.parameters.segment_code, minlength=data.n_segments) > 0
    if base.low > base.high - 0.01:
        return _infeasible(data, segment, objective, welfare_weight, weeks, guardrails, before)

    # Coarse search on a sample, then exact curves around the optima (see search.py): the
    # decision uses every customer; whether a guardrail binds is judged on the sample.
    index = search.sample_index(data.parameters.bucket, data.parameters.first)
    sample, sample_codes = data.demand.take(index), data.parameters.segment_code[index]
    scale = len(data.group) / len(index)
    variants = [base, *relaxed.values()]
    coarse_prices = search.coarse_grid(variants)
    coarse = search.evaluate(sample, coarse_prices, objective, welfare_weight, sample_codes, data.n_segments, scale)
    points = search.exact_points(coarse_prices, coarse, [base], weeks, search.exact_budget(len(data.group)))
    checks = np.union1d(points, search.exact_points(coarse_prices, coarse, variants, weeks, search.MAX_CHECK_POINTS))
    checked = search.evaluate(sample, checks, objective, welfare_weight, sample_codes, data.n_segments, scale)
    if len(index) == len(data.group):  # the sample is everyone: its curves are exact
        exact = checked
    else:
        exact = search.evaluate(
            data.demand, points, objective, welfare_weight, data.parameters.segment_code, data.n_segments
        )

    def choose(curves, rules: solver.Rules, by_segment: bool) -> solver.Choice:
        if by_segment:
            return solver.solve_segments(curves.prices, curves.gain, curves.units, rules, weeks, present)
        return solver.solve_one(curves.prices, curves.gain, curves.units, rules, weeks)

    choice = choose(exact, base, per_segment)
    tolerance = 1e-6 * abs(baseline) + 1e-9
    on_sample = choose(checked, base, per_segment).gain
    gains = {
        name: (choose(checked, rules, per_segment).gain - on_sample) * weeks
        for name, rules in relaxed.items()
        if per_segment or name != "max_segment_spread_pct"
    }
    binding = tuple(
        BindingConstraint(name, guardrails.describe(name, bundle.sum_of_parts, bundle.bundle_cost), gain)
        for name, gain in gains.items()
        if gain > tolerance
    )
    gain = choice.gain * weeks
    threshold = min_gain_pct / 100 * abs(baseline)
    pays = choice.discounts and gain >= threshold and gain > 0
    if not pays:  # then a guardrail "binds" only if dropping it would make a discount pay
        binding = tuple(b for b in binding if max(gain, 0.0) + b.gain_if_relaxed >= max(threshold, tolerance))
    recommended = np.where(np.isfinite(choice.prices) & pays, choice.prices, bundle.sum_of_parts)
    compared = (
        ()
        if not compare
        else strategies.compare(
            data,
            points,
            coarse_prices,
            sample,
            index,
            base,
            weeks,
            objective,
            welfare_weight,
            present,
            choose(exact, base, False),
            choose(exact, base, True) if present.sum() > 1 else None,
            before,
        )
    )
    projection = _projection(con, data, recommended, weeks, segment, run)
    text = strategies.recommendation(
        bundle, segment, objective, choice, pays, gain, baseline, weeks, binding, recommended, compared, threshold
    )
    return PriceDecision(
        dataset=dataset,
        run_id=bundle.run.run_id,
        items=bundle.items,
        objective=objective,
        welfare_weight=welfare_weight,
        weeks=float(weeks),
        guardrails=guardrails,
        segment=segment,
        prices=_price_pairs(data, recommended, per_segment),
        discount_pays=bool(pays),
        recommendation=text,
        objective_gain=float(gain if pays else 0.0),
        binding_constraints=binding,
        strategies=compared,
        projection=projection,
        evaluated_prices=len(exact.prices),
    )


def _projection(
    con: duckdb.DuckDBPyConnection,
    data: BundleDemand,
    prices: np.ndarray,
    weeks: float,
    segment: B.Segment,
    run: str | None,
) -> BundleProjection:
    """What-if figures with bands at the recommended prices, from the vectorized path."""
    bundle = data.bundle
    price_list = [float(p) for p in prices]
    members = [(data.sums_at(prices, weeks), data.without_bundle)]
    for member in bundle.ensemble[1:]:
        other = load_demand(con, bundle.dataset, bundle.item_ids, bundle.segment, member)
        members.append((other.sums_at(prices, weeks), other.without_bundle))
    return assemble_projection(bundle, price_list, members, weeks, show_segments=segment.attribute is not None)


def _price_pairs(data: BundleDemand, prices: np.ndarray, per_segment: bool) -> tuple[tuple[str, float], ...]:
    present = np.bincount(data.parameters.segment_code, minlength=data.n_segments) > 0
    pairs = tuple(
        (value, round(float(prices[k]), 2)) for k, value in enumerate(data.bundle.segment_values) if present[k]
    )
    if per_segment:
        return pairs
    label = data.bundle.segment.label if data.bundle.segment.value else B.ALL_CUSTOMERS
    return ((label, pairs[0][1]),)


def _infeasible(
    data: BundleDemand,
    segment: B.Segment,
    objective: str,
    weight: float,
    weeks: float,
    guardrails: Guardrails,
    before: dict[str, float],
) -> PriceDecision:
    """No price satisfies the guardrails: recommend no discount and name the conflicting rules."""
    bundle = data.bundle
    rules = [name for name in ("min_margin_pct", "max_discount_pct") if getattr(guardrails, name) is not None]
    details = "; ".join(guardrails.describe(name, bundle.sum_of_parts, bundle.bundle_cost) for name in rules)
    binding = tuple(
        BindingConstraint(name, guardrails.describe(name, bundle.sum_of_parts, bundle.bundle_cost), float("nan"))
        for name in rules
    )
    recommended = np.full(data.n_segments, bundle.sum_of_parts)
    text = (
        f"Do not offer this bundle: no price satisfies the guardrails ({details}) below the sum of the "
        f"parts {bundle.sum_of_parts:.2f}."
    )
    no_bundle = strategies.no_bundle(data, before)
    return PriceDecision(
        dataset=bundle.dataset,
        run_id=bundle.run.run_id,
        items=bundle.items,
        objective=objective,
        welfare_weight=weight,
        weeks=float(weeks),
        guardrails=guardrails,
        segment=segment,
        prices=_price_pairs(data, recommended, bool(segment.attribute) and segment.value is None),
        discount_pays=False,
        recommendation=text,
        objective_gain=0.0,
        binding_constraints=binding,
        strategies=(no_bundle,),
        projection=assemble_projection(
            bundle,
            list(recommended),
            [(data.sums_at(recommended, weeks), data.without_bundle)],
            weeks,
            show_segments=segment.attribute is not None,
        ),
        evaluated_prices=0,
    )
