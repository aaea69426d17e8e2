"""The vectorized path: a bundle's per-customer demand in numpy, for grids of prices.

``load_demand`` fetches the per-customer utilities (``engine.pricing.params``, the same SQL as
the query path) and factorizes the subset model once (``engine.pricing.demand``); each price
then costs a few array operations per customer. The optimizer and the price curves use it; it
agrees with the DuckDB projection at any price (tests/test_pricing_paths.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import duckdb
import numpy as np

from engine.cache import PerConnection
from engine.pricing import bundle as B
from engine.pricing import params as P
from engine.pricing.demand import NO_DISCOUNT_TOLERANCE, FactorizedDemand, raw_sums

MEMO_ENTRIES = 8  # bundles kept in memory (the page re-reads the same bundle on every rerun)
MEMO_MAX_CUSTOMERS = 100_000  # larger populations are re-read each time rather than held
_loaded = PerConnection(MEMO_ENTRIES)  # per connection: Bundle -> BundleDemand


@dataclass(frozen=True)
class BundleDemand:
    """A bundle's customers as arrays: parameters, factorized demand, segment and bucket codes."""

    bundle: B.Bundle
    parameters: P.BundleParameters
    _memo: dict = field(default_factory=dict, repr=False, compare=False)  # segment prices -> sums

    @cached_property
    def demand(self) -> FactorizedDemand:
        return FactorizedDemand.from_parameters(self.parameters)

    @property
    def n_segments(self) -> int:
        return len(self.bundle.segment_values)

    @cached_property
    def group(self) -> np.ndarray:
        """(H,) segment_code * BUCKETS + bucket, ascending (customers are kept in this order)."""
        return self.parameters.segment_code * P.BUCKETS + self.parameters.bucket

    def customer_prices(self, segment_prices: list[float]) -> np.ndarray:
        """(H,) each customer's bundle price from a price per segment code."""
        return np.asarray(segment_prices, dtype=np.float64)[self.parameters.segment_code]

    def sums(self, price: np.ndarray | float, weeks: float) -> np.ndarray:
        """Raw sums (segments, BUCKETS, F) at a bundle price per customer (H,) or one price."""
        per_customer = self.demand.per_customer(price, weeks)
        flat = raw_sums(per_customer, self.group, self.n_segments * P.BUCKETS)
        return flat.reshape(self.n_segments, P.BUCKETS, -1)

    def sums_at(self, segment_prices: list[float] | np.ndarray, weeks: float) -> np.ndarray:
        """Raw sums (segments, BUCKETS, F) at a price per segment (``nan``: no bundle), memoized."""
        off = self.bundle.sum_of_parts
        clean = tuple(
            off if not np.isfinite(p) or p >= off - NO_DISCOUNT_TOLERANCE else round(float(p), 6)
            for p in segment_prices
        )
        if all(p == off for p in clean):
            return self.without_bundle  # no bundle anywhere: the same at any horizon
        key = (clean, float(weeks))
        if key not in self._memo:
            self._memo[key] = self.sums(self.customer_prices(list(clean)), weeks)
        return self._memo[key]

    @cached_property
    def without_bundle(self) -> np.ndarray:
        """Raw sums with no bundle on offer (every price above the sum of the parts)."""
        return self.sums(self.bundle.sum_of_parts + 1.0, 1.0)

    def sums_without_bundle(self) -> np.ndarray:
        return self.without_bundle


def load_demand(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    items: list[str],
    segment: B.Segment | None = None,
    run: str | None = None,
) -> BundleDemand:
    """Resolve the bundle and fetch its customers' parameters into arrays (cold path)."""
    bundle = B.open_bundle(con, dataset, items, segment, run)
    known = _loaded.of(con).get(bundle)
    if isinstance(known, BundleDemand):
        return known
    with B.model_cursor(con, dataset) as (cur, _):
        parameters = P.load_bundle(cur, bundle)
    loaded = BundleDemand(bundle, _in_group_order(parameters))
    if parameters.n_customers <= MEMO_MAX_CUSTOMERS:
        _loaded.of(con).put(bundle, loaded)
    return loaded


def _in_group_order(parameters: P.BundleParameters) -> P.BundleParameters:
    """The same rows sorted by (segment, bucket), so each group is a contiguous block (a stable
    sort: each customer's replayed trips stay together, its first row first)."""
    key = parameters.segment_code * P.BUCKETS + parameters.bucket  # (H,)
    if key.max(initial=0) < np.iinfo(np.uint16).max:
        key = key.astype(np.uint16)  # numpy sorts 16-bit keys with a radix sort: linear time
    order = np.argsort(key, kind="stable")
    return replace(
        parameters,
        utilities=parameters.utilities[order],
        price_coefficient=parameters.price_coefficient[order],
        trips_per_week=parameters.trips_per_week[order],
        customer_share=parameters.customer_share[order],
        first=parameters.first[order],
        segment_code=parameters.segment_code[order],
        bucket=parameters.bucket[order],
    )
