"""Choosing bundle prices from exact objective curves, under guardrails.

Inputs are curves on a set of evaluated prices (``engine.pricing.grid``): the objective gain and
bundle units per segment at each price, per week. "No discount" (no bundle on offer) is always
an option with gain 0 and no units; for the price-spread guardrail it counts as the sum of the
parts. Everything here is small arrays (segments x prices): exact and instant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from engine.pricing.demand import NO_DISCOUNT_TOLERANCE


@dataclass(frozen=True)
class Rules:
    """The guardrails in solver terms (all money in currency, units over the horizon)."""

    low: float  # lowest allowed bundle price
    high: float  # highest allowed bundle price (the sum of the parts)
    endings: tuple[int, ...]  # allowed cents endings; empty: any cent
    spread: float | None  # max highest - lowest segment price; None: no limit
    stock: float | None  # max bundle units over the horizon; None: no limit

    def relaxed(self, **changes) -> Rules:
        return replace(self, **changes)


@dataclass(frozen=True)
class Choice:
    """Prices per segment (``nan``: no discount for that segment) and the total gain per week."""

    prices: np.ndarray  # (S,)
    gain: float  # objective gain per week, all segments
    units: float  # bundle units per week, all segments

    @property
    def discounts(self) -> bool:
        return bool(np.isfinite(self.prices).any())


def allowed(prices: np.ndarray, rules: Rules) -> np.ndarray:
    """(U,) which evaluated prices the rules allow (a price at the sum of the parts is no offer:
    "no discount" is a separate option everywhere)."""
    ok = (prices >= rules.low - 1e-9) & (prices < rules.high - NO_DISCOUNT_TOLERANCE)
    if rules.endings:
        ok &= np.isin(np.round(prices * 100).astype(np.int64) % 100, rules.endings)
    return ok


def solve_one(prices: np.ndarray, gain: np.ndarray, units: np.ndarray, rules: Rules, weeks: float) -> Choice:
    """Best single price for all segments.

    Parameters
    ----------
    prices : (U,) evaluated prices.
    gain, units : (S, U) per segment, per week.
    """
    n_seg = gain.shape[0]
    total_gain, total_units = gain.sum(axis=0), units.sum(axis=0)  # (U,)
    ok = allowed(prices, rules)
    if rules.stock is not None:
        ok &= total_units * weeks <= rules.stock + 1e-9
    best = Choice(np.full(n_seg, np.nan), 0.0, 0.0)
    if ok.any():
        k = int(np.argmax(np.where(ok, total_gain, -np.inf)))
        if total_gain[k] > 0:
            best = Choice(np.full(n_seg, prices[k]), float(total_gain[k]), float(total_units[k]))
    return best


def solve_segments(
    prices: np.ndarray, gain: np.ndarray, units: np.ndarray, rules: Rules, weeks: float, present: np.ndarray
) -> Choice:
    """Best price per segment with a maximum spread between segments and a stock limit.

    The spread is enforced exactly by enumerating the lowest price L of a window [L, L + spread];
    the stock limit by a Lagrange multiplier on units (scanned), keeping the best feasible choice.
    ``present`` (S,) marks segments with customers; empty segments get no price.
    """
    ok = allowed(prices, rules)
    opt_prices = np.append(prices[ok], rules.high)  # (V,) last option: no discount
    opt_gain = np.concatenate([gain[:, ok], np.zeros((gain.shape[0], 1))], axis=1)  # (S, V)
    opt_units = np.concatenate([units[:, ok], np.zeros((gain.shape[0], 1))], axis=1)  # (S, V)
    no_discount = len(opt_prices) - 1
    if rules.spread is None:
        windows = np.ones((1, len(opt_prices)), dtype=bool)  # (L, V)
    else:
        low = np.unique(opt_prices)
        above = opt_prices[None, :] >= low[:, None] - 1e-9  # (L, V)
        windows = above & (opt_prices[None, :] <= low[:, None] + rules.spread + 1e-9)
    multipliers = [0.0]
    if rules.stock is not None:
        ratio = np.where(opt_units > 0, np.maximum(opt_gain, 0) / np.where(opt_units > 0, opt_units, 1), 0)
        top = float(ratio.max()) if ratio.size else 0.0
        multipliers += list(np.geomspace(max(top, 1e-6) * 1e-4, max(top, 1e-6) * 10, 60))
    best = Choice(np.full(gain.shape[0], np.nan), 0.0, 0.0)
    for mu in multipliers:
        score = opt_gain - mu * opt_units  # (S, V)
        masked = np.where(windows[:, None, :], score[None, :, :], -np.inf)  # (L, S, V)
        pick = masked.argmax(axis=2)  # (L, S)
        pick = np.where(present[None, :], pick, no_discount)
        picked = np.take_along_axis(masked, pick[..., None], axis=2)[..., 0]  # (L, S)
        feasible = (np.isfinite(picked) | ~present[None, :]).all(axis=1)
        seg = np.arange(gain.shape[0])[None, :]
        total_gain = np.where(feasible, opt_gain[seg, pick].sum(axis=1), -np.inf)  # (L,)
        total_units = opt_units[seg, pick].sum(axis=1)
        if rules.stock is not None:
            total_gain = np.where(total_units * weeks <= rules.stock + 1e-9, total_gain, -np.inf)
        k = int(np.argmax(total_gain))
        if np.isfinite(total_gain[k]) and total_gain[k] > best.gain:
            chosen = opt_prices[pick[k]].astype(np.float64)
            chosen[pick[k] == no_discount] = np.nan
            best = Choice(chosen, float(total_gain[k]), float(total_units[k]))
    return best
