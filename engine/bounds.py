"""The documented bounds of a pricing request: horizon, bundle price, welfare weight.

Checked where a request enters the engine (``project_bundle``, ``optimize_price``, scenario
save), so the CLI and the pages both refuse the same values with one line that says what was
expected and what was found. Every bound also refuses NaN and infinities.

==================  ==============================================================
horizon (weeks)     above 0, at most ``MAX_WEEKS`` (ten years)
bundle price        above 0, at most ``MAX_PRICE_MULTIPLE`` x the sum of the parts
welfare weight      0 to ``MAX_WELFARE_WEIGHT`` (currency of surplus per currency of margin)
==================  ==============================================================

Guardrail percentages (discount, margin, spread: 0 to below 100) and the stock limit (a positive
finite number of bundles) are checked by ``engine.pricing.guardrails.Guardrails``.
"""

from __future__ import annotations

import math
from numbers import Real

from engine.errors import DataError

MAX_WEEKS = 520
MAX_PRICE_MULTIPLE = 10.0  # a bundle dearer than this is a typo: it sells nothing anyway
MAX_WELFARE_WEIGHT = 100.0


def _finite(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def check_weeks(weeks: float) -> float:
    """The horizon in weeks, in (0, ``MAX_WEEKS``]."""
    if not (_finite(weeks) and 0 < weeks <= MAX_WEEKS):
        raise DataError(f"the horizon must be a positive number of weeks, at most {MAX_WEEKS}; found {weeks}")
    return float(weeks)


def check_price(price: float, sum_of_parts: float | None = None, what: str = "a bundle price") -> float:
    """A bundle price above 0 and at most ``MAX_PRICE_MULTIPLE`` x ``sum_of_parts`` (when known)."""
    cap = MAX_PRICE_MULTIPLE * sum_of_parts if sum_of_parts else math.inf
    if not (_finite(price) and 0 < price <= cap):
        limit = f" of at most {cap:,.2f} ({MAX_PRICE_MULTIPLE:g} x the sum of the parts)" if math.isfinite(cap) else ""
        raise DataError(f"{what} must be a positive amount{limit}; found {price}")
    return float(price)


def check_welfare_weight(weight: float) -> float:
    """The weight on consumer surplus, in [0, ``MAX_WELFARE_WEIGHT``]."""
    if not (_finite(weight) and 0 <= weight <= MAX_WELFARE_WEIGHT):
        raise DataError(f"the welfare weight must be a number from 0 to {MAX_WELFARE_WEIGHT:g}; found {weight}")
    return float(weight)
