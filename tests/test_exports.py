"""Exports: price list (CSV, Excel) and HTML report carry no identity and no small groups."""

from __future__ import annotations

import re
from dataclasses import replace

import openpyxl
import pandas as pd
import plotly.offline
import pytest

from engine import exports, store
from engine.errors import DataError
from engine.sources import synthetic
from tests.test_scenarios import make


@pytest.fixture
def sample(con):
    synthetic.ingest_sample(con, "sample")
    return con


def segmented(con):
    base = make(con, "By income")
    return replace(
        base,
        segment_attribute="income_band",
        prices={"Under 25K": 5.49, "100K+": 5.99, "Unknown": 5.79},
        segment_figures={
            "Under 25K": {"customers": 80, "take_rate": 0.2, "margin": 120.0},
            "100K+": {"customers": 4, "take_rate": 0.9, "margin": 11.0},
            "Unknown": {"customers": 150, "take_rate": 0.1, "margin": 90.0},
        },
        uses_personal_data=True,
        curve={"price": [4.0, 5.0, 6.0], "margin": [10.0, 12.0, 9.0], "revenue": [40.0, 45.0, 41.0]},
    )


def identifiers(con) -> set[str]:
    with store.dataset_cursor(con, "sample") as cur:
        ids = {r[0] for r in cur.execute("SELECT customer_id FROM customers").fetchall()}
    return ids | set(synthetic.read().customers.customer_id)


def test_price_list_suppresses_small_segments_and_carries_notice(sample):
    table = exports.price_list(sample, [segmented(sample)])
    rows = table.set_index("segment")
    assert list(table.columns) == exports.PRICE_LIST_COLUMNS
    assert pd.isna(rows.loc["100K+", "take_rate"]) and "fewer than 10" in rows.loc["100K+", "note"]
    assert rows.loc["Under 25K", "take_rate"] == 0.2
    assert rows.loc["Under 25K", "discount_pct"] == pytest.approx(round(100 * (1 - 5.49 / 7.0), 1))
    assert all("personal data" in note for note in table.note)


def test_csv_and_xlsx_contain_no_identifier_and_no_small_group(sample, tmp_path):
    scenario = segmented(sample)
    csv = exports.write_price_list(sample, [scenario], tmp_path / "p.csv", "csv")
    xlsx = exports.write_price_list(sample, [scenario], tmp_path / "p.xlsx", "xlsx")
    html = exports.write_report(sample, scenario, tmp_path / "r.html")
    cells = [str(c.value) for row in openpyxl.load_workbook(xlsx).active.iter_rows() for c in row]
    library = plotly.offline.get_plotlyjs()  # the embedded library's own digits are not data
    texts = {"csv": csv.read_text(), "xlsx": "\n".join(cells), "html": html.read_text().replace(library, "")}
    assert len(texts["html"]) < 100_000
    ids = identifiers(sample)
    for name, text in texts.items():
        # whole values only (a cell, a quoted string): "000020" inside 1.000020 or inside the
        # base64 of a chart's data is not an identifier
        leaks = [i for i in ids if re.search(rf"(?:^|(?<=[\s\"'>,;])){re.escape(i)}(?=[\s\"'<,;]|$)", text, flags=re.M)]
        assert not leaks, f"{name} export leaks a customer identifier"
    assert "0.9" not in texts["csv"].split("100K+")[1].splitlines()[0]  # the 4-customer segment's take rate
    assert "personal data" in texts["xlsx"] and "personal data" in texts["html"]


def test_report_is_self_contained_with_charts(sample, tmp_path):
    text = exports.report_html(sample, segmented(sample))
    assert text.count("Plotly.newPlot") == 2  # price curve and effect bars
    assert "<script src=" not in text  # plotly.js inline, no network needed
    assert "cost = 72% of shelf price" in text and "By income" in text


def test_unknown_format_is_refused(sample, tmp_path):
    with pytest.raises(DataError, match="csv or xlsx"):
        exports.write_price_list(sample, [segmented(sample)], tmp_path / "p.pdf", "pdf")


@pytest.mark.browser
def test_report_opens_in_chromium_with_its_charts_drawn(sample, tmp_path):
    from tests.app_support import chromium_page, require_chromium

    require_chromium()
    path = exports.write_report(sample, segmented(sample), tmp_path / "report.html")
    with chromium_page(1200, 900) as page:
        page.goto(path.resolve().as_uri())
        page.get_by_role("heading", name="By income").wait_for(timeout=30_000)
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 2
        # drawn, not just placed: the price curve has its traces and the bar chart its bars
        assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2
        assert page.locator(".js-plotly-plot .barlayer .point").count() >= 1
        assert "personal data" in page.locator(".notice").inner_text()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
