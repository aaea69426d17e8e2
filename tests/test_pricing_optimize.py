"""The optimizer on synthetic markets with known truth: accuracy bar, "do not discount", guardrails."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine import store
from engine.pricing import bundle as B
from engine.pricing import demand as D
from engine.pricing.figures import derive
from engine.pricing.guardrails import Guardrails
from engine.pricing.optimize import MIN_GAIN_PCT, optimize_price
from engine.pricing.vectorized import load_demand
from engine.sources import synthetic

LOOSE = Guardrails(max_discount_pct=90, max_segment_spread_pct=None)
WEEKS = 4.0


@pytest.fixture(scope="module")
def markets(tmp_path_factory):
    """'sample' as generated; 'rich' the same market where bundles pay: unit costs at 35% of the
    shelf price and every customer more price sensitive (beta + 1), in the true parameters."""
    # a fixed pseudonymization key: the customers' hash buckets, and so the optimizer's coarse-stage
    # sample, are the same in every run (test_the_sampled_search_keeps_the_bar depends on it)
    previous = os.environ.get("STUDIO_PSEUDONYM_KEY")
    os.environ["STUDIO_PSEUDONYM_KEY"] = "optimizer-tests-fixed-pseudonymization-key-0001"
    con = store.connect(tmp_path_factory.mktemp("optimize") / "studio.duckdb")
    synthetic.ingest_sample(con, "sample")
    store.set_setting(con, "allow_sensitive_segments", True)  # these tests price by income on purpose
    synthetic.ingest_sample(con, "rich")
    with store.dataset_cursor(con, "rich") as cur:
        cur.execute("UPDATE model_items SET unit_cost = round(0.35 * regular_price, 2) WHERE run_id = 'truth'")
        cur.execute("UPDATE model_customers SET beta_customer = beta_customer + 1.0 WHERE run_id = 'truth'")
    yield con
    con.close()
    if previous is None:
        os.environ.pop("STUDIO_PSEUDONYM_KEY", None)
    else:
        os.environ["STUDIO_PSEUDONYM_KEY"] = previous


def true_pairs(con, dataset, sign):
    with store.dataset_cursor(con, dataset) as cur:
        rows = cur.execute(
            "SELECT item_a, item_b FROM model_pairs WHERE run_id = 'truth' AND sign(coupling) = $s "
            "ORDER BY item_a, item_b",
            {"s": sign},
        ).fetchall()
    return [list(r) for r in rows]


def true_optimum(con, dataset, items):
    """Best margin uplift over a one-cent grid from 10% of the sum of the parts up to it, by explicit
    enumeration of the 2^n subset probabilities with the true parameters (no optimizer code)."""
    data = load_demand(con, dataset, items, run="truth")
    parts = data.bundle.sum_of_parts
    before = D.per_customer_enumerated(data.parameters, parts + 1, 1.0).sum(axis=0)
    best_price, best_gain = parts, 0.0
    for price in np.arange(np.ceil(parts * 10) / 100, parts, 0.01):
        after = D.per_customer_enumerated(data.parameters, price, WEEKS).sum(axis=0)
        gain = float(derive(after, before, WEEKS, data.parameters.prices, data.parameters.costs)["incremental_margin"])
        if gain > best_gain:
            best_price, best_gain = float(price), gain
    margin_before = float(derive(before, before, WEEKS, data.parameters.prices, data.parameters.costs)["margin_before"])
    return best_price, best_gain, margin_before


@pytest.mark.slow
def test_optimizer_reaches_90_percent_of_the_true_optimum_on_complement_pairs(markets):
    report = []
    for dataset in ("sample", "rich"):
        for items in true_pairs(markets, dataset, 1):
            price, true_gain, margin_before = true_optimum(markets, dataset, items)
            decision = optimize_price(markets, dataset, items, guardrails=LOOSE, weeks=WEEKS, run="truth")
            gain = decision.incremental_margin
            report.append((dataset, items, price, true_gain, decision.price, gain))
            if true_gain >= MIN_GAIN_PCT / 100 * margin_before:
                assert decision.discount_pays, report[-1]
                assert gain >= 0.9 * true_gain - 1e-9, report[-1]
            else:  # the truth says no discount pays (or a negligible one, under MIN_GAIN_PCT of the margin)
                assert not decision.discount_pays and decision.price == pytest.approx(decision.projection.sum_of_parts)
                assert decision.recommendation.startswith("Do not discount")
    paying = [r for r in report if r[0] == "rich"]
    assert all(r[3] > 0 for r in paying) and len(paying) == 12  # the bar has teeth on the rich market


@pytest.mark.slow
def test_the_sampled_search_keeps_the_bar(markets, monkeypatch):
    """Large populations search on a sample first; with a tiny sample the exact stage still lands
    within 90% of the true optimum (the decision always uses every customer)."""
    from engine.pricing import search

    # 150 of the 500 customers. The sample follows a hash of the pseudonymized ids; with a new key in
    # every test database (before the fixture fixed it) and 60 customers, about one run in three drew
    # a sample skewed enough to miss the bar, since projections replay each customer's trips.
    monkeypatch.setattr(search, "SAMPLE", 150)
    for items in true_pairs(markets, "rich", 1)[:6]:
        _, true_gain, _ = true_optimum(markets, "rich", items)
        decision = optimize_price(markets, "rich", items, guardrails=LOOSE, weeks=WEEKS)
        assert decision.incremental_margin >= 0.9 * true_gain
        assert "random sample of " in decision.strategies[-1].note


@pytest.mark.slow
def test_substitute_pairs_get_no_discount(markets):
    for items in true_pairs(markets, "sample", -1)[:6]:
        _, true_gain, margin_before = true_optimum(markets, "sample", items)
        assert true_gain < MIN_GAIN_PCT / 100 * margin_before  # the truth: no discount pays
        decision = optimize_price(markets, "sample", items, guardrails=LOOSE, weeks=WEEKS)
        assert not decision.discount_pays
        assert "Do not discount" in decision.recommendation
        assert decision.projection.total.figures["incremental_margin"].value == 0


ITEMS = ["P0017", "P0043"]  # a complement pair whose best discount on 'rich' is about 39%


def binding_names(decision):
    return {b.constraint for b in decision.binding_constraints}


def test_max_discount_binds_and_is_reported(markets):
    free = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE)
    decision = optimize_price(markets, "rich", ITEMS, guardrails=Guardrails(max_discount_pct=20))
    parts = decision.projection.sum_of_parts
    assert decision.price == pytest.approx(np.ceil(parts * 0.8 * 100) / 100)
    assert binding_names(decision) == {"max_discount_pct"}
    lost = free.objective_gain - decision.objective_gain
    assert decision.binding_constraints[0].gain_if_relaxed == pytest.approx(lost, rel=0.05)
    assert binding_names(free) == set()


def test_min_margin_binds_and_is_reported(markets):
    cost = B.open_bundle(markets, "rich", ITEMS).bundle_cost
    decision = optimize_price(markets, "rich", ITEMS, guardrails=Guardrails(max_discount_pct=90, min_margin_pct=50))
    assert decision.price >= cost / 0.5 - 1e-9
    assert decision.price == pytest.approx(np.ceil(cost / 0.5 * 100) / 100)
    assert "min_margin_pct" in binding_names(decision)


def test_price_endings_are_respected(markets):
    rails = Guardrails(max_discount_pct=90, price_endings=(".99", ".49"))
    decision = optimize_price(markets, "rich", ITEMS, guardrails=rails)
    assert round(decision.price * 100) % 100 in (99, 49)
    free = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE)
    if round(free.price * 100) % 100 not in (99, 49):
        assert "price_endings" in binding_names(decision)


def test_segment_prices_respect_the_spread(markets):
    loose = optimize_price(markets, "rich", ITEMS, segment="income_band", guardrails=LOOSE)
    tight = optimize_price(
        markets,
        "rich",
        ITEMS,
        segment="income_band",
        guardrails=Guardrails(max_discount_pct=90, max_segment_spread_pct=2),
    )
    parts = tight.projection.sum_of_parts
    assert set(tight.price) == {"100K+", "25-49K", "50-99K", "Under 25K", "Unknown"}
    assert max(loose.price.values()) - min(loose.price.values()) > 0.02 * parts
    assert max(tight.price.values()) - min(tight.price.values()) <= 0.02 * parts + 1e-9
    assert "max_segment_spread_pct" in binding_names(tight)
    assert tight.objective_gain <= loose.objective_gain + 1e-9


def test_stock_limit_binds(markets):
    free = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE)
    units = free.projection.total.figures["bundle_units"].value
    rails = Guardrails(max_discount_pct=90, max_segment_spread_pct=None, stock_limit=units / 2)
    limited = optimize_price(markets, "rich", ITEMS, guardrails=rails)
    assert limited.projection.total.figures["bundle_units"].value <= units / 2 + 1e-6
    assert limited.price > free.price
    assert binding_names(limited) == {"stock_limit"}


def test_impossible_guardrails_say_do_not_offer(markets):
    decision = optimize_price(markets, "sample", ITEMS, guardrails=Guardrails(max_discount_pct=10, min_margin_pct=80))
    assert not decision.discount_pays
    assert decision.recommendation.startswith("Do not offer this bundle")
    assert decision.price == pytest.approx(decision.projection.sum_of_parts)


def test_strategies_compare_side_by_side(markets):
    decision = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE)
    names = [s.name for s in decision.strategies]
    assert names == [
        "No bundle",
        "One price for everyone",
        "Per-segment prices (by income_band)",
        "Per-customer prices",
    ]
    gains = [s.objective_gain for s in decision.strategies]
    assert gains[0] == 0 and gains[1] == pytest.approx(decision.objective_gain)
    assert gains[0] <= gains[1] <= gains[2] + 1e-9 <= gains[3] + 2e-9
    assert not decision.strategies[3].deployable and "NOT deployable" in decision.strategies[3].note
    assert all(s.deployable for s in decision.strategies[:3])
    assert decision.price <= decision.projection.sum_of_parts
    assert decision.projection.prices == (("All customers", decision.price),)  # one price, no segment split
    assert decision.projection.segments == ()


def test_objectives_order_prices(markets):
    margin = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE)
    welfare = optimize_price(markets, "rich", ITEMS, objective="welfare", guardrails=LOOSE, welfare_weight=1.0)
    revenue = optimize_price(markets, "rich", ITEMS, objective="revenue", guardrails=LOOSE)
    assert welfare.price <= margin.price  # weight on surplus: a deeper discount
    assert revenue.price <= margin.price  # revenue ignores unit costs
    assert (
        revenue.projection.total.figures["incremental_revenue"].value
        >= margin.projection.total.figures["incremental_revenue"].value - 1e-6
    )


def test_without_comparison_the_decision_is_the_same(markets):
    full = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE)
    quick = optimize_price(markets, "rich", ITEMS, guardrails=LOOSE, compare=False)
    assert quick.strategies == () and quick.price == full.price
    assert quick.incremental_margin == pytest.approx(full.incremental_margin)
