"""KPI defects found in the browser (issue 9, section 8), each pinned by a test.

- Weekly buckets are calendar weeks (Monday to Sunday): one row per week start, ``days`` = the
  days of the week inside the period (7 unless the period or the data cuts the week), whatever
  the dataset's own week numbering says; the overview's trend lines leave partial weeks out.
- Small groups: every KPI figure (headline or breakdown row) over fewer than
  ``min_group_size`` customers is suppressed, with or without a segment filter.
- Ordinal bands (income, age, sizes) sort in their natural order, 'Unknown' last.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine import kpi, store
from engine.ordering import natural_order
from tests.test_kpi import (
    CENT,
    DEMOGRAPHICS,
    PRODUCTS,
    SHELF_PRICE,
    assert_kpis,
    cleaned_lines,
    expected_kpis,
    ingest_raw,
    raw_dataset,
)

WEEKS_FIRST_DAY = date(2023, 1, 1)  # a Sunday, like the Complete Journey's first day (2017-01-01)
WEEKS_LAST_DAY = date(2023, 3, 6)  # a Monday, like its last day (2018-01-01)
CLOSED_DAY = date(2023, 2, 8)  # a Wednesday without baskets (the store was closed): the week is still whole


def write_raw(folder, lines: pd.DataFrame, promotions: pd.DataFrame) -> None:
    PRODUCTS.to_csv(folder / "stage_products.csv", index=False)
    lines.to_csv(folder / "stage_lines.csv", index=False)
    DEMOGRAPHICS.to_csv(folder / "stage_customer_attributes.csv", index=False)
    promotions.to_csv(folder / "stage_promotions.csv", index=False)


def daily_lines(seed: int = 11) -> pd.DataFrame:
    """Baskets on every day from a Sunday to a Monday (but one closed day), numbered in weeks like the
    Complete Journey's: a week runs from Monday noon to Monday noon, so it spans 8 calendar days."""
    rng = np.random.default_rng(seed)
    rows = []
    day, basket = WEEKS_FIRST_DAY, 0
    while day <= WEEKS_LAST_DAY:
        for _ in range(0 if day == CLOSED_DAY else 3):
            ts = pd.Timestamp(day) + pd.Timedelta(minutes=int(rng.integers(480, 1200)))
            customer = f"C{rng.integers(1, 6)}"
            for product in rng.choice(["P1", "P2", "P3", "P4", "P5"], size=int(rng.integers(1, 4)), replace=False):
                quantity = int(rng.integers(1, 3))
                amount = round(quantity * SHELF_PRICE[product], 2)
                rows.append((f"B{basket:04d}", customer, ts, product, quantity, amount, amount, 0, 0))
            basket += 1
        day += timedelta(days=1)
    columns = ["basket_id", "customer_id", "ts", "product_id", "quantity", "paid", "list_amount",
               "retail_discount", "coupon_discount"]  # fmt: skip
    lines = pd.DataFrame(rows, columns=columns)
    monday_noon = pd.Timestamp(WEEKS_FIRST_DAY) - pd.Timedelta(days=6) + pd.Timedelta(hours=12)
    lines["week"] = (lines["ts"] - monday_noon).dt.days // 7 + 1
    return lines


NO_PROMOTIONS = pd.DataFrame({"product_id": ["P1"], "week": [1], "display": [False], "mailer": [False]})


@pytest.fixture
def weekly(con, tmp_path):
    lines = daily_lines()
    write_raw(tmp_path, lines, NO_PROMOTIONS)
    ingest_raw(con, tmp_path, "weekly")
    store.set_setting(con, "min_group_size", 1)
    return con, lines


def expected_weeks(lines: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Calendar weeks (Monday first) recomputed in pandas from the raw lines."""
    frame = cleaned_lines(lines, NO_PROMOTIONS)
    frame = frame[(frame["day"] >= start) & (frame["day"] <= end)].copy()
    frame["week_start"] = frame["day"].map(lambda d: d - timedelta(days=d.weekday()))
    first_monday = WEEKS_FIRST_DAY - timedelta(days=WEEKS_FIRST_DAY.weekday())
    covered_from, covered_to = max(start, WEEKS_FIRST_DAY), min(end, WEEKS_LAST_DAY)
    rows = []
    for week_start, part in frame.groupby("week_start"):
        week_end = week_start + timedelta(days=6)
        days = (min(week_end, covered_to) - max(week_start, covered_from)).days + 1
        rows.append(
            {"week_start": week_start, "week": (week_start - first_monday).days // 7 + 1, "days": days,
             "days_with_baskets": part["day"].nunique(), "partial": days < 7} | expected_kpis(part)
        )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "start, end",
    [
        (WEEKS_FIRST_DAY, WEEKS_LAST_DAY),  # the whole data: a 1-day first week and a 1-day last week
        (date(2023, 1, 11), date(2023, 2, 20)),  # from a Wednesday to a Monday
        (date(2023, 1, 30), date(2023, 2, 26)),  # four whole weeks, the closed day among them
    ],
)
def test_weekly_buckets_are_calendar_weeks_with_their_days(weekly, start, end):
    con, lines = weekly
    rows = kpi.breakdown(con, "weekly", kpi.KpiFilter(start, end), "week")
    expected = expected_weeks(lines, start, end)
    assert rows["week_start"].tolist() == expected["week_start"].tolist()
    assert rows["week_start"].is_unique and all(d.weekday() == 0 for d in rows["week_start"])
    for column in ("week", "days", "days_with_baskets", "partial"):
        assert rows[column].tolist() == expected[column].tolist(), column
    for row, want in zip(rows.to_dict("records"), expected.to_dict("records"), strict=True):
        assert_kpis(row, {name: want[name] for name in kpi.KPI_NAMES})
    assert rows["days"].between(1, 7).all()
    assert not rows["partial"].iloc[1:-1].any()  # only the first and last week may be cut
    assert rows["revenue"].sum() == pytest.approx(expected["revenue"].sum(), abs=CENT)


def test_weekly_chart_leaves_partial_weeks_out_and_says_so(weekly, tmp_path, monkeypatch):
    con, _ = weekly
    info = store.get_dataset(con, "weekly")
    start, end = kpi.default_period(info.first_day, info.last_day)
    weeks = kpi.breakdown(con, "weekly", kpi.KpiFilter(start, end), "week")
    assert weeks["partial"].iloc[0] and weeks["partial"].iloc[-1]  # the default period cuts both ends here
    at = open_overview(con, monkeypatch)
    full = [str(d) for d in weeks.loc[~weeks["partial"], "week_start"]]
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    trends = [c for c in charts if "per week" in c["layout"]["title"]["text"]]
    assert trends
    for chart in trends:
        assert [str(x)[:10] for x in chart["data"][0]["x"]] == full
    captions = " ".join(c.value for c in at.caption)
    assert "partial" in captions.lower() and str(weeks["week_start"].iloc[0]) in captions


# ---- small groups ------------------------------------------------------------------------------


@pytest.fixture
def three_customers(con, tmp_path):
    """An imported dataset of three customers (the default minimum group size is 10)."""
    lines, promotions = raw_dataset()
    lines = lines[lines["customer_id"].isin(["C1", "C2", "C3"])]
    write_raw(tmp_path, lines, promotions)
    ingest_raw(con, tmp_path, "three")
    return con, lines, promotions


def test_headline_over_fewer_customers_than_the_minimum_is_suppressed(three_customers):
    con, lines, promotions = three_customers
    assert kpi.min_group_size(con) == 10
    info = store.get_dataset(con, "three")
    for flt in (kpi.KpiFilter(), kpi.KpiFilter(*kpi.default_period(info.first_day, info.last_day))):
        result = kpi.headline(con, "three", flt)
        assert all(result[name] is None for name in kpi.KPI_NAMES), flt
        assert all(value is None for value in result["previous"].values())
        assert "fewer than 10 customers" in result["suppressed"]
    for by in ("week", "department"):
        rows = kpi.breakdown(con, "three", by=by)
        assert rows[list(kpi.KPI_NAMES)].isna().all().all() and (rows["suppressed"] != "").all(), by
    store.set_setting(con, "min_group_size", 3)  # the analyst lowers the bar: the figures come back
    assert kpi.headline(con, "three")["revenue"] == pytest.approx(
        expected_kpis(cleaned_lines(lines, promotions))["revenue"], abs=CENT
    )


def test_overview_shows_no_revenue_for_three_customers(three_customers, monkeypatch):
    con, lines, promotions = three_customers
    at = open_overview(con, monkeypatch)
    assert not at.exception, at.exception
    revenue = expected_kpis(cleaned_lines(lines, promotions))["revenue"]
    shown = " ".join(
        [m.value for m in at.metric]
        + [e.value for kind in ("markdown", "caption", "info", "warning") for e in at.get(kind)]
        + [str(cell) for frame in at.dataframe for cell in frame.value.to_numpy().ravel()]
    )
    assert not at.metric  # no headline figure at all
    assert f"{revenue:,.2f}" not in shown and f"{revenue:.2f}" not in shown
    assert "active customers" not in shown.lower()
    assert any("suppressed" in info.value for info in at.info)


def open_overview(con, monkeypatch) -> AppTest:
    """The overview page over ``con``'s database (holding one dataset, so the app ingests nothing)."""
    db = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
    monkeypatch.setenv("STUDIO_DB", db)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        return AppTest.from_file("../app.py", default_timeout=120).run()
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


# ---- natural order of bands ----------------------------------------------------------------------

CJ_INCOME_BANDS = [
    "Under 15K", "15-24K", "25-34K", "35-49K", "50-74K", "75-99K", "100-124K", "125-149K", "150-174K",
    "175-199K", "200-249K", "250K+", "Unknown",
]  # fmt: skip
CJ_AGE_BANDS = ["19-24", "25-34", "35-44", "45-54", "55-64", "65+", "Unknown"]


@pytest.mark.parametrize("expected", [CJ_INCOME_BANDS, CJ_AGE_BANDS])
def test_natural_order_of_the_complete_journey_bands(expected):
    for seed in range(5):
        shuffled = list(np.random.default_rng(seed).permutation(expected))
        assert natural_order(shuffled) == expected
    assert natural_order(sorted(expected)) == expected  # text order, as the database lists them


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], []),
        (["Unknown", "b", "a", "10", "9"], ["9", "10", "a", "b", "Unknown"]),  # numbers, then text, Unknown last
        (["2M+", "500K-999K", "1-2M", "Under 500K"], ["Under 500K", "500K-999K", "1-2M", "2M+"]),
        (["$1,000-1,999", "$500-999", "$2,000+"], ["$500-999", "$1,000-1,999", "$2,000+"]),
        (["5+", "1", "3", "2", "4"], ["1", "2", "3", "4", "5+"]),
        (["2 Adults Kids", "1 Adult No Kids", "2 Adults No Kids", "1 Adult Kids", "Unknown"],
         ["1 Adult Kids", "1 Adult No Kids", "2 Adults Kids", "2 Adults No Kids", "Unknown"]),
        (["Renter", "Homeowner", "Unknown", "Probable Renter"], ["Homeowner", "Probable Renter", "Renter", "Unknown"]),
        (["10 Miles", "2 Miles"], ["2 Miles", "10 Miles"]),  # 'M' of a word is not a million
        (["0.5-1.5", "0.25-0.5"], ["0.25-0.5", "0.5-1.5"]),
        (["unknown", "a"], ["a", "unknown"]),
    ],
)  # fmt: skip
def test_natural_order_edge_cases(values, expected):
    assert natural_order(values) == expected


def test_segment_breakdown_and_choices_list_bands_in_natural_order(con, tmp_path):
    bands = ["100-124K", "15-24K", "Under 15K", "250K+"]
    demographics = pd.DataFrame(
        {"customer_id": ["C1", "C2", "C3", "C4"], "age_band": ["65+", "19-24", "35-44", "19-24"], "income_band": bands}
    )
    write_raw(tmp_path, *raw_dataset())
    demographics.to_csv(tmp_path / "stage_customer_attributes.csv", index=False)
    ingest_raw(con, tmp_path, "bands")
    store.set_setting(con, "min_group_size", 1)
    natural = ["Under 15K", "15-24K", "100-124K", "250K+", "Unknown"]  # C5 has no demographics
    assert kpi.segment_values(con, "bands", "income_band") == natural
    rows = kpi.breakdown(con, "bands", by="segment", attribute="income_band")
    assert rows["segment"].tolist() == natural
    assert kpi.breakdown(con, "bands", by="segment", attribute="age_band")["segment"].tolist() == [
        "19-24", "35-44", "65+", "Unknown"
    ]  # fmt: skip
