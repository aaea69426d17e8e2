"""Business guardrails on a bundle price, and the decision types the optimizer returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from engine.errors import DataError
from engine.pricing import grid, solver

LABELS = {
    "min_margin_pct": "minimum bundle margin",
    "max_discount_pct": "maximum discount vs the sum of the parts",
    "price_endings": "price endings",
    "max_segment_spread_pct": "maximum price spread between segments",
    "stock_limit": "stock limit on bundle units",
}


@dataclass(frozen=True)
class Guardrails:
    """Limits a recommended bundle price must respect.

    A bundle is never priced above the sum of its parts: that rule is always on (such a bundle
    sells nothing, since the items bought separately cost less).
    """

    min_margin_pct: float | None = None  # bundle margin as % of the bundle price, at least
    max_discount_pct: float | None = 50.0  # discount vs the sum of the parts, at most (%)
    price_endings: tuple[str, ...] = ()  # allowed endings, e.g. (".99", ".49"); empty: any cent
    max_segment_spread_pct: float | None = 10.0  # highest - lowest segment price, % of the sum of the parts
    stock_limit: float | None = None  # bundle units over the horizon, at most

    def __post_init__(self) -> None:
        for name in ("min_margin_pct", "max_discount_pct", "max_segment_spread_pct"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 100:
                raise DataError(f"{LABELS[name]} must be a percentage from 0 to below 100; found {value}")
        if self.stock_limit is not None and not (math.isfinite(self.stock_limit) and self.stock_limit > 0):
            raise DataError(f"the stock limit must be a positive, finite number of bundles; found {self.stock_limit}")
        grid.parse_endings(self.price_endings)  # validates

    def rules(self, sum_of_parts: float, bundle_cost: float) -> solver.Rules:
        """The guardrails as price bounds for a bundle with this sum of the parts and cost."""
        return solver.Rules(
            low=max(self._lowest(sum_of_parts, bundle_cost, skip=None), 0.01),
            high=sum_of_parts,
            endings=grid.parse_endings(self.price_endings),
            spread=None if self.max_segment_spread_pct is None else self.max_segment_spread_pct / 100 * sum_of_parts,
            stock=self.stock_limit,
        )

    def relaxations(self, sum_of_parts: float, bundle_cost: float) -> dict[str, solver.Rules]:
        """For each guardrail that is set: the rules without it (to tell whether it binds)."""
        base = self.rules(sum_of_parts, bundle_cost)
        out = {}
        for name in ("min_margin_pct", "max_discount_pct"):
            if getattr(self, name) is not None:
                out[name] = base.relaxed(low=max(self._lowest(sum_of_parts, bundle_cost, skip=name), 0.01))
        if self.price_endings:
            out["price_endings"] = base.relaxed(endings=())
        if self.max_segment_spread_pct is not None:
            out["max_segment_spread_pct"] = base.relaxed(spread=None)
        if self.stock_limit is not None:
            out["stock_limit"] = base.relaxed(stock=None)
        return out

    def describe(self, name: str, sum_of_parts: float, bundle_cost: float) -> str:
        """One guardrail in plain words, with the price bound it implies."""
        if name == "min_margin_pct":
            assert self.min_margin_pct is not None, "only a set guardrail is described"
            bound = _cents_up(bundle_cost / (1 - self.min_margin_pct / 100))
            return f"minimum margin {self.min_margin_pct:g}% (price at least {bound:.2f})"
        if name == "max_discount_pct":
            assert self.max_discount_pct is not None, "only a set guardrail is described"
            bound = _cents_up(sum_of_parts * (1 - self.max_discount_pct / 100))
            return f"maximum discount {self.max_discount_pct:g}% (price at least {bound:.2f})"
        if name == "price_endings":
            return "price endings " + ", ".join(self.price_endings)
        if name == "max_segment_spread_pct":
            return f"segment prices within {self.max_segment_spread_pct:g}% of the sum of the parts of each other"
        return f"at most {self.stock_limit:g} bundles over the horizon"

    def to_json(self) -> dict:
        return asdict(self) | {"never_above_sum_of_parts": True}

    def _lowest(self, sum_of_parts: float, bundle_cost: float, skip: str | None) -> float:
        low = 0.0
        if self.max_discount_pct is not None and skip != "max_discount_pct":
            low = max(low, sum_of_parts * (1 - self.max_discount_pct / 100))
        if self.min_margin_pct is not None and skip != "min_margin_pct":
            low = max(low, bundle_cost / (1 - self.min_margin_pct / 100))
        return low


def _cents_up(amount: float) -> float:
    return math.ceil(round(amount * 100, 6)) / 100


@dataclass(frozen=True)
class BindingConstraint:
    """A guardrail that holds the decision back, and what dropping it would add."""

    constraint: str  # Guardrails field name
    detail: str  # plain words
    gain_if_relaxed: float  # objective gain over the horizon if this guardrail alone were dropped

    def to_json(self) -> dict:
        gain = self.gain_if_relaxed
        return asdict(self) | {"gain_if_relaxed": gain if math.isfinite(gain) else None}


@dataclass(frozen=True)
class Strategy:
    """One pricing strategy in the side-by-side comparison."""

    name: str
    deployable: bool
    prices: tuple[tuple[str, float | None], ...]  # segment -> bundle price (None: no discount)
    objective_gain: float  # vs no bundle, over the horizon
    figures: dict[str, float]  # take_rate, revenue, margin, incremental_*, ...
    note: str

    def to_json(self) -> dict:
        return {
            "strategy": self.name,
            "deployable": self.deployable,
            "prices": {segment: price for segment, price in self.prices},
            "objective_gain": self.objective_gain,
            **self.figures,
            "note": self.note,
        }
