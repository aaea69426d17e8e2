"""The DuckDB projection agrees with the vectorized path, and both with a brute-force recomputation
from the raw exported tables (Python loops, no engine code)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import store
from engine.pricing import bundle as B
from engine.pricing import query, whatif
from engine.pricing.demand import RAW_FIELDS
from engine.pricing.vectorized import load_demand
from engine.sources import synthetic

ITEM_SETS = [("P0001", "P0028"), ("P0013", "P0037"), ("P0004", "P0019", "P0028"), ("P0017", "P0040", "P0043", "P0005")]
SEGMENTS = [None, "income_band", "age_band=35-44"]


def add_trained_run(con, dataset: str, run_id: str = "trained_a", seed: int = 1) -> None:
    """A 'trained' run: truth plus random rho, item price terms and habits (every table in play)."""
    rng = np.random.default_rng(seed)
    with store.dataset_cursor(con, dataset) as cur:
        cur.execute(
            "INSERT INTO model_runs SELECT $run, 'trained', level, created_at + INTERVAL 1 DAY, 'cpu', 1.0, "
            "'{}', '{}' FROM model_runs WHERE run_id = 'truth'",
            {"run": run_id},
        )
        items = cur.execute("SELECT item_id, len(alpha) FROM model_items WHERE run_id = 'truth'").fetchall()
        cur.execute(
            "INSERT INTO model_items SELECT $run, * EXCLUDE (run_id) FROM model_items WHERE run_id = 'truth'",
            {"run": run_id},
        )
        for item, k in items:
            cur.execute(
                "UPDATE model_items SET rho = $rho, beta_item = $beta WHERE run_id = $run AND item_id = $item",
                {"rho": list(rng.normal(0, 0.3, k)), "beta": float(rng.normal(0, 0.3)), "run": run_id, "item": item},
            )
        cur.execute(
            "INSERT INTO model_customers SELECT $run, * EXCLUDE (run_id) FROM model_customers WHERE run_id = 'truth'",
            {"run": run_id},
        )
        cur.execute(
            "INSERT INTO model_pairs SELECT $run, * EXCLUDE (run_id) FROM model_pairs WHERE run_id = 'truth'",
            {"run": run_id},
        )
        cur.execute(
            "INSERT INTO model_trips SELECT $run, * EXCLUDE (run_id) FROM model_trips WHERE run_id = 'truth'",
            {"run": run_id},
        )
        cur.execute("SELECT setseed(0.25)")
        cur.execute(
            "INSERT INTO model_habits SELECT $run, customer_id, item_id, 0.8 * random() "
            "FROM model_customers, (SELECT item_id FROM model_items WHERE run_id = 'truth') "
            "WHERE run_id = 'truth' AND random() < 0.2",
            {"run": run_id},
        )


@pytest.fixture(scope="module")
def sample_con(tmp_path_factory):
    con = store.connect(tmp_path_factory.mktemp("paths") / "studio.duckdb")
    synthetic.ingest_sample(con, "sample")
    store.set_setting(con, "allow_sensitive_segments", True)  # these tests price by income on purpose
    add_trained_run(con, "sample")
    yield con
    con.close()


def sums_both_ways(con, items, prices, weeks, segment, run):
    bundle = B.open_bundle(con, "sample", list(items), B.Segment.parse(segment), run)
    table = query.cached_table(con, bundle, bundle.run.run_id)
    n_seg = len(bundle.segment_values)
    sql = query.aggregate(con, table, bundle.sum_of_parts, prices, weeks, n_seg, len(bundle.items))
    data = load_demand(con, "sample", list(items), B.Segment.parse(segment), run)
    return sql, data.sums(data.customer_prices(prices), weeks), bundle


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(ITEM_SETS),
    st.floats(0.3, 1.2),
    st.sampled_from(SEGMENTS),
    st.sampled_from(["truth", None]),
    st.floats(0.5, 30),
)
def test_sql_path_equals_vectorized_path_at_any_price(sample_con, items, share, segment, run, weeks):
    bundle = B.open_bundle(sample_con, "sample", list(items), B.Segment.parse(segment), run)
    prices = [share * bundle.sum_of_parts * (1 + 0.03 * k) for k in range(len(bundle.segment_values))]
    sql, vectorized, _ = sums_both_ways(sample_con, items, prices, weeks, segment, run)
    assert sql.shape == vectorized.shape == (len(bundle.segment_values), 64, len(RAW_FIELDS))
    np.testing.assert_allclose(sql, vectorized, rtol=1e-9, atol=1e-9)


def test_the_default_run_is_the_latest_trained_run(sample_con):
    with store.dataset_cursor(sample_con, "sample") as cur:
        assert B.choose_run(cur, "sample").run_id == "trained_a"
        assert B.choose_run(cur, "sample", "truth").kind == "truth"
    assert whatif.project_bundle(sample_con, "sample", ["P0001", "P0028"], 5.0).run_id == "trained_a"


def brute_force(con, run, items, price, weeks):
    """Total figures by explicit loops over customers, their replayed trips and subsets, from the raw
    exported rows (the rest of each trip's basket, bundle items left out, is the items' context)."""
    with store.dataset_cursor(con, "sample") as cur:
        item_rows = {
            r[0]: r
            for r in cur.execute(
                "SELECT item_id, popularity, alpha, rho, beta_item, regular_price, unit_cost FROM model_items "
                "WHERE run_id = $run",
                {"run": run},
            ).fetchall()
        }
        customers = cur.execute(
            "SELECT customer_id, theta, beta_customer, trips_per_week FROM model_customers WHERE run_id = $run",
            {"run": run},
        ).fetchall()
        habits = {
            (c, i): h
            for c, i, h in cur.execute(
                "SELECT customer_id, item_id, habit FROM model_habits WHERE run_id = $run", {"run": run}
            ).fetchall()
        }
        pairs = {
            (a, b): c
            for a, b, c in cur.execute(
                "SELECT item_a, item_b, coupling FROM model_pairs WHERE run_id = $run", {"run": run}
            ).fetchall()
        }
        trips_of: dict[str, list[list[str]]] = {}
        for customer_id, basket in cur.execute(
            "SELECT customer_id, items FROM model_trips WHERE run_id = $run ORDER BY trip", {"run": run}
        ).fetchall():
            trips_of.setdefault(customer_id, []).append(basket)
    rows = [item_rows[i] for i in items]
    parts = sum(r[5] for r in rows)
    cost = sum(r[6] for r in rows)

    def dot(x, y):
        return sum(a * b for a, b in zip(x, y, strict=True))

    def coupling(a, b):
        extra = pairs.get((a[0], b[0]), pairs.get((b[0], a[0]), 0.0))
        return dot(a[3], b[2]) + dot(b[3], a[2]) + extra

    subsets = [s for k in range(len(items) + 1) for s in itertools.combinations(range(len(items)), k)]
    pair_slots = list(itertools.combinations(range(len(items)), 2))
    # every replayed trip: (customer row, its basket or None for a customer with none, item utilities)
    trips = []
    for customer_id, theta, beta_c, _trips_per_week in customers:
        b_items = [math.log1p(math.exp(beta_c + r[4])) for r in rows]
        base = [
            r[1] + dot(theta, r[2]) + habits.get((customer_id, r[0]), 0.0) - b_i * r[5]
            for r, b_i in zip(rows, b_items, strict=True)
        ]
        for basket in trips_of.get(customer_id, [None]):
            context = [sum(coupling(r, item_rows[j]) for j in basket or [] if j not in items) for r in rows]
            trips.append((customer_id, basket, [x + c for x, c in zip(base, context, strict=True)]))
    couplings = {(a, b): coupling(rows[a], rows[b]) for a, b in pair_slots}
    if run != "truth":  # a trained run's couplings are re-anchored to the replayed trips' joint purchases
        real = [(basket, u) for _, basket, u in trips if basket is not None]
        observed = {(a, b): sum(items[a] in bk and items[b] in bk for bk, _ in real) for a, b in pair_slots}
        offset = dict.fromkeys(pair_slots, 0.0)
        for _ in range(8):  # Newton steps on every pair at once, prior N(0, 0.5^2)
            step = {}
            for a, b in pair_slots:
                expected, curvature = 0.0, 0.0
                for _, u in real:
                    weights = {
                        s: math.exp(
                            sum(u[k] for k in s) + sum(couplings[p] + offset[p] for p in itertools.combinations(s, 2))
                        )
                        for s in subsets
                    }
                    both = sum(w for s, w in weights.items() if a in s and b in s) / sum(weights.values())
                    expected, curvature = expected + both, curvature + both * (1 - both)
                step[a, b] = (observed[a, b] - expected - offset[a, b] / 0.25) / (curvature + 1 / 0.25)
            offset = {p: offset[p] + step[p] for p in pair_slots}
        couplings = {p: couplings[p] + offset[p] for p in pair_slots}

    total = dict.fromkeys(("units", "revenue", "revenue_before", "margin", "margin_before", "surplus", "trips"), 0.0)
    count = {c: 0 for c, _, _ in trips}
    for c, _, _ in trips:
        count[c] += 1
    tpw = {c[0]: c[3] for c in customers}
    b_of = {c[0]: sum(math.log1p(math.exp(c[2] + r[4])) for r in rows) / len(rows) for c in customers}
    for customer_id, _, u in trips:
        b_bundle = b_of[customer_id]
        util = {s: sum(u[k] for k in s) + sum(couplings[p] for p in itertools.combinations(s, 2)) for s in subsets}
        full = subsets[-1]
        with_bundle = dict(util)
        with_bundle[full] += b_bundle * (parts - price)
        z0 = sum(math.exp(v) for v in util.values())
        z1 = sum(math.exp(v) for v in with_bundle.values())
        horizon = tpw[customer_id] / count[customer_id] * weeks
        for s in subsets:
            p0, p1 = math.exp(util[s]) / z0, math.exp(with_bundle[s]) / z1
            value = sum(rows[k][5] for k in s)
            margin = sum(rows[k][5] - rows[k][6] for k in s)
            total["revenue_before"] += horizon * p0 * value
            total["margin_before"] += horizon * p0 * margin
            if s == full:
                total["units"] += horizon * p1
                total["revenue"] += horizon * p1 * price
                total["margin"] += horizon * p1 * (price - cost)
            else:
                total["revenue"] += horizon * p1 * value
                total["margin"] += horizon * p1 * margin
        total["surplus"] += horizon * (math.log(z1) - math.log(z0)) / b_bundle
        total["trips"] += horizon
    return total


@pytest.mark.parametrize("run", ["truth", "trained_a"])
@pytest.mark.parametrize("items", [("P0001", "P0028"), ("P0004", "P0019", "P0028")])
def test_projection_equals_a_brute_force_recomputation_from_the_raw_tables(sample_con, run, items):
    projection = whatif.project_bundle(sample_con, "sample", list(items), 4.37, weeks=6, run=run)
    expected = brute_force(sample_con, run, items, 4.37, 6)
    figures = projection.total.figures
    assert figures["bundle_units"].value == pytest.approx(expected["units"], rel=1e-5)
    assert figures["revenue"].value == pytest.approx(expected["revenue"], rel=1e-5)
    assert figures["margin"].value == pytest.approx(expected["margin"], rel=1e-5)
    assert figures["revenue_before"].value == pytest.approx(expected["revenue_before"], rel=1e-5)
    assert figures["incremental_margin"].value == pytest.approx(
        expected["margin"] - expected["margin_before"], rel=1e-4, abs=1e-6
    )
    assert figures["consumer_surplus_change"].value == pytest.approx(expected["surplus"], rel=1e-5)
    assert figures["take_rate"].value == pytest.approx(expected["units"] / expected["trips"], rel=1e-5)
    assert json.loads(json.dumps(projection.to_json()))["customers"] == 500


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(ITEM_SETS), st.floats(0.2, 1.0), st.floats(0.0, 1.0))
def test_projection_take_rate_falls_with_price_and_surplus_is_never_negative(sample_con, items, share, step):
    """The invariants on the DuckDB path, per segment and in total."""
    parts = B.open_bundle(sample_con, "sample", list(items), run="truth").sum_of_parts
    low = share * parts
    high = low + step * (parts - low)
    cheap, dear = (
        whatif.project_bundle(sample_con, "sample", list(items), p, "income_band", run="truth") for p in (low, high)
    )
    for a, b in zip((*cheap.segments, cheap.total), (*dear.segments, dear.total), strict=True):
        assert b.figures["take_rate"].value <= a.figures["take_rate"].value + 1e-12
        assert a.figures["consumer_surplus_change"].value >= 0 and b.figures["consumer_surplus_change"].value >= 0
        assert b.figures["consumer_surplus_change"].value <= a.figures["consumer_surplus_change"].value + 1e-9
