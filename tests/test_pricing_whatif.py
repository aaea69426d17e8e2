"""What-if projections: figure identities, segments, horizon, bands, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine import store
from engine.errors import DataError, ModelError, StudioError
from engine.pricing import whatif
from engine.pricing.curves import price_curve
from engine.sources import synthetic

ITEMS = ["P0001", "P0028"]


@pytest.fixture(scope="module")
def sample_con(tmp_path_factory):
    con = store.connect(tmp_path_factory.mktemp("whatif") / "studio.duckdb")
    synthetic.ingest_sample(con, "sample")
    store.set_setting(con, "allow_sensitive_segments", True)  # these tests price by income on purpose
    yield con
    con.close()


def value(projection, name):
    return projection.total.figures[name].value


def test_figures_add_up(sample_con):
    p = whatif.project_bundle(sample_con, "sample", ITEMS + ["P0004"], 6.0, weeks=4)
    f = {name: fig.value for name, fig in p.total.figures.items()}
    assert f["revenue"] == pytest.approx(f["bundle_revenue"] + (f["revenue_before"] - f["cannibalized_revenue"]))
    assert f["incremental_revenue"] == pytest.approx(f["revenue"] - f["revenue_before"])
    assert f["incremental_margin"] == pytest.approx(f["margin"] - f["margin_before"])
    assert f["bundle_revenue"] == pytest.approx(6.0 * f["bundle_units"])
    assert f["bundle_margin"] == pytest.approx((6.0 - p.bundle_cost) * f["bundle_units"])
    moved = sum(u.cannibalized_units * u.regular_price for u in p.total.items)
    assert f["cannibalized_revenue"] == pytest.approx(moved)
    assert all(u.units_after.value <= u.units_before.value for u in p.total.items)
    assert 0 < f["take_rate"] < 1 and 0 <= f["share_better_off"] <= 1
    assert f["consumer_surplus_per_buyer"] == pytest.approx(f["consumer_surplus_change"] / f["bundle_buyers"])
    assert p.total.customers == 500
    for fig in p.total.figures.values():
        assert fig.low <= fig.value <= fig.high


def test_no_discount_is_no_bundle(sample_con):
    parts = whatif.project_bundle(sample_con, "sample", ITEMS, 1.0).sum_of_parts
    for price in (parts, parts + 2.0):
        p = whatif.project_bundle(sample_con, "sample", ITEMS, price)
        assert value(p, "take_rate") == 0 and value(p, "bundle_units") == 0
        for name in ("incremental_revenue", "incremental_margin", "cannibalized_revenue", "consumer_surplus_change"):
            assert value(p, name) == pytest.approx(0, abs=1e-9)
        assert value(p, "revenue") == pytest.approx(value(p, "revenue_before"))


def test_segments_add_up_to_the_total_and_horizon_scales_linearly(sample_con):
    p = whatif.project_bundle(sample_con, "sample", ITEMS, 5.2, segment="income_band", weeks=4)
    assert [s.segment for s in p.segments] == ["100K+", "25-49K", "50-99K", "Under 25K", "Unknown"]
    assert sum(s.customers for s in p.segments) == p.total.customers == 500
    for name in ("bundle_units", "revenue", "incremental_margin", "consumer_surplus_change"):
        assert sum(s.figures[name].value for s in p.segments) == pytest.approx(value(p, name))
    longer = whatif.project_bundle(sample_con, "sample", ITEMS, 5.2, weeks=8)
    for name in ("bundle_units", "revenue", "incremental_margin", "cannibalized_revenue"):
        assert value(longer, name) == pytest.approx(2 * value(p, name))
    assert value(longer, "take_rate") == pytest.approx(value(p, "take_rate"))
    one = whatif.project_bundle(sample_con, "sample", ITEMS, 5.2, segment="income_band=Under 25K")
    assert one.total.customers == p.segments[3].customers
    assert value(one, "revenue") == pytest.approx(p.segments[3].figures["revenue"].value)


def test_a_price_per_segment(sample_con):
    prices = {"100K+": 6.0, "25-49K": 5.0, "50-99K": 5.5, "Under 25K": 4.5, "Unknown": 5.2}
    p = whatif.project_bundle(sample_con, "sample", ITEMS, prices, segment="income_band")
    assert p.price == prices
    for s in p.segments:
        one = f"income_band={s.segment}"
        alone = whatif.project_bundle(sample_con, "sample", ITEMS, prices[s.segment], segment=one)
        assert s.figures["incremental_margin"].value == pytest.approx(value(alone, "incremental_margin"))
    with pytest.raises(DataError, match="prices per segment must name each of"):
        whatif.project_bundle(sample_con, "sample", ITEMS, {"100K+": 5.0}, segment="income_band")


def test_take_rate_falls_and_surplus_rises_with_the_discount(sample_con):
    curve = price_curve(sample_con, "sample", ITEMS, points=21)
    take = np.array(curve.figures["take_rate"])
    surplus = np.array(curve.figures["consumer_surplus_change"])
    assert (np.diff(take) < 0).all() and (take > 0).all()  # the curve ends one cent below the sum of the parts
    assert curve.prices[-1] == pytest.approx(curve.sum_of_parts - 0.01)
    assert (np.diff(surplus) < 0).all() and (surplus > 0).all()
    projection = whatif.project_bundle(sample_con, "sample", ITEMS, curve.prices[5])
    assert value(projection, "margin") == pytest.approx(curve.figures["margin"][5])
    assert list(curve.to_frame().columns[:2]) == ["price", "discount_pct"]


def test_ensemble_bands_span_the_members(sample_con):
    with store.dataset_cursor(sample_con, "sample") as cur:
        for k, shift in enumerate((0.0, 0.25, -0.25)):
            run = f"ens_{k}"
            cur.execute(
                "INSERT INTO model_runs SELECT $run, 'trained', level, created_at + INTERVAL (1 + $k) HOUR, "
                "'cpu', 1, '{\"ensemble\": \"e1\", \"seed\": ' || $k || '}', '{}' FROM model_runs "
                "WHERE run_id = 'truth'",
                {"run": run, "k": k},
            )
            for table in ("model_items", "model_pairs"):
                cur.execute(
                    f"INSERT INTO {table} SELECT $run, * EXCLUDE (run_id) FROM {table} WHERE run_id = 'truth'",
                    {"run": run},
                )
            cur.execute(
                "INSERT INTO model_customers SELECT $run, customer_id, theta, beta_customer + $shift, "
                "trips_per_week FROM model_customers WHERE run_id = 'truth'",
                {"run": run, "shift": shift},
            )
    p = whatif.project_bundle(sample_con, "sample", ITEMS, 5.0)
    assert p.run_id == "ens_2" and p.band == "range across an ensemble of 3 model runs"
    members = [
        value(whatif.project_bundle(sample_con, "sample", ITEMS, 5.0, run=f"ens_{k}"), "bundle_units") for k in range(3)
    ]
    band = p.total.figures["bundle_units"]
    assert band.value == pytest.approx(members[2])
    assert (band.low, band.high) == (pytest.approx(min(members)), pytest.approx(max(members)))
    assert min(members) < max(members)
    bootstrap = whatif.project_bundle(sample_con, "sample", ITEMS, 5.0, run="truth")
    assert "bootstrap" in bootstrap.band


@pytest.mark.parametrize(
    ("items", "price", "segment", "error", "message"),
    [
        (["P0001", "P002"], 5.0, None, DataError, "close matches: P0020"),
        (["P0001"], 5.0, None, DataError, "2 to 4 different items; found 1"),
        (["P0001", "P0001"], 5.0, None, DataError, "2 to 4 different items"),
        (ITEMS, -1.0, None, DataError, "positive amount"),
        (ITEMS, 5.0, "age", DataError, "expected one of: age_band, income_band"),
        (ITEMS, 5.0, "age_band=200+", DataError, "values: 19-24"),
    ],
)
def test_bad_input_gives_one_line_errors(sample_con, items, price, segment, error, message):
    with pytest.raises(error, match=message) as caught:
        whatif.project_bundle(sample_con, "sample", items, price, segment)
    assert "\n" not in str(caught.value)


def test_a_dataset_without_a_model_says_so(tmp_path):
    con = store.connect(tmp_path / "studio.duckdb")
    synthetic.ingest_sample(con, "bare")
    with store.dataset_cursor(con, "bare") as cur:
        for table in ("model_habits", "model_pairs", "model_customers", "model_items", "model_runs"):
            cur.execute("DROP TABLE " + table)
    with pytest.raises(ModelError, match="train the choice model first"):
        whatif.project_bundle(con, "bare", ITEMS, 5.0)
    with pytest.raises(StudioError, match="no dataset named 'missing'"):
        whatif.project_bundle(con, "missing", ITEMS, 5.0)
