"""App tests (Streamlit AppTest, no browser) on a real studio database that starts empty.

The first run is the first launch: it ingests The Complete Journey itself, inside a status box.
Every later test reuses that database and checks the pages against the engine's own numbers.
"""

from __future__ import annotations

import json

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine import kpi, store
from engine.cleaning import RULES
from engine.schema import DEFAULT_COST_RATIO
from engine.sources import files
from pages._common import DATASET_KEY, import_files
from pages._display import format_change, format_kpi

PAGES = [
    ("pages/overview.py", "KPI overview"),
    ("pages/bundles.py", "Bundles"),
    ("pages/pricing.py", "Pricing studio"),
    ("pages/model.py", "Model"),
    ("pages/scenarios.py", "Scenarios"),
    ("pages/customers.py", "Customers"),
    ("pages/tour.py", "Guided tour"),
    ("pages/data.py", "Data"),
]  # later pages extend this list
TIMEOUT = 120


def clear_streamlit_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def first_launch(tmp_path_factory):
    """The app's first run on an empty database (it ingests the default datasets)."""
    db = tmp_path_factory.mktemp("app") / "studio.duckdb"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STUDIO_DB", str(db))
        clear_streamlit_caches()
        at = AppTest.from_file("../app.py", default_timeout=600).run()
        yield db, at
        clear_streamlit_caches()


@pytest.fixture
def db(first_launch):
    clear_streamlit_caches()
    yield first_launch[0]
    clear_streamlit_caches()


@pytest.fixture
def engine_con(db):
    """The engine's view of the app's database (same process: DuckDB shares the open file)."""
    return store.connect(db)


def open_page(path: str) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT).run()
    if path != PAGES[0][0]:
        at.switch_page(path).run()
    return at


def page_filter(con, dataset: str, **narrower) -> kpi.KpiFilter:
    """The overview's default filter (the latest half of the data), optionally narrowed."""
    info = store.get_dataset(con, dataset)
    start, end = kpi.default_period(info.first_day, info.last_day)
    return kpi.KpiFilter(start, end, **narrower)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.slow
def test_first_launch_ingests_the_complete_journey_in_a_status_box(first_launch, engine_con):
    _, at = first_launch
    assert not at.exception
    info = store.get_dataset(engine_con, "completejourney")
    assert info.lines > 1_000_000
    box = at.status[0]
    ingested = store.list_datasets(engine_con)
    assert (
        box.label.startswith("First launch: datasets ready")
        and f"{sum(d.lines for d in ingested):,} lines" in box.label
    )
    said = " ".join(md.value for md in box.markdown)
    assert f"{info.lines:,} lines in {info.baskets:,} baskets" in said
    assert at.title[0].value == "KPI overview" and len(at.metric) == len(kpi.KPI_DEFINITIONS)


@pytest.mark.parametrize("path, heading", PAGES)
def test_every_page_runs_without_exception(db, path, heading):
    at = open_page(path)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == heading
    assert not at.status  # the first launch is over: no ingest box any more


def test_overview_shows_every_kpi_as_the_engine_computes_it(db, engine_con):
    at = open_page("pages/overview.py")
    expected = kpi.headline(engine_con, "completejourney", page_filter(engine_con, "completejourney"))
    assert expected["previous"]["revenue"] is not None  # the default period has a previous period to compare with
    assert [m.label for m in at.metric] == [d.label for d in kpi.KPI_DEFINITIONS.values()]
    for name, definition in kpi.KPI_DEFINITIONS.items():
        assert metric(at, definition.label) == format_kpi(expected[name], definition.unit)
        assert next(m for m in at.metric if m.label == definition.label).help == definition.formula
    shown = " ".join(str(cell) for table in at.table for cell in table.value.to_numpy().ravel())
    assert all(d.formula in shown for d in kpi.KPI_DEFINITIONS.values())  # the definitions table
    assert len(at.get("download_button")) >= 4  # headline, weekly, department, segment CSVs


def test_filters_change_the_numbers(db, engine_con):
    at = open_page("pages/overview.py")
    everything = metric(at, "Revenue")
    at.multiselect(key="kpi_departments_completejourney").set_value(["PRODUCE"]).run()
    produce = kpi.headline(
        engine_con, "completejourney", page_filter(engine_con, "completejourney", departments=("PRODUCE",))
    )
    assert metric(at, "Revenue") == format_kpi(produce["revenue"], "currency") != everything
    at.selectbox(key="kpi_segment_attribute_completejourney").set_value("age_band").run()
    at.selectbox(key="kpi_segment_value_completejourney").set_value("45-54").run()
    segment = kpi.headline(
        engine_con,
        "completejourney",
        page_filter(engine_con, "completejourney", departments=("PRODUCE",), segment=("age_band", "45-54")),
    )
    assert metric(at, "Active customers") == format_kpi(segment["customers"], "count")
    assert not at.exception


def test_cost_ratio_edit_updates_gross_margin(db, engine_con):
    at = open_page("pages/overview.py")
    before = metric(at, "Gross margin")
    try:
        at.selectbox(key="cost_department").set_value("GROCERY")
        at.number_input(key="cost_ratio").set_value(0.5)
        next(b for b in at.get("form_submit_button") if b.label == "Save cost ratio").click().run()
        expected = kpi.headline(engine_con, "completejourney", page_filter(engine_con, "completejourney"))[
            "gross_margin"
        ]
        assert metric(at, "Gross margin") == format_kpi(expected, "ratio") != before
        assert not at.exception
    finally:
        kpi.set_cost_ratio(engine_con, "completejourney", "GROCERY", DEFAULT_COST_RATIO)


def test_charts_have_titles_and_axis_labels(db):
    at = open_page("pages/overview.py")
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert len(charts) >= 6  # four weekly trends, departments, segments
    for spec in charts:
        layout = spec["layout"]
        assert layout["title"]["text"]
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
    revenue = next(s for s in charts if s["layout"]["title"]["text"] == "Revenue per week")
    assert revenue["layout"]["yaxis"]["tickprefix"] == "$" and "USD" in revenue["layout"]["yaxis"]["title"]["text"]


def test_data_page_lists_datasets_cleaning_report_and_schema(db, engine_con):
    at = open_page("pages/data.py")
    info = store.get_dataset(engine_con, "completejourney")
    datasets = at.dataframe[0].value.set_index("dataset")
    assert datasets.loc["completejourney", "lines"] == info.lines
    assert str(datasets.loc["completejourney", "first_day"]) == str(info.first_day)
    report = at.table[0].value
    assert report["Rule"].tolist() == [r.name for r in RULES]
    assert report.set_index("Rule")["Rows"].to_dict() == {rule: f"{rows:,}" for rule, rows in info.cleaning.items()}
    assert report["What it does"].tolist() == [r.description for r in RULES]
    schema = " ".join(str(cell) for frame in at.dataframe[1:] for cell in frame.value.to_numpy().ravel())
    assert "basket_id" in schema and "list_amount" in schema and "cost_ratio" in schema
    assert not at.exception


def test_every_dataset_can_be_picked(db, engine_con):
    # AppTest reruns only the page after the first run, so the sidebar pick is set before it.
    for name in [d.name for d in store.list_datasets(engine_con)]:
        at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
        at.session_state[DATASET_KEY] = name
        at.run()
        assert not at.exception, (name, at.exception)
        assert at.sidebar.selectbox[0].value == name
        expected = kpi.headline(engine_con, name, page_filter(engine_con, name))
        assert metric(at, "Baskets") == format_kpi(expected["baskets"], "count")
        tile = next(m for m in at.metric if m.label == "Baskets")
        assert tile.delta == format_change(expected["change"]["baskets"], "count")  # change vs the first half


def test_data_page_import_form_offers_the_example_mapping(db):
    at = open_page("pages/data.py")
    assert at.text_area[0].value == files.EXAMPLE_MAPPING
    assert any(b.label == "Import" for b in at.get("form_submit_button"))
    assert any("not encrypted at rest" in c.value for c in at.caption)  # the test database is plain
    assert not at.exception


class Upload:
    """What the page hands to ``import_files``: a named file in memory (Streamlit's UploadedFile)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)


def test_uploaded_files_become_a_dataset_with_matching_kpis(db, engine_con):
    transactions = (
        "order_ref,member,sku,order_date,qty,amount_paid,amount_before_discount,shop\n"
        "o1,m1,s1,01/03/2024,2,3.50,4.00,1\n"
        "o1,m1,s2,01/03/2024,1,2.25,2.25,1\n"
        "o2,m2,s1,09/03/2024,1,1.75,2.00,1\n"
    )
    products = "sku,title\ns1,Milk\ns2,Bread\n"
    info = import_files(
        "uploaded",
        Upload("tx.csv", transactions.encode()),
        Upload("p.csv", products.encode()),
        None,
        files.EXAMPLE_MAPPING,
    )
    assert (info.name, info.lines, info.baskets) == ("uploaded", 3, 2)
    assert kpi.headline(engine_con, "uploaded")["revenue"] is None  # 2 customers: suppressed by default
    minimum = store.get_setting(engine_con, "min_group_size")
    store.set_setting(engine_con, "min_group_size", 1)
    try:
        result = kpi.headline(engine_con, "uploaded")
    finally:
        store.set_setting(engine_con, "min_group_size", minimum)
    assert result["revenue"] == pytest.approx(3.50 + 2.25 + 1.75, abs=0.005)
    assert result["discount_rate"] == pytest.approx(1 - 7.50 / 8.25, abs=1e-9)
    store.delete_dataset(engine_con, "uploaded")
