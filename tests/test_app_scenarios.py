"""AppTest of the Scenarios page: save from the Pricing studio, list, compare, manage, open again."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from engine import scenarios, store
from engine.markup import escape_markdown
from engine.sources import synthetic
from tests.test_scenarios import make

IMAGE = "![img](https://example.com/x.png)"
LINKS = '[x](https://evil.example/) <a href="https://evil.example/">y</a>'


@pytest.fixture
def app_db(sample_app_db):
    """The sample with two saved scenarios."""
    con = store.connect(sample_app_db)
    scenarios.price_scenario(con, "sample", "Deal A", ["P0032", "P0047"], price=4.2, notes="first")
    scenarios.price_scenario(con, "sample", "Deal B", ["P0032", "P0047"], price=3.9)
    con.close()
    return sample_app_db


def open_page(path: str) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def test_list_compare_and_fairness(app_db):
    at = open_page("pages/scenarios.py")
    assert at.title[0].value == "Scenarios"
    listed = at.dataframe[0].value
    assert set(listed.name) == {"Deal A", "Deal B"} and set(listed.status) == {"current"}
    compare = at.dataframe[-1].value
    assert "delta: Deal A" in compare.columns and "delta: Deal B" in compare.columns
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("download_button")) == 3  # price list CSV, Excel, HTML report


@pytest.mark.slow
def test_duplicate_rename_delete_with_confirmation(app_db):
    at = open_page("pages/scenarios.py")
    at.selectbox(key="sc_selected").select("Deal A").run()
    at.text_input(key="sc_dup_name").input("Deal A copy")
    at.button[[b.label for b in at.button].index("Duplicate")].click().run()
    assert not at.exception
    con = store.connect(app_db)
    assert {s.name for s in scenarios.list_all(con)} == {"Deal A", "Deal B", "Deal A copy"}
    at.selectbox(key="sc_selected").select("Deal B").run()
    at.button[[b.label for b in at.button].index("Delete")].click().run()  # not confirmed: nothing deleted
    assert "Deal B" in {s.name for s in scenarios.list_all(con)}
    at.checkbox(key="sc_confirm").check()
    at.button[[b.label for b in at.button].index("Delete")].click().run()
    assert not at.exception and "Deal B" not in {s.name for s in scenarios.list_all(con)}


def test_stale_scenario_opens_and_reprojects(app_db):
    con = store.connect(app_db)
    synthetic.ingest_sample(con, "sample")  # re-import: every scenario is stale now
    at = open_page("pages/scenarios.py")
    assert any("Stale" in w.value for w in at.warning)
    at.button(key="sc_reproject").click().run()
    assert not at.exception
    assert scenarios.staleness(con, scenarios.get(con, at.selectbox(key="sc_selected").value)) is None


def test_open_in_studio_restores_the_bundle(app_db):
    at = open_page("pages/scenarios.py")
    at.selectbox(key="sc_selected").select("Deal B").run()
    at.button(key="sc_open").click().run()
    assert not at.exception
    assert at.title[0].value == "Pricing studio"
    assert at.multiselect(key="px_items").value == ["P0032", "P0047"]
    assert at.slider(key="px_price_P0032_P0047").value == pytest.approx(3.9)


def test_save_from_the_pricing_studio(app_db):
    at = open_page("pages/pricing.py")
    at.text_input(key="px_scenario_name").input("From studio")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception
    con = store.connect(app_db)
    saved = scenarios.get(con, "From studio")
    assert len(saved.items) >= 2 and saved.curve["price"]


def test_names_from_data_are_shown_as_text(sample_app_db):
    """A scenario name and a product name that Markdown or Plotly would render as a link or an image."""
    con = store.connect(sample_app_db)
    scenarios.save(con, replace(make(con, LINKS, price=4.2), item_names=(IMAGE, "b"), notes=IMAGE))
    scenarios.save(con, make(con, "Deal B", price=3.9))
    con.close()
    at = open_page("pages/scenarios.py")
    at.selectbox(key="sc_selected").select(LINKS).run()
    at.selectbox(key="sc_baseline").select(LINKS).run()
    assert not at.exception
    label = at.checkbox(key="sc_confirm").label
    assert label == "Yes, delete '" + escape_markdown(LINKS) + "'"
    assert label.startswith(r"Yes, delete '\[x\]\(https\://evil\.example/\) \<a href")
    caption = next(c.value for c in at.caption if "regular" in c.value)
    assert caption.startswith(escape_markdown(IMAGE) + " + ") and caption.endswith("notes: " + escape_markdown(IMAGE))
    texts = [e.value for kind in ("markdown", "caption", "info", "warning", "success") for e in at.get(kind)]
    assert not [t for t in texts if IMAGE in t or LINKS in t]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)  # the comparison chart
    assert "Change vs [x](https://evil.example/) &lt;a href" in spec["layout"]["title"]["text"]
    legend = [trace["name"] for trace in spec["data"]]
    assert legend and not [name for name in legend if "<a" in name]
