"""The Pricing page in AppTest: pick a bundle, move the price, run the optimizer; numbers match the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine import store
from engine.markup import escape_markdown
from engine.pricing.guardrails import Guardrails
from engine.pricing.optimize import optimize_price
from engine.pricing.whatif import project_bundle
from engine.sources import synthetic
from tests.app_support import chromium_page, require_chromium, served_app

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ITEMS = ["P0017", "P0043"]


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh database holding the committed sample, as the app's database."""
    path = tmp_path / "studio.duckdb"
    con = store.connect(path)
    synthetic.ingest_sample(con, "sample")
    store.set_setting(con, "allow_sensitive_segments", True)  # these tests price by income on purpose
    con.close()
    monkeypatch.setenv("STUDIO_DB", str(path))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield path
    st.cache_data.clear()
    st.cache_resource.clear()


def open_pricing(state: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    return at.switch_page("pages/pricing.py").run()


@pytest.fixture
def app(db):
    return open_pricing()


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.slow
def test_pick_a_bundle_move_the_price_and_optimize(app, db):
    assert not app.exception
    assert [t.value for t in app.title] == ["Pricing studio"]
    app.multiselect(key="px_items").set_value(ITEMS).run()
    assert not app.exception
    key = "px_price_" + "_".join(ITEMS)
    app.slider(key=key).set_value(4.25).run()
    assert not app.exception
    con = store.connect(db)
    expected = project_bundle(con, "sample", ITEMS, 4.25, weeks=4).total.figures
    con.close()
    assert metric(app, "Take rate") == f"{100 * expected['take_rate'].value:.1f}%"
    margin = next(m for m in app.metric if m.label == "Margin")
    assert margin.value == f"${expected['margin'].value:,.2f}"
    gain = expected["incremental_margin"].value
    assert margin.proto.delta == ("-" if gain < 0 else "") + f"${abs(gain):,.2f}"  # vs no bundle
    band = expected["take_rate"]
    assert f"band {100 * band.low:.1f}% – {100 * band.high:.1f}%" in [c.value for c in app.caption]
    charts = app.get("plotly_chart")
    assert len(charts) == 2
    app.number_input(key="px_max_discount").set_value(90.0)
    next(b for b in app.button if b.label == "Optimize price").click().run()
    assert not app.exception
    con = store.connect(db)
    decision = optimize_price(con, "sample", ITEMS, guardrails=Guardrails(max_discount_pct=90.0), weeks=4)
    con.close()
    shown = app.success if decision.discount_pays else app.warning  # the engine's verdict, whichever it is
    assert shown and shown[0].value == escape_markdown(decision.recommendation)  # shown as text, not Markdown
    strategies = app.dataframe[-1].value
    assert list(strategies["strategy"])[:2] == ["No bundle", "One price for everyone"]
    assert not strategies["deployable"].iloc[-1]


def test_a_bundle_from_the_bundles_page_priced_per_segment(db):
    at = open_pricing({"bundle_items": ["P0001", "P0028"]})  # what "Price this bundle" leaves behind
    assert not at.exception
    assert at.multiselect(key="px_items").value == ["P0001", "P0028"]
    at.selectbox(key="px_attribute").set_value("income_band").run()
    assert not at.exception
    per_segment = next(d.value for d in at.dataframe if "segment" in d.value.columns)
    assert list(per_segment["segment"]) == ["100K+", "25-49K", "50-99K", "Under 25K", "Unknown", "All customers"]
    assert per_segment["customers"].iloc[:-1].sum() == per_segment["customers"].iloc[-1] == 500
    next(b for b in at.button if b.label == "Optimize price").click().run()
    assert not at.exception
    strategies = at.dataframe[-1].value
    assert "Per-segment prices (by income_band)" in list(strategies["strategy"])


def test_too_few_items_asks_for_more(app):
    app.multiselect(key="px_items").set_value(["P0001"]).run()
    assert not app.exception
    assert app.info[0].value == "Pick 2 to 4 items to price a bundle."


def test_a_dataset_without_a_model_is_explained_not_an_error(db):
    con = store.connect(db)
    synthetic.ingest_sample(con, "bare")
    with store.dataset_cursor(con, "bare") as cur:
        cur.execute("DELETE FROM model_runs")
    con.close()
    at = open_pricing({"dataset": "bare"})
    assert not at.exception and not at.error
    assert "has no choice model yet" in at.info[0].value


@pytest.mark.slow
@pytest.mark.browser
def test_pricing_studio_in_a_real_browser(db, tmp_path):
    """Served headless on the sample: the slider moves the projection, the optimizer answers."""
    require_chromium()
    with served_app(db, tmp_path / "server.log") as base, chromium_page(1400, 2400) as page:
        page.goto(f"{base}/pricing")
        page.get_by_role("heading", name="Pricing studio").wait_for(timeout=120_000)
        caption = page.get_by_text("% off ·")
        caption.wait_for(timeout=120_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=120_000)
        before = caption.inner_text()
        assert before.split("% off")[0].replace(".", "").isdigit()
        page.get_by_role("slider").first.focus()
        for _ in range(20):
            page.keyboard.press("ArrowLeft")  # 20 cents cheaper
        page.wait_for_function(f"!document.body.innerText.includes({before!r})", timeout=60_000)
        assert page.locator('[data-testid="stMetric"]').count() == 6
        assert page.locator(".js-plotly-plot").count() >= 2
        page.get_by_role("button", name="Optimize price").click()
        page.get_by_text("Strategies side by side").wait_for(timeout=120_000)
        verdict = page.get_by_text("Do not discount").count() + page.get_by_text("Offer the bundle at").count()
        assert verdict >= 1
        assert page.locator('[data-testid="stException"]').count() == 0
