"""The resampled population (scale tests) and the studio's charts."""

from __future__ import annotations

import numpy as np
import pytest

from engine import store
from engine.pricing import charts
from engine.pricing.curves import price_curve
from engine.pricing.population import resample_population
from engine.pricing.whatif import project_bundle
from engine.sources import synthetic


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    connection = store.connect(tmp_path_factory.mktemp("population") / "studio.duckdb")
    synthetic.ingest_sample(connection, "sample")
    store.set_setting(connection, "allow_sensitive_segments", True)  # these tests price by income on purpose
    yield connection
    connection.close()


def test_a_resampled_population_keeps_the_market(con):
    info = resample_population(con, "sample", "big", customers=5000, seed=3, noise=0.0)
    assert info.customers == 5000 and info.source == "population"
    with store.dataset_cursor(con, "big") as cur:
        runs = cur.execute("SELECT run_id, kind FROM model_runs").fetchall()
        attributes = cur.execute("SELECT attribute, count(*) FROM customer_attributes GROUP BY 1 ORDER BY 1").fetchall()
    assert runs == [("truth", "truth")]
    assert attributes == [("age_band", 5000), ("income_band", 5000)]
    small = project_bundle(con, "sample", ["P0001", "P0028"], 5.0).total
    large = project_bundle(con, "big", ["P0001", "P0028"], 5.0).total
    # Without noise every new customer is a copy of a sample customer: per-customer rates agree.
    assert large.figures["take_rate"].value == pytest.approx(small.figures["take_rate"].value, rel=0.1)
    per_customer = small.figures["bundle_units"].value / 500
    assert large.figures["bundle_units"].value / 5000 == pytest.approx(per_customer, rel=0.1)


def test_curves_figure_marks_current_and_optimal_prices(con):
    curve = price_curve(con, "sample", ["P0001", "P0028"], points=11)
    fig = charts.curves_figure(curve, 5.0, 4.5, "USD")
    assert len(fig.data) == 4
    np.testing.assert_allclose(fig.data[0].y, 100 * np.array(curve.figures["take_rate"]))
    lines = [shape.x0 for shape in fig.layout.shapes]
    assert sorted(set(lines)) == [4.5, 5.0] and lines.count(5.0) == lines.count(4.5) == 4  # one per panel
    texts = {a.text for a in fig.layout.annotations}
    assert {"current $5.00", "optimum $4.50", "Bundle take rate", "Consumer surplus change"} <= texts


def test_money_format():
    assert charts.money(-1234.5) == "-$1,234.50"
    assert charts.money(3, "EUR") == "€3.00"
    assert charts.money(3, "SEK") == "3.00 SEK"
