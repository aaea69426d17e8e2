"""The exact subset model: invariants as property tests (hypothesis) on random customers."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pricing import demand as D
from engine.pricing.params import BundleParameters

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def markets(draw, max_customers: int = 40):
    """Random bundle parameters: n items, customers with 1-3 replayed trips each (utilities per
    trip, the customer's price coefficient and trip rate on each of its rows), couplings, prices."""
    n = draw(st.integers(2, 4))
    h = draw(st.integers(1, max_customers))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    coupling = np.triu(rng.normal(0, 2.0, (n, n)), 1)
    prices = np.round(rng.uniform(0.5, 9.0, n), 2)
    trips = rng.integers(1, 4, h)  # replayed trips per customer
    customer = np.repeat(np.arange(h), trips)  # (R,)
    first = np.concatenate([[True], customer[1:] != customer[:-1]])
    return BundleParameters(
        utilities=rng.normal(-1.0, 2.5, (len(customer), n)),
        price_coefficient=rng.uniform(0.05, 3.0, h)[customer],
        trips_per_week=((rng.gamma(2.0, 0.7, h) + 0.01) / trips)[customer],
        customer_share=(1.0 / trips)[customer],
        first=first,
        segment_code=np.zeros(len(customer), dtype=np.int64),
        bucket=np.zeros(len(customer), dtype=np.int64),
        coupling=coupling + coupling.T,
        prices=prices,
        costs=np.round(prices * rng.uniform(0.3, 0.9, n), 2),
    )


def brute_force_utilities(params: BundleParameters) -> np.ndarray:
    """U_h(A) by itertools: sum of item utilities plus each pair's coupling (independent of demand.py)."""
    n = params.utilities.shape[1]
    out = np.zeros((len(params.utilities), 2**n))
    for mask in range(2**n):
        members = [k for k in range(n) if mask >> k & 1]
        out[:, mask] = params.utilities[:, members].sum(axis=1) + sum(
            params.coupling[a, b] for a, b in itertools.combinations(members, 2)
        )
    return out


@SETTINGS
@given(markets(), st.floats(0.0, 1.2))
def test_subset_probabilities_sum_to_one_per_customer(params, share):
    option_u = D.option_utilities(params.utilities, params.coupling)
    np.testing.assert_allclose(option_u, brute_force_utilities(params), atol=1e-10)
    price = share * params.prices.sum()
    probs = D.option_probabilities(option_u, D.bundle_gain(params.price_coefficient, params.prices.sum(), price))
    assert probs.shape == (len(params.utilities), 2 ** params.utilities.shape[1])
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


@SETTINGS
@given(markets(), st.floats(0.05, 1.0), st.floats(0.0, 1.0))
def test_take_rate_falls_as_the_bundle_price_rises(params, low_share, step):
    parts = params.prices.sum()
    low = low_share * parts
    high = low + step * (parts - low)
    demand = D.FactorizedDemand.from_parameters(params)
    take = [demand.per_customer(p, 4.0)[:, D.FIELD["bundle_share"]] for p in (low, high)]  # per customer
    assert (take[1] <= take[0] + 1e-12).all()


@SETTINGS
@given(markets(), st.floats(0.0, 1.0), st.floats(0.5, 52))
def test_surplus_change_is_never_negative_at_or_below_the_sum_of_the_parts(params, share, weeks):
    price = share * params.prices.sum()
    fields = D.per_customer_enumerated(params, price, weeks)
    assert (fields[:, D.FIELD["surplus"]] >= 0).all()
    factorized = D.FactorizedDemand.from_parameters(params).per_customer(price, weeks)
    assert (factorized[:, D.FIELD["surplus"]] >= -1e-12).all()


@SETTINGS
@given(markets(), st.lists(st.floats(0.0, 1.5), min_size=1, max_size=3), st.floats(0.5, 20))
def test_factorized_demand_equals_explicit_enumeration(params, shares, weeks):
    demand = D.FactorizedDemand.from_parameters(params)
    for share in shares:
        price = share * params.prices.sum()
        expected = D.per_customer_enumerated(params, price, weeks)
        got = demand.per_customer(price, weeks)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(markets(max_customers=5), st.floats(0.1, 0.95))
def test_surplus_is_the_integral_of_the_bundle_take_probability(params, share):
    """Small & Rosen: per trip, surplus change = integral over q from P to the sum of P(full set at q)."""
    parts = params.prices.sum()
    price = share * parts
    option_u = D.option_utilities(params.utilities, params.coupling)
    q = np.linspace(price, parts, 4001)  # (Q,)
    take = np.stack(
        [D.option_probabilities(option_u, params.price_coefficient * (parts - x))[:, -1] for x in q], axis=1
    )  # (H, Q)
    integral = ((take[:, 1:] + take[:, :-1]) / 2 * np.diff(q)).sum(axis=1)
    per_trip = D.per_customer_enumerated(params, price, 1.0)[:, D.FIELD["surplus"]] / params.trips_per_week
    np.testing.assert_allclose(per_trip, integral, rtol=2e-3, atol=1e-6)


def test_no_bundle_at_or_above_the_sum_of_the_parts():
    rng = np.random.default_rng(3)
    params = BundleParameters(
        utilities=rng.normal(size=(7, 3)),
        price_coefficient=rng.uniform(0.2, 2, 7),
        trips_per_week=np.ones(7),
        customer_share=np.ones(7),
        first=np.ones(7, bool),
        segment_code=np.zeros(7, int),
        bucket=np.zeros(7, int),
        coupling=np.zeros((3, 3)),
        prices=np.array([1.0, 2.0, 3.0]),
        costs=np.array([0.5, 1, 2]),
    )
    demand = D.FactorizedDemand.from_parameters(params)
    for price in (6.0, 6.004, 7.5):
        fields = demand.per_customer(price, 4.0)
        assert (fields[:, D.FIELD["bundle_share"]] == 0).all()
        assert (fields[:, D.FIELD["surplus"]] == 0).all()
        assert (fields[:, D.FIELD["buyers"]] == 0).all()
    assert (demand.per_customer(5.99, 4.0)[:, D.FIELD["bundle_share"]] > 0).all()


@SETTINGS
@given(markets(), st.floats(0.0, 0.99), st.floats(0.5, 20))
def test_customer_figures_sum_over_each_customers_replayed_trips(params, share, weeks):
    """Buyers, customers better off and the customer count, recomputed customer by customer in plain
    Python from the per-trip option probabilities (independent of demand.py's array code)."""
    price = share * params.prices.sum()
    got = D.FactorizedDemand.from_parameters(params).per_customer(price, weeks)
    option_u = brute_force_utilities(params)
    offered = price < params.prices.sum() - D.NO_DISCOUNT_TOLERANCE
    customer = np.cumsum(params.first) - 1
    for h in range(customer[-1] + 1):
        rows = np.flatnonzero(customer == h)
        bundle_units, surplus = 0.0, 0.0
        for r in rows:
            b, trips = params.price_coefficient[r], params.trips_per_week[r]
            gain = b * (params.prices.sum() - price) if offered else 0.0
            with_bundle = option_u[r].copy()
            with_bundle[-1] += gain
            p_full = np.exp(with_bundle[-1]) / np.exp(with_bundle).sum()
            bundle_units += trips * p_full if offered else 0.0
            surplus += trips * (np.log(np.exp(with_bundle).sum()) - np.log(np.exp(option_u[r]).sum())) / b
        first = rows[0]
        assert got[first, D.FIELD["customers"]] == 1.0 and (got[rows[1:], D.FIELD["customers"]] == 0).all()
        np.testing.assert_allclose(
            got[first, D.FIELD["buyers"]], 1 - np.exp(-weeks * bundle_units), rtol=1e-9, atol=1e-12
        )
        if abs(surplus * weeks - D.BETTER_OFF_MIN) > 1e-9:
            assert got[first, D.FIELD["better_off"]] == float(surplus * weeks >= D.BETTER_OFF_MIN)
        assert (got[rows[1:], D.FIELD["buyers"]] == 0).all() and (got[rows[1:], D.FIELD["better_off"]] == 0).all()
