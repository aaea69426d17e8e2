"""Fair pricing: sensitive segments need explicit consent; gaps across groups are measured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import fairness, privacy, store
from engine.errors import DataError
from engine.sources import synthetic


@pytest.fixture
def sample(con):
    synthetic.ingest_sample(con, "sample")
    return con


def test_sensitive_segment_refused_until_enabled(sample):
    assert privacy.check_pricing_segment(sample, None) is False
    assert privacy.check_pricing_segment(sample, "rfm_segment") is False
    with pytest.raises(DataError, match="sensitive"):
        privacy.check_pricing_segment(sample, "income_band")
    store.set_setting(sample, "allow_sensitive_segments", True)
    assert privacy.check_pricing_segment(sample, "income_band") is True


def test_gaps_equal_pandas_and_flag_the_largest(sample):
    with store.dataset_cursor(sample, "sample") as cur:
        attrs = cur.execute("SELECT customer_id, attribute, value FROM customer_attributes").df()
    income = attrs[attrs.attribute == "income_band"].set_index("customer_id").value
    # Low-income customers are offered a lower price: the income gap must be the largest price gap.
    price = np.where(income == "Under 25K", 5.0, 6.0)
    outcomes = pd.DataFrame(
        {
            "customer_id": income.index,
            "price": price,
            "discount_pct": 100 * (1 - price / 7.0),
            "surplus_change": 7.0 - price,
        }
    )
    view = fairness.fairness_view(sample, "sample", outcomes)
    gaps = view.gaps.set_index(["attribute", "measure"])
    assert gaps.loc[("income_band", "price"), "gap"] == pytest.approx(1.0)
    assert gaps.loc[("income_band", "price"), "low_group"] == "Under 25K"
    assert bool(gaps.loc[("income_band", "price"), "largest"])
    by_age = outcomes.merge(attrs[attrs.attribute == "age_band"], on="customer_id").groupby("value").price.mean()
    expected_age_gap = by_age.max() - by_age.min()
    assert gaps.loc[("age_band", "price"), "gap"] == pytest.approx(expected_age_gap)
    assert expected_age_gap < 1.0


def test_small_groups_suppressed(sample):
    store.set_setting(sample, "min_group_size", 10_000)
    with store.dataset_cursor(sample, "sample") as cur:
        ids = [r[0] for r in cur.execute("SELECT customer_id FROM customers").fetchall()]
    outcomes = pd.DataFrame({"customer_id": ids, "price": 5.0, "discount_pct": 10.0, "surplus_change": 1.0})
    view = fairness.fairness_view(sample, "sample", outcomes)
    assert view.groups.price.isna().all() and view.gaps.empty


def test_scenario_outcomes_price_each_customer_by_segment(sample):
    from dataclasses import replace

    from engine import scenarios, segments
    from tests.test_scenarios import make

    segments.build_rfm(sample, "sample")
    base = make(sample, "RFM prices")
    with store.dataset_cursor(sample, "sample") as cur:
        rfm = cur.execute(
            "SELECT value, count(*) FROM customer_attributes WHERE attribute = 'rfm_segment' GROUP BY 1"
        ).fetchall()
    prices = {value: 5.0 + i / 10 for i, (value, _) in enumerate(sorted(rfm))}
    figures = {value: {"customers": n, "consumer_surplus_change": 2.0 * n} for value, n in rfm}
    scenario = replace(base, segment_attribute="rfm_segment", prices=prices, segment_figures=figures)
    outcomes = fairness.scenario_outcomes(sample, scenario)
    assert len(outcomes) == sum(n for _, n in rfm)
    assert outcomes.surplus_change.eq(2.0).all()
    assert sorted(outcomes.price.unique()) == sorted(prices.values())
    assert outcomes.discount_pct.max() == pytest.approx(100 * (1 - 5.0 / 7.0))
    assert scenarios.FIGURES  # the scenario figures the outcomes come from


def test_pricing_by_a_sensitive_attribute_needs_consent(sample):
    from engine.pricing.bundle import default_segment_attribute
    from engine.pricing.optimize import optimize_price
    from engine.pricing.whatif import project_bundle

    items = ["P0032", "P0047"]
    with pytest.raises(DataError, match="sensitive"):
        optimize_price(sample, "sample", items, "income_band")
    with pytest.raises(DataError, match="sensitive"):
        project_bundle(sample, "sample", items, 4.0, "income_band=Under 25K")
    # Figures broken down by income at one price are analysis, not pricing: allowed.
    assert project_bundle(sample, "sample", items, 4.0, "income_band").segments
    assert default_segment_attribute(sample, "sample") not in fairness.sensitive_attributes(sample)
    store.set_setting(sample, "allow_sensitive_segments", True)
    assert optimize_price(sample, "sample", items, "income_band").segment.attribute == "income_band"
    assert default_segment_attribute(sample, "sample") == "income_band"
