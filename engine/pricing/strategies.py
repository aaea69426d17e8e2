"""Strategy comparison and the plain-language recommendation of the optimizer.

Strategies, side by side, each against selling the items separately at regular prices:

- no bundle (component prices only);
- one bundle price for everyone (within the guardrails);
- a price per segment (within the guardrails, spread limit included);
- a price per customer: a theoretical upper bound, flagged as not deployable.
"""

from __future__ import annotations

import numpy as np

from engine.pricing import figures as F
from engine.pricing import grid, solver
from engine.pricing.bundle import ALL_CUSTOMERS, Bundle, Segment
from engine.pricing.demand import FactorizedDemand
from engine.pricing.guardrails import BindingConstraint, Strategy
from engine.pricing.vectorized import BundleDemand

SHOWN = F.HEADLINE_FIGURES


def figures_at(data: BundleDemand, segment_prices: np.ndarray | None, weeks: float) -> dict[str, float]:
    """Whole-population figures at a price per segment (``nan``, or None for all: no bundle)."""
    prices = np.full(data.n_segments, np.nan) if segment_prices is None else segment_prices
    after = data.sums_at(prices, weeks).sum(axis=(0, 1))
    return _derive(data, after, data.without_bundle.sum(axis=(0, 1)), weeks)


def figures_per_customer(
    data: BundleDemand, index: np.ndarray, customer_prices: np.ndarray, weeks: float
) -> dict[str, float]:
    """Figures with customer ``index[k]`` at ``customer_prices[k]`` (``nan``: no bundle), scaled
    from those customers to everyone."""
    demand: FactorizedDemand = data.demand.take(index)
    scale = len(data.group) / len(index)
    off = data.bundle.sum_of_parts + 1.0
    after = demand.per_customer(np.where(np.isfinite(customer_prices), customer_prices, off), weeks).sum(axis=0)
    before = demand.per_customer(off, 1.0).sum(axis=0)
    return _derive(data, after * scale, before * scale, weeks)


def _derive(data: BundleDemand, after: np.ndarray, before: np.ndarray, weeks: float) -> dict[str, float]:
    derived = F.derive(after, before, weeks, data.parameters.prices, data.parameters.costs)
    return {name: float(value) for name, value in derived.items() if np.ndim(value) == 0}


def objective_value(figures: dict[str, float], objective: str, weight: float) -> float:
    """The objective's gain vs no bundle from a strategy's figures."""
    if objective == "revenue":
        return figures["incremental_revenue"]
    if objective == "welfare":
        return figures["incremental_margin"] + weight * figures["consumer_surplus_change"]
    return figures["incremental_margin"]


def no_bundle(data: BundleDemand, before: dict[str, float]) -> Strategy:
    return Strategy(
        "No bundle",
        True,
        ((ALL_CUSTOMERS, None),),
        0.0,
        {k: before[k] for k in SHOWN},
        "Items at their regular prices only.",
    )


def compare(
    data: BundleDemand,
    points: np.ndarray,
    coarse_prices: np.ndarray,
    sample: FactorizedDemand,
    index: np.ndarray,
    rules: solver.Rules,
    weeks: float,
    objective: str,
    weight: float,
    present: np.ndarray,
    one: solver.Choice,
    per_segment: solver.Choice | None,
    before: dict[str, float],
) -> tuple[Strategy, ...]:
    """The four strategies with their figures (whole population)."""
    values = data.bundle.segment_values
    out = [no_bundle(data, before)]
    one_price = float(one.prices[0]) if one.discounts else None
    figs = figures_at(data, one.prices, weeks)
    out.append(
        Strategy(
            "One price for everyone",
            True,
            ((ALL_CUSTOMERS, one_price),),
            objective_value(figs, objective, weight),
            {k: figs[k] for k in SHOWN},
            "Best single bundle price within the guardrails."
            if one_price
            else "No single price within the guardrails beats selling the items separately.",
        )
    )
    if per_segment is not None:
        figs = figures_at(data, per_segment.prices, weeks)
        prices = tuple(
            (values[k], None if not np.isfinite(p) else float(p))
            for k, p in enumerate(per_segment.prices)
            if present[k]
        )
        attribute = data.bundle.segment.attribute
        out.append(
            Strategy(
                f"Per-segment prices (by {attribute})",
                True,
                prices,
                objective_value(figs, objective, weight),
                {k: figs[k] for k in SHOWN},
                "Best price per segment within the guardrails, spread limit included.",
            )
        )
    candidates = np.union1d(coarse_prices, points[solver.allowed(points, rules)])
    feasible = candidates[(candidates >= rules.low - 1e-9) & (candidates < rules.high)]
    if len(feasible):
        best_price, _ = grid.best_per_customer(sample, feasible, objective, weight)
        figs = figures_per_customer(data, index, best_price, weeks)
        sampled = len(index) < len(data.group)
        note = (
            "Theoretical upper bound, NOT deployable: every customer gets their own best price within the "
            "price bounds (no stock or spread limit; needs perfect knowledge of each customer; individual "
            "prices may be unlawful or unfair)."
        )
        if sampled:
            note += f" Estimated from a random sample of {len(index):,} customers."
        out.append(
            Strategy(
                "Per-customer prices",
                False,
                ((ALL_CUSTOMERS, None),),
                objective_value(figs, objective, weight),
                {k: figs[k] for k in SHOWN},
                note,
            )
        )
    return tuple(out)


def recommendation(
    bundle: Bundle,
    segment: Segment,
    objective: str,
    choice: solver.Choice,
    pays: bool,
    gain: float,
    baseline: float,
    weeks: float,
    binding: tuple[BindingConstraint, ...],
    recommended: np.ndarray,
    compared: tuple[Strategy, ...],
    threshold: float,
) -> str:
    """The decision in plain words."""
    noun = {"margin": "margin", "revenue": "revenue", "welfare": "margin plus weighted consumer surplus"}[objective]
    horizon = f"over {weeks:g} weeks"
    parts = bundle.sum_of_parts
    if not pays:
        if choice.discounts and gain > 0:
            best = np.nanmin(choice.prices)
            text = (
                f"Do not discount: the best bundle price within the guardrails ({best:.2f}) adds only "
                f"{gain:,.2f} of {noun} {horizon} ({100 * gain / max(abs(baseline), 1e-9):.2f}% of the items' "
                f"{'revenue' if objective == 'revenue' else 'margin'}), too little to be worth a bundle. "
                f"Keep selling the items separately (sum of the parts {parts:.2f})."
            )
        else:
            text = (
                f"Do not discount: no bundle price within the guardrails raises {noun} over selling the items "
                f"separately at their regular prices (sum of the parts {parts:.2f})."
            )
        better = [
            s
            for s in compared
            if s.deployable and s.objective_gain >= max(threshold, gain, 0) + 1e-9 and s.name.startswith("Per-segment")
        ]
        if better and not (segment.attribute and segment.value is None):
            text += f" Per-segment prices would add {better[0].objective_gain:,.2f} (see the strategy comparison)."
    else:
        discounted = recommended[np.isfinite(recommended) & (recommended < parts)]
        if segment.attribute and segment.value is None:
            listing = ", ".join(
                f"{v}: {p:.2f}" for v, p in zip(bundle.segment_values, recommended, strict=True) if np.isfinite(p)
            )
            text = f"Offer per-segment bundle prices ({listing}; sum of the parts {parts:.2f})"
        else:
            price = float(discounted[0])
            off = 100 * (1 - price / parts)
            text = f"Offer the bundle at {price:.2f} ({off:.0f}% off the sum of the parts {parts:.2f})"
        text += f": +{gain:,.2f} of {noun} {horizon} versus selling the items separately."
    if binding:
        text += " Binding: " + "; ".join(_binding_words(b) for b in binding) + "."
    return text


def _binding_words(binding: BindingConstraint) -> str:
    if np.isfinite(binding.gain_if_relaxed):
        return f"{binding.detail} (dropping it would add {binding.gain_if_relaxed:,.2f})"
    return binding.detail
