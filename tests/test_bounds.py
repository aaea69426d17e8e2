"""Pricing inputs must be finite and within the documented bounds, at every engine entry point."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine import bounds, scenarios
from engine.errors import DataError
from engine.pricing.guardrails import Guardrails
from engine.pricing.optimize import optimize_price
from engine.pricing.whatif import project_bundle
from engine.sources import synthetic
from tests.test_scenarios import make

ITEMS = ["P0001", "P0028"]
NON_FINITE = [float("nan"), float("inf"), -float("inf")]


@pytest.fixture
def sample(con):
    synthetic.ingest_sample(con, "sample")
    return con


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and "found" in text and "must be" in text  # what was expected, what was found
    return text


@pytest.mark.parametrize("weeks", [*NON_FINITE, 0, -1, 521, 1e300, True, "4"])
def test_weeks_outside_0_to_520_are_refused(weeks):
    with pytest.raises(DataError, match="at most 520") as error:
        bounds.check_weeks(weeks)
    one_line(error)


@pytest.mark.parametrize("weeks", [0.5, 1, 4.0, 520])
def test_weeks_inside_are_kept(weeks):
    assert bounds.check_weeks(weeks) == float(weeks)


@pytest.mark.parametrize("price", [*NON_FINITE, 0.0, -2.0, 70.01])
def test_prices_outside_0_to_10x_the_parts_are_refused(price):
    with pytest.raises(DataError, match="positive amount") as error:
        bounds.check_price(price, sum_of_parts=7.0)
    one_line(error)
    assert bounds.check_price(70.0, sum_of_parts=7.0) == 70.0


@pytest.mark.parametrize("weight", [*NON_FINITE, -0.1, 100.5])
def test_welfare_weights_outside_0_to_100_are_refused(weight):
    with pytest.raises(DataError, match="from 0 to 100") as error:
        bounds.check_welfare_weight(weight)
    one_line(error)
    assert bounds.check_welfare_weight(0) == 0.0 and bounds.check_welfare_weight(100) == 100.0


@pytest.mark.parametrize(
    ("price", "weeks", "message"),
    [
        (float("inf"), 4.0, "positive amount of at most"),
        (float("nan"), 4.0, "positive amount"),
        (1000.0, 4.0, "10 x the sum of the parts"),
        (5.0, 1e300, "at most 520"),
        (5.0, float("inf"), "at most 520"),
        (5.0, float("nan"), "positive number of weeks"),
    ],
)
def test_project_bundle_refuses_out_of_bounds_inputs(sample, price, weeks, message):
    with pytest.raises(DataError, match=message) as error:
        project_bundle(sample, "sample", ITEMS, price, weeks=weeks)
    one_line(error)


def test_a_per_segment_price_is_checked_by_name(sample):
    from engine import store

    store.set_setting(sample, "allow_sensitive_segments", True)
    prices = {"Under 25K": 5.0, "25-49K": float("inf"), "50-99K": 5.0, "100K+": 5.0, "Unknown": 5.0}
    with pytest.raises(DataError, match="the bundle price for 25-49K must be a positive amount"):
        project_bundle(sample, "sample", ITEMS, prices, "income_band")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"welfare_weight": -1.0}, "welfare weight must be a number from 0 to 100; found -1.0"),
        ({"welfare_weight": float("nan")}, "welfare weight"),
        ({"welfare_weight": 1e9}, "welfare weight"),
        ({"weeks": 1e300}, "at most 520"),
    ],
)
def test_optimize_price_refuses_out_of_bounds_inputs(sample, options, message):
    with pytest.raises(DataError, match=message) as error:
        optimize_price(sample, "sample", ITEMS, objective="welfare", **options)
    one_line(error)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stock_limit": float("inf")}, "stock limit must be a positive, finite number"),
        ({"stock_limit": float("nan")}, "stock limit"),
        ({"max_discount_pct": float("nan")}, "maximum discount"),
        ({"min_margin_pct": float("inf")}, "minimum bundle margin"),
        ({"max_segment_spread_pct": -1.0}, "maximum price spread"),
    ],
)
def test_guardrails_refuse_non_finite_and_out_of_range_values(options, message):
    with pytest.raises(DataError, match=message) as error:
        Guardrails(**options)
    one_line(error)


@pytest.mark.parametrize(
    "change",
    [
        {"prices": {"All customers": float("nan")}},
        {"prices": {"All customers": float("inf")}},
        {"prices": {"All customers": -5.0}},
        {"prices": {"All customers": 71.0}},  # regular prices 3 + 4: at most 70
        {"weeks": 10**300},
        {"weeks": 0},
    ],
)
def test_scenario_save_refuses_out_of_bounds_and_saves_nothing(sample, change):
    with pytest.raises(DataError) as error:
        scenarios.save(sample, replace(make(sample, "Deal"), **change))
    one_line(error)
    assert scenarios.list_all(sample) == []


def test_price_scenario_with_an_infinite_price_saves_nothing(sample):
    with pytest.raises(DataError, match="positive amount"):
        scenarios.price_scenario(sample, "sample", "Deal", ITEMS, price=float("inf"))
    assert scenarios.list_all(sample) == []
