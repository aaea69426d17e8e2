"""Objective curves over a grid of bundle prices, vectorized over customers (the optimizer's engine).

For every customer h and grid price p (both on the factorized demand of
``engine.pricing.demand``), the objective gain per week versus no bundle is::

    margin   trips_h * [ (M_h + w_h(p) (p - cost_S)) / (Z_h + w_h(p)) - (M_h + e_h m_S) / (Z_h + e_h) ]
    revenue  trips_h * [ (R_h + w_h(p) p) / (Z_h + w_h(p))            - (R_h + e_h s_S) / (Z_h + e_h) ]
    welfare  margin + weight * trips_h * [ ln(Z_h + w_h(p)) - ln(Z_h + e_h) ] / b_h

with ``w_h(p) = e_h exp(b_h (s_S - p))`` (Z, M, R: weight, margin and revenue of the other subsets;
e: the full set's weight; s_S, m_S: its price and margin at regular prices). Customers are
processed in chunks so the (customers x prices) matrix never gets large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import DataError
from engine.pricing.demand import FactorizedDemand, bundle_offered

OBJECTIVES = ("margin", "revenue", "welfare")
CHUNK = 4_096  # customers per block: (CHUNK x prices) float64 temporaries stay in the CPU cache


@dataclass(frozen=True)
class Curves:
    """Objective gain and bundle units per week, per group of customers and grid price."""

    prices: np.ndarray  # (G,)
    gain: np.ndarray  # (n_groups, G) objective gain vs no bundle, per week
    units: np.ndarray  # (n_groups, G) bundle units per week


def parse_endings(endings: tuple[str, ...] | list[str]) -> tuple[int, ...]:
    """Price endings as cents: ``(".99", "0.49", "00")`` -> ``(99, 49, 0)``."""
    cents = []
    for text in endings:
        raw = str(text).strip()
        digits = raw.split(".")[-1] if "." in raw else raw
        if not digits.isdigit() or len(digits) > 2 or ("." in raw and raw.split(".")[0] not in ("", "0")):
            raise DataError(f"a price ending is two digits after the point, like .99 or .49; found {text!r}")
        cents.append(int(digits.ljust(2, "0")))
    return tuple(sorted(set(cents)))


def candidate_prices(low: float, high: float, endings: tuple[int, ...] = ()) -> np.ndarray:
    """Allowed bundle prices in [low, high], ascending: whole cents, or only the given endings."""
    low_cents, high_cents = int(np.ceil(round(low * 100, 6))), int(np.floor(round(high * 100, 6)))
    if high_cents < max(low_cents, 1):
        return np.zeros(0)
    cents = np.arange(max(low_cents, 1), high_cents + 1)
    if endings:
        cents = cents[np.isin(cents % 100, endings)]
    return cents / 100.0


def gain_matrix(
    demand: FactorizedDemand, prices: np.ndarray, objective: str, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Objective gain and bundle units per week, for each customer at each price: (H, G) twice."""
    if objective not in OBJECTIVES:
        raise DataError(f"objective must be one of {', '.join(OBJECTIVES)}; found {objective!r}")
    s, cost = demand.sum_of_parts, demand.bundle_cost
    e, z = demand.full_weight[:, None], demand.rest_weight[:, None]  # (H, 1)
    b, trips = demand.price_coefficient[:, None], demand.trips_per_week[:, None]  # (H, 1)
    on = bundle_offered(prices, s)  # (G,)
    discount = np.where(on, s - prices, 0.0)[None, :]  # (1, G)
    w = np.exp(b * discount)
    w *= e  # (H, G) full-set weight
    inv = z + w
    np.reciprocal(inv, out=inv)  # (H, G) 1 / sum of weights
    share = w * inv  # (H, G) P(bundle)
    if objective == "revenue":
        rest, full_value, unit_value = demand.rest_revenue[:, None], s, prices[None, :]
    else:
        rest, full_value, unit_value = demand.rest_margin[:, None], s - cost, prices[None, :] - cost
    gain = rest * inv
    gain += share * unit_value
    gain -= (rest + e * full_value) / (z + e)  # no-bundle value, (H, 1)
    if objective == "welfare":
        gain -= weight * np.log(inv * (z + e)) / b  # + weight * surplus
    gain *= trips
    share *= trips
    gain[:, ~on] = 0.0  # at the sum of the parts the bundle is no offer
    share[:, ~on] = 0.0
    return gain, share


def curves(
    demand: FactorizedDemand, prices: np.ndarray, objective: str, weight: float, group: np.ndarray, n_groups: int
) -> Curves:
    """Sum the per-customer gain and bundle units into groups (``group`` sorted ascending)."""
    prices = np.asarray(prices, dtype=np.float64)
    gain = np.zeros((n_groups, len(prices)))
    units = np.zeros((n_groups, len(prices)))
    for start in range(0, len(group), CHUNK):
        block = slice(start, start + CHUNK)
        block_gain, block_units = gain_matrix(demand.take(block), prices, objective, weight)
        _add_by_group(gain, block_gain, group[block])
        _add_by_group(units, block_units, group[block])
    return Curves(prices, gain, units)


def best_per_customer(
    demand: FactorizedDemand, prices: np.ndarray, objective: str, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's own best price among ``prices`` and its gain per week, on every row of the
    customer: (R,), (R,) (the gain on the customer's first row, 0 on its other rows).

    The gain of a customer is summed over its replayed trips. A customer whose best gain is not
    positive gets no bundle (price ``nan``, gain 0).
    """
    rows = len(demand.full_weight)
    best_price = np.full(rows, np.nan)
    best_gain = np.zeros(rows)
    bounds = np.append(np.flatnonzero(demand.first), rows)  # (H + 1,) each customer's rows: bounds[c]:bounds[c+1]
    for first in range(0, len(bounds) - 1, CHUNK):  # CHUNK whole customers at a time
        edges = bounds[first : first + CHUNK + 1]  # (C + 1,)
        block = slice(edges[0], edges[-1])
        gain, _ = gain_matrix(demand.take(block), prices, objective, weight)  # (rows in block, G)
        customer_gain = np.add.reduceat(gain, edges[:-1] - edges[0], axis=0)  # (C, G)
        k = customer_gain.argmax(axis=1)
        top = customer_gain[np.arange(len(k)), k]  # (C,)
        best_price[block] = np.repeat(np.where(top > 0, prices[k], np.nan), np.diff(edges))
        best_gain[edges[:-1]] = np.maximum(top, 0.0)
    return best_price, best_gain


def _add_by_group(total: np.ndarray, values: np.ndarray, codes: np.ndarray) -> None:
    """total[g] += sum of the rows of ``values`` whose (sorted) code is g."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(codes)) + 1])  # first row of each run of codes
    total[codes[starts]] += np.add.reduceat(values, starts, axis=0)
