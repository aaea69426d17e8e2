"""Bundle demand per replayed trip: the exact 2^|S| subset model, vectorized over trips.

For a bundle S of n items (DESIGN.md section 4), customer h on trip t buys one subset A of S
(the empty set included) with the auto-logistic probabilities::

    U_ht(A)  = sum_{i in A} u(h,i,t) + sum_{i<j in A} c_ij     u(h,i,t): engine.pricing.params
    U_ht(S) += b_h,S * max(0, sum_i price_i - P)       when S is sold as a bundle at price P
    P_ht(A)  = exp U_ht(A) / sum_{A'} exp U_ht(A')

Rows are the customers' replayed trips (``engine.replay``); every figure is a sum over
rows, each weighted by the trips per week it stands for, except three that belong to a customer:
the customer count, the customers better off and the expected buyers, which are computed from
the sums over each customer's rows and put on the customer's first row (0 on the others), so any
sum over whole customers stays right.

Only the full set's utility moves with P. At or above the sum of the parts (within half a cent)
the bundle is no offer: nobody switches to it and the full set is bought as separate items. Consumer
surplus change per trip (Small & Rosen 1981) is ``(logsum with bundle - logsum without) / b_h,S``.

``option_probabilities`` is the enumeration itself; ``FactorizedDemand`` keeps per customer the
price-free sums over the other subsets, so a price change costs one ``exp`` per customer (the
optimizer's grid and the price curves); ``raw_sums`` turns either into the additive per-group
sums that ``engine.pricing.figures`` turns into analyst figures. The SQL path
(``engine.pricing.whatif``) computes the same sums in DuckDB; tests hold the three together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.pricing.params import BundleParameters

BETTER_OFF_MIN = 0.01  # currency over the horizon: a customer gaining less is not counted "better off"
NO_DISCOUNT_TOLERANCE = 0.005  # a bundle priced within half a cent of the sum of the parts is no offer

# Additive sums per group of customers, per week (except the counts, buyers and better_off, which
# depend on the horizon). The SQL path returns these columns in this order. "trips" below means a
# replayed trip's weight, the customer's trips per week / n_h.
RAW_FIELDS: tuple[str, ...] = (
    "customers",  # number of customers
    "trips",  # expected trips per week
    "bundle_share",  # trips x P(bundle)                       = bundle units per week
    "separate_full_share",  # trips x P(all items, bought separately) (price above the sum of the parts)
    "bundle_revenue",  # trips x P(bundle) x bundle price
    "rest_revenue",  # trips x sum_{A != S} P(A) price(A)      stand-alone revenue of the other subsets
    "rest_margin",  # trips x sum_{A != S} P(A) margin(A)
    "rest_units_1",
    "rest_units_2",
    "rest_units_3",
    "rest_units_4",  # trips x sum_{A != S, i in A} P(A)
    "surplus",  # trips x (logsum with - logsum without) / b   (currency per week)
    "better_off",  # customers whose surplus gain over the horizon (all their trips) >= BETTER_OFF_MIN
    "buyers",  # expected customers buying the bundle at least once in the horizon
)
FIELD = {name: k for k, name in enumerate(RAW_FIELDS)}
MAX_SLOTS = 4


def subset_masks(n: int) -> np.ndarray:
    """(2^n, n) 0/1 matrix: row m holds bit k of m. Row 0 is the empty set, the last row is S."""
    m = np.arange(2**n)[:, None]
    return ((m >> np.arange(n)[None, :]) & 1).astype(np.float64)


def option_utilities(utilities: np.ndarray, coupling: np.ndarray) -> np.ndarray:
    """U_h(A) for every subset A (no bundle).

    Parameters
    ----------
    utilities : (H, n) item utilities at regular price.
    coupling : (n, n) symmetric couplings with zero diagonal.

    Returns
    -------
    (H, 2^n) subset utilities, columns in ``subset_masks`` order (empty set first: 0).
    """
    return _option_major_utilities(utilities, coupling).T


def _option_major_utilities(utilities: np.ndarray, coupling: np.ndarray) -> np.ndarray:
    """(2^n, H) subset utilities, one contiguous row per subset (fast column arithmetic)."""
    bits = subset_masks(utilities.shape[1])  # (2^n, n)
    pair_term = 0.5 * np.einsum("ak,kl,al->a", bits, coupling, bits)  # (2^n,) sum_{k<l in A} c_kl
    items = [np.ascontiguousarray(utilities[:, k]) for k in range(utilities.shape[1])]  # n x (H,)
    out = np.empty((len(bits), utilities.shape[0]))
    for a, row in enumerate(bits):
        out[a] = pair_term[a]
        for k in np.flatnonzero(row):
            out[a] += items[k]
    return out


def bundle_offered(price: np.ndarray, sum_of_parts: float) -> np.ndarray:
    """Whether a bundle at ``price`` is a real offer: below the sum of the parts (same shape)."""
    return np.asarray(price) < sum_of_parts - NO_DISCOUNT_TOLERANCE


def bundle_gain(price_coefficient: np.ndarray, sum_of_parts: float, price: np.ndarray) -> np.ndarray:
    """Utility added to the full set when it is sold as a bundle at ``price``: (H,)."""
    return np.where(bundle_offered(price, sum_of_parts), price_coefficient * (sum_of_parts - price), 0.0)


def option_probabilities(option_u: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """P_h(A): (H, 2^n) rows summing to 1, the full set's utility raised by ``gain`` (H,)."""
    shifted = option_u.copy()
    shifted[:, -1] += gain
    shifted -= shifted.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def logsum(option_u: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """log sum_A exp U_h(A) with the full set raised by ``gain``: (H,)."""
    shifted = option_u.copy()
    shifted[:, -1] += gain
    top = shifted.max(axis=1)
    return top + np.log(np.exp(shifted - top[:, None]).sum(axis=1))


REST_FIELDS = ("rest_revenue", "rest_margin", "rest_units_1", "rest_units_2", "rest_units_3", "rest_units_4")
REST = slice(FIELD["rest_revenue"], FIELD["rest_units_4"] + 1)
assert [RAW_FIELDS[k] for k in range(REST.start, REST.stop)] == list(REST_FIELDS)


@dataclass(frozen=True)
class FactorizedDemand:
    """Price-free per-trip sums over subsets, scaled by exp(-m) for stability (R replayed trips).

    Each customer's rows are contiguous and the first is flagged ``first`` (see the module docstring).
    """

    full_weight: np.ndarray  # (R,) exp(U(S) - m)
    rest_weight: np.ndarray  # (R,) sum_{A != S} exp(U(A) - m), the empty set included
    rest: np.ndarray  # (R, 6) sum_{A != S} exp(U(A) - m) x [price(A), margin(A), 1{slot k in A} k=1..4]
    price_coefficient: np.ndarray  # (R,) b_h,S
    trips_per_week: np.ndarray  # (R,) the trips per week the row stands for
    customer_share: np.ndarray  # (R,) 1 / n_h
    first: np.ndarray  # (R,) bool, the customer's first row
    sum_of_parts: float
    bundle_cost: float

    @classmethod
    def from_parameters(cls, params: BundleParameters) -> FactorizedDemand:
        n = params.utilities.shape[1]
        option_u = _option_major_utilities(params.utilities, params.coupling)  # (2^n, R)
        option_u -= np.maximum(option_u.max(axis=0), 0.0)  # minus m = max(0, max_A U)
        weights = np.exp(option_u, out=option_u)  # (2^n, R)
        bits = subset_masks(n)[:-1]  # (2^n - 1, n) every A != S
        per_option = np.zeros((len(bits), len(REST_FIELDS)))  # (2^n - 1, 6)
        per_option[:, 0] = bits @ params.prices
        per_option[:, 1] = bits @ (params.prices - params.costs)
        per_option[:, 2 : 2 + n] = bits
        rest = weights[:-1]  # (2^n - 1, R)
        return cls(
            full_weight=weights[-1].copy(),
            rest_weight=rest.sum(axis=0),
            rest=(per_option.T @ rest).T,  # (R, 6), column-major
            price_coefficient=params.price_coefficient,
            trips_per_week=params.trips_per_week,
            customer_share=params.customer_share,
            first=params.first,
            sum_of_parts=float(params.prices.sum()),
            bundle_cost=float(params.costs.sum()),
        )

    @property
    def rest_revenue(self) -> np.ndarray:
        return self.rest[:, 0]

    @property
    def rest_margin(self) -> np.ndarray:
        return self.rest[:, 1]

    @property
    def one_trip_each(self) -> bool:
        """Whether every customer replays one trip (rows are customers)."""
        return bool(self.first.all())

    def take(self, index: np.ndarray | slice) -> FactorizedDemand:
        """The rows at ``index`` (whole customers for ``per_customer``; any rows for grid sums)."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name, value in fields.items():
            if isinstance(value, np.ndarray):
                fields[name] = value[index]
        return FactorizedDemand(**fields)

    def per_customer(self, price: np.ndarray | float, weeks: float) -> np.ndarray:
        """Raw fields per row at bundle price ``price`` (R,) or scalar: (R, len(RAW_FIELDS)).

        The customer-level fields (customers, better_off, buyers) sit on each customer's first row.
        """
        price = np.broadcast_to(np.asarray(price, dtype=np.float64), self.full_weight.shape)
        on = bundle_offered(price, self.sum_of_parts)
        trips, b = self.trips_per_week, self.price_coefficient
        w = self.full_weight * np.exp(bundle_gain(b, self.sum_of_parts, price))  # (R,)
        denominator = self.rest_weight + w
        per_trip = trips / denominator
        full_share = per_trip * w
        surplus = trips * (np.log(denominator) - np.log(self.rest_weight + self.full_weight)) / b
        out = np.empty((len(w), len(RAW_FIELDS)), order="F")  # column-major: each field is contiguous
        out[:, FIELD["trips"]] = trips
        out[:, FIELD["bundle_share"]] = np.where(on, full_share, 0.0)
        out[:, FIELD["separate_full_share"]] = np.where(on, 0.0, full_share)
        out[:, FIELD["bundle_revenue"]] = out[:, FIELD["bundle_share"]] * price
        np.multiply(self.rest, per_trip[:, None], out=out[:, REST])
        out[:, FIELD["surplus"]] = surplus
        _customer_fields(out, self.first, weeks)
        return out


def _customer_fields(out: np.ndarray, first: np.ndarray, weeks: float) -> None:
    """Fill customers, better_off and buyers (on each customer's first row) from the per-row
    bundle shares and surpluses in ``out`` (R, F)."""
    share, surplus = out[:, FIELD["bundle_share"]], out[:, FIELD["surplus"]]
    if first.all():  # one row per customer
        out[:, FIELD["customers"]] = 1.0
        out[:, FIELD["better_off"]] = surplus * weeks >= BETTER_OFF_MIN
        out[:, FIELD["buyers"]] = -np.expm1(-weeks * share)
        return
    starts = np.flatnonzero(first)  # (H,)
    out[:, FIELD["customers"]] = first
    out[:, FIELD["better_off"]] = 0.0
    out[:, FIELD["buyers"]] = 0.0
    if len(starts):
        out[starts, FIELD["better_off"]] = np.add.reduceat(surplus, starts) * weeks >= BETTER_OFF_MIN
        out[starts, FIELD["buyers"]] = -np.expm1(-weeks * np.add.reduceat(share, starts))


def raw_sums(per_customer: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum per-customer raw fields (H, F) into groups: (n_groups, F).

    ``group`` must be sorted (``BundleDemand`` keeps customers in group order), so each group is
    one contiguous block and the sum is one pass (``np.add.reduceat``).
    """
    starts = np.searchsorted(group, np.arange(n_groups))  # (n_groups,)
    nonempty = np.flatnonzero(np.diff(np.append(starts, len(group))) > 0)
    out = np.zeros((n_groups, per_customer.shape[1]))
    if len(nonempty):
        out[nonempty] = np.add.reduceat(per_customer, starts[nonempty], axis=0)
    return out


def per_customer_enumerated(params: BundleParameters, price: np.ndarray, weeks: float) -> np.ndarray:
    """The raw fields by explicit enumeration of all 2^n subset probabilities (the reference).

    Same output as ``FactorizedDemand.per_customer``, computed from ``option_probabilities``.
    """
    n = params.utilities.shape[1]
    sum_of_parts = float(params.prices.sum())
    price = np.broadcast_to(np.asarray(price, dtype=np.float64), params.trips_per_week.shape)
    on = bundle_offered(price, sum_of_parts)
    option_u = option_utilities(params.utilities, params.coupling)
    gain = bundle_gain(params.price_coefficient, sum_of_parts, price)
    probs = option_probabilities(option_u, gain)  # (R, 2^n)
    bits = subset_masks(n)
    trips, b = params.trips_per_week, params.price_coefficient
    surplus = trips * (logsum(option_u, gain) - logsum(option_u, np.zeros_like(gain))) / b
    out = np.zeros((len(price), len(RAW_FIELDS)))
    out[:, FIELD["trips"]] = trips
    out[:, FIELD["bundle_share"]] = trips * probs[:, -1] * on
    out[:, FIELD["separate_full_share"]] = trips * probs[:, -1] * ~on
    out[:, FIELD["bundle_revenue"]] = trips * probs[:, -1] * on * price
    out[:, FIELD["rest_revenue"]] = trips * (probs[:, :-1] @ (bits[:-1] @ params.prices))
    out[:, FIELD["rest_margin"]] = trips * (probs[:, :-1] @ (bits[:-1] @ (params.prices - params.costs)))
    for k in range(n):
        out[:, FIELD[f"rest_units_{k + 1}"]] = trips * (probs[:, :-1] @ bits[:-1, k])
    out[:, FIELD["surplus"]] = surplus
    customer = np.cumsum(params.first) - 1  # (R,) customer ordinal of each row
    customer_share = np.bincount(customer, weights=out[:, FIELD["bundle_share"]])
    customer_surplus = np.bincount(customer, weights=surplus)
    out[:, FIELD["customers"]] = params.first
    out[:, FIELD["better_off"]] = params.first * (customer_surplus[customer] * weeks >= BETTER_OFF_MIN)
    out[:, FIELD["buyers"]] = params.first * (1.0 - np.exp(-weeks * customer_share[customer]))
    return out
