"""Exports: price list (CSV, Excel) and HTML report carry no identity and no small groups."""

from __future__ import annotations

import io
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


@pytest.mark.slow
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


# ---- hostile names from data: no formula in a spreadsheet, no markup in the report

HOSTILE = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
LINK = '<a href="https://evil.example/">click</a>'
IMAGE = "![img](https://example.com/x.png)"
INCOME_BANDS = "SELECT DISTINCT value FROM customer_attributes WHERE attribute = 'income_band' ORDER BY value"
RENAME_INCOME_BAND = "UPDATE customer_attributes SET value = $text WHERE attribute = 'income_band' AND value = $value"


def hostile(con):
    """A scenario whose name, item names and segment values all start like a formula."""
    return replace(
        make(con, HOSTILE[0]),
        item_names=(HOSTILE[1], HOSTILE[2]),
        segment_attribute="income_band",
        prices={value: 5.0 + k / 10 for k, value in enumerate(HOSTILE)},
        segment_figures={value: {"customers": 50, "take_rate": 0.1, "margin": -12.5} for value in HOSTILE},
    )


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_price_list_csv_writes_names_from_data_as_text(sample, tmp_path):
    import csv

    from engine.spreadsheet_safety import FORMULA_STARTS

    path = exports.write_price_list(sample, [hostile(sample)], tmp_path / "p.csv", "csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["segment"] for r in rows] == ["'" + value for value in HOSTILE]
    assert {r["bundle"] for r in rows} == {"'" + HOSTILE[0]}
    assert {r["items"] for r in rows} == {"'" + " + ".join(HOSTILE[1:3])}
    cells = [v for r in rows for v in r.values()]
    assert not [v for v in cells if v.startswith(FORMULA_STARTS) and not is_number(v)]
    assert {r["margin"] for r in rows} == {"-12.5"} and float(rows[0]["bundle_price"]) == 5.0  # numbers bare
    assert exports.price_list_file(sample, [hostile(sample)], "csv") == path.read_bytes()  # the page's download


def test_price_list_xlsx_has_no_formula_and_keeps_numbers(sample, tmp_path):
    path = exports.write_price_list(sample, [hostile(sample)], tmp_path / "p.xlsx", "xlsx")
    sheet = openpyxl.load_workbook(path).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    rows = [dict(zip(header, (c for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert [r["segment"].value for r in rows] == ["'" + v.replace("\r", "\n") for v in HOSTILE]
    assert {r["bundle"].value for r in rows} == {"'" + HOSTILE[0]}
    assert all(r["margin"].value == -12.5 and r["margin"].data_type == "n" for r in rows)  # a negative number
    assert [r["bundle_price"].value for r in rows] == [5.0 + k / 10 for k in range(len(HOSTILE))]
    assert {r["bundle_price"].data_type for r in rows} == {"n"}
    downloaded = openpyxl.load_workbook(io.BytesIO(exports.price_list_file(sample, [hostile(sample)], "xlsx")))
    assert not [c for row in downloaded.active.iter_rows() for c in row if c.data_type == "f"]


def test_kpi_csv_download_writes_segment_values_as_text(sample):
    """The KPI overview's 'by customer segment' CSV (pages/_display.download_csv writes ``csv_text``)."""
    import csv

    from engine import kpi, spreadsheet_safety

    with store.dataset_cursor(sample, "sample") as cur:
        values = [r[0] for r in cur.execute(INCOME_BANDS).fetchall()]
        for value, text in zip(values, HOSTILE, strict=False):
            cur.execute(RENAME_INCOME_BAND, {"text": text, "value": value})
    table = kpi.breakdown(sample, "sample", kpi.KpiFilter(), "segment", "income_band")
    assert set(HOSTILE[: len(values)]) <= set(table.segment)  # the hostile values reach the table
    rows = list(csv.reader(io.StringIO(spreadsheet_safety.csv_text(table), newline="")))
    segments = [r[rows[0].index("segment")] for r in rows[1:]]
    assert {"'" + v for v in HOSTILE[: len(values)]} <= set(segments)
    assert not [v for r in rows for v in r if v.startswith(spreadsheet_safety.FORMULA_STARTS) and not is_number(v)]
    revenue = [float(r[rows[0].index("revenue")]) for r in rows[1:] if r[rows[0].index("revenue")]]
    assert revenue and all(v > 0 for v in revenue)


def test_report_shows_names_from_data_as_text(sample):
    scenario = replace(
        segmented(sample),
        name=f"{IMAGE} {LINK}",
        item_names=(IMAGE, LINK),
        prices={LINK: 5.49, IMAGE: 5.99, "Unknown": 5.79},
        segment_figures={LINK: {"customers": 80}, IMAGE: {"customers": 40}, "Unknown": {"customers": 150}},
        notes=LINK,
    )
    text = exports.report_html(sample, scenario).replace(plotly.offline.get_plotlyjs(), "")
    # the charts' JSON writes < > / as \u003c \u003e \u002f: read it as plotly.js will
    decoded = text.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u002f", "/").replace('\\"', '"')
    assert "<a href" not in decoded and "<img" not in decoded
    assert "&lt;a href=&quot;https://evil.example/&quot;&gt;click&lt;/a&gt;" in text  # HTML: shown as text
    annotations = [a["text"] for fig in exports._charts(scenario) for a in fig.layout.annotations]
    assert any("&lt;a href" in a for a in annotations) and not any("<a" in a for a in annotations)
