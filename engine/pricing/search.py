"""Where to evaluate the objective exactly: coarse search on a sample, then brackets of candidates.

1. A coarse grid over the widest price range any (relaxed) rule allows, evaluated on a random
   sample of customers (everyone when there are few), gives each group's approximate optimum.
2. Around each coarse optimum, the allowed prices (whole cents, or the allowed endings) inside
   the neighbouring grid cells form a bracket. The brackets of all groups and rule variants are
   merged, nearest-to-optimum first, into at most ``max_points`` prices.
3. Those prices are evaluated exactly on every customer (``grid.curves``); decisions are taken
   on the exact values only.
"""

from __future__ import annotations

import numpy as np

from engine.pricing import grid, solver
from engine.pricing.demand import FactorizedDemand
from engine.pricing.params import BUCKETS

COARSE_POINTS = 64
SAMPLE = 100_000  # customers in the coarse stage (all when fewer)
EXACT_ELEMENTS = 12_000_000  # budget of customer x price evaluations in the exact stage
MAX_EXACT_POINTS = 48  # prices evaluated on every customer (around the optimum of each segment), at most
MAX_CHECK_POINTS = 48  # prices evaluated on the sample to tell which guardrails bind


def exact_budget(n_customers: int) -> int:
    """How many prices the exact stage evaluates on every customer: fewer when there are many."""
    return int(np.clip(EXACT_ELEMENTS // max(n_customers, 1), 12, MAX_EXACT_POINTS))


def sample_index(bucket: np.ndarray, first: np.ndarray, size: int | None = None) -> np.ndarray:
    """Row indexes for the coarse stage: the replayed trips of every customer whose hash bucket is
    below a cut that keeps about ``size`` (default ``SAMPLE``) customers; everyone when there are no
    more than that. ``bucket`` and ``first`` (the customer's first row) are per row.

    Buckets come from a hash of the customer id, so the sample is random, keeps whole customers,
    and is the same whatever order the database returns customers in (the search is reproducible).
    """
    size = SAMPLE if size is None else size
    customers = int(first.sum())
    if customers <= size:
        return np.arange(len(bucket))
    cut = int(np.ceil(BUCKETS * size / customers))
    return np.flatnonzero(bucket < cut)


def coarse_grid(variants: list[solver.Rules]) -> np.ndarray:
    """Evenly spaced prices (whole cents) from the lowest allowed low to the sum of the parts."""
    low = min(v.low for v in variants)
    high = variants[0].high
    return np.unique(np.round(np.linspace(low, high, COARSE_POINTS), 2))


def exact_points(
    coarse_prices: np.ndarray,
    coarse: grid.Curves,
    variants: list[solver.Rules],
    weeks: float,
    max_points: int = MAX_EXACT_POINTS,
) -> np.ndarray:
    """Prices to evaluate exactly: brackets around every group's and variant's coarse optimum.

    Parameters
    ----------
    coarse_prices : (G,) coarse grid.
    coarse : curves on the coarse grid (gain and units per group, per week, sample-scaled).
    variants : rule sets (the guardrails and each relaxation).
    """
    rows = np.vstack([coarse.gain.sum(axis=0, keepdims=True), coarse.gain])  # (1 + S, G) total first
    units = coarse.units.sum(axis=0)  # (G,)
    brackets: list[np.ndarray] = []
    for rules in variants:
        in_bounds = (coarse_prices >= rules.low - 1e-9) & (coarse_prices <= rules.high + 1e-9)
        options = [in_bounds]
        if rules.stock is not None:
            options.append(in_bounds & (units * weeks <= rules.stock))
        for mask in options:
            if not mask.any():
                continue
            for row in rows:
                k = int(np.argmax(np.where(mask, row, -np.inf)))
                brackets.append(_bracket(coarse_prices, k, rules))
    return _merge(brackets, max_points)


def _bracket(prices: np.ndarray, k: int, rules: solver.Rules) -> np.ndarray:
    """Allowed prices in the grid cells either side of ``prices[k]``, nearest to it first."""
    low = max(prices[max(k - 1, 0)], rules.low)
    high = min(prices[min(k + 1, len(prices) - 1)], rules.high)
    inside = grid.candidate_prices(low, high, rules.endings)
    if len(inside) < 2:  # sparse endings: take the allowed prices nearest to the cell
        allowed = grid.candidate_prices(rules.low, rules.high, rules.endings)
        if len(allowed):
            nearest = allowed[np.argsort(np.abs(allowed - prices[k]))[:3]]
            inside = np.union1d(inside, nearest)
    return inside[np.argsort(np.abs(inside - prices[k]), kind="stable")]


def _merge(brackets: list[np.ndarray], max_points: int) -> np.ndarray:
    """Round-robin over brackets (nearest first) until ``max_points`` distinct prices."""
    chosen: list[float] = []
    seen: set[int] = set()
    depth = 0
    while len(chosen) < max_points and any(depth < len(b) for b in brackets):
        for bracket in brackets:
            if depth < len(bracket) and len(chosen) < max_points:
                cents = int(round(bracket[depth] * 100))
                if cents not in seen:
                    seen.add(cents)
                    chosen.append(cents / 100)
        depth += 1
    return np.array(sorted(chosen))


def evaluate(
    demand: FactorizedDemand,
    prices: np.ndarray,
    objective: str,
    weight: float,
    group: np.ndarray,
    n_groups: int,
    scale: float = 1.0,
) -> grid.Curves:
    """Curves on ``prices`` for ``demand``'s customers, scaled (a sample stands for everyone)."""
    curves = grid.curves(demand, prices, objective, weight, group, n_groups)
    return grid.Curves(curves.prices, curves.gain * scale, curves.units * scale)
