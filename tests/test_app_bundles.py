"""The Bundles page in AppTest: it renders, filters change the candidates, a choice goes to pricing."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import store
from engine.bundles import BundleQuery, find_bundles
from engine.sources import synthetic
from tests.app_support import chromium_page, require_chromium, served_app

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def app(sample_app_db):
    """The app on a fresh database holding the committed sample, on the Bundles page."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/bundles.py").run()
    return at


def table(at):
    return at.dataframe[0].value


def test_page_renders_candidates_and_heatmap(app):
    assert not app.exception
    assert [t.value for t in app.title] == ["Bundles"]
    assert "model run 'truth'" in app.caption[0].value
    frame = table(app)
    # Default ranking: expected incremental margin at the optimized price; equal margins (no discount
    # pays: 0) keep the model's complementarity order.
    assert len(frame) == 20 and frame["margin"].fillna(0).is_monotonic_decreasing
    for _, tied in frame.groupby(frame["margin"].fillna(0), sort=False):
        assert tied["complementarity"].is_monotonic_decreasing
    charts = app.get("plotly_chart")
    assert len(charts) == 1
    figure = charts[0].proto.spec
    assert "Category" in figure and "complementarity" in figure


@pytest.mark.slow
def test_filters_change_the_candidates(app):
    pairs = table(app)
    app.radio(key="bx_size").set_value(3).run()
    assert not app.exception
    triples = table(app)
    assert all(len(items.split(", ")) == 3 for items in triples["items"])
    app.text_input(key="bx_search").input("item 47").run()
    searched = table(app)
    assert 0 < len(searched) and all("item 47" in bundle for bundle in searched["bundle"])
    app.text_input(key="bx_search").input("").run()
    app.radio(key="bx_level").set_value("category").run()
    assert not app.exception
    assert "train the model to see complementarity" in app.caption[0].value
    assert all(bundle.startswith("Category") and " item " not in bundle for bundle in table(app)["bundle"])
    assert not table(app).equals(pairs)
    app.number_input(key="bx_support").set_value(50.0).run()
    assert not app.exception and len(app.dataframe) == 0 and app.info


@pytest.mark.slow
def test_choosing_a_candidate_stores_it_for_pricing(app, tmp_path):
    choice = app.selectbox(key="bx_choice")
    choice.set_value(choice.options[2]).run()
    app.button(key="bx_price_candidate").click().run()
    assert not app.exception
    con = store.connect(tmp_path / "studio.duckdb")  # same configuration as the app: shares its database
    expected = find_bundles(con, "sample", BundleQuery(top=20)).candidates[2].items
    con.close()
    assert app.session_state["bundle_items"] == list(expected)
    assert app.session_state["bundle_level"] == "product"


@pytest.mark.slow
def test_builder_describes_and_prices_four_items(app):
    app.multiselect(key="bx_builder_items").set_value(["P0024", "P0032", "P0047", "P0011"]).run()
    assert not app.exception
    labels = [m.label for m in app.metric]
    assert "Lift" in labels and "Shared customers" in labels
    app.button(key="bx_price_builder").click().run()
    assert app.session_state["bundle_items"] == ["P0024", "P0032", "P0047", "P0011"]


@pytest.mark.slow
@pytest.mark.browser
def test_bundles_page_in_a_real_browser(tmp_path):
    """Served headless, reached through the navigation: table, heatmap and no exception."""
    require_chromium()
    db = tmp_path / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    expected = find_bundles(con, "sample", BundleQuery(top=20)).candidates[0].names
    con.close()
    with served_app(db, tmp_path / "server.log") as base, chromium_page(1400, 1600) as page:
        page.goto(f"{base}/")
        # Until app.py has run once, Streamlit shows its own pages/ discovery: wait for the router's page.
        page.get_by_role("heading", name="KPI overview").wait_for(timeout=60_000)
        page.get_by_role("link", name="Bundles").click()
        page.get_by_role("heading", name="Bundles").wait_for(timeout=60_000)
        page.get_by_text("candidates pass the filters").wait_for(timeout=60_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
        page.wait_for_selector("[role=gridcell]", state="attached", timeout=60_000)  # the grid's ARIA mirror
        cells = [cell.text_content() for cell in page.locator("[role=gridcell]").all()]
        assert " + ".join(expected) in cells
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 1
        assert page.locator('[data-testid="stException"]').count() == 0
