"""KPI engine: every KPI equals an independent pandas recomputation from the raw files, to the cent.

A small raw dataset is written to CSV files, ingested through the canonical staging path
(stage_* relations + ``engine.cleaning.finish_dataset``), and the KPIs are recomputed in pandas
from the raw rows: current and previous period, change, filters, and every breakdown row.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import kpi, store
from engine.cleaning import finish_dataset
from engine.errors import DataError
from engine.schema import DEFAULT_COST_RATIO

ROOT = Path(__file__).resolve().parents[1]
CENT = 0.005
FIRST_DAY = date(2024, 1, 1)  # a Monday; the raw data has no basket on Sundays
PRODUCTS = pd.DataFrame(
    [
        ("P1", "Milk 1l", "DAIRY", "MILK", "Farm", 0.80),
        ("P2", "Bread", "BAKERY", "BREAD", None, None),
        ("P3", "Apples 1kg", "PRODUCE", "FRUIT", None, None),
        ("P4", "Cheddar", "DAIRY", "CHEESE", "Farm", 2.10),
        ("P5", "Cola 2l", "GROCERY", "SOFT DRINKS", "Fizz", None),
        ("P6", "Unleaded", "FUEL", "GASOLINE", None, None),
    ],
    columns=["product_id", "name", "department", "category", "brand", "unit_cost"],
)
SHELF_PRICE = {"P1": 1.19, "P2": 2.49, "P3": 3.99, "P4": 4.59, "P5": 1.99, "P6": 3.10}
DEMOGRAPHICS = pd.DataFrame(
    [("C1", "25-34", "50-74K"), ("C2", "35-44", None), ("C3", "35-44", "75-99K"), ("C4", None, "50-74K")],
    columns=["customer_id", "age_band", "income_band"],
)  # C5 has no demographics row at all: every attribute is 'Unknown'


def raw_dataset(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw transactions over 8 weeks (with a fuel line, a void and a duplicated line) and promotions."""
    rng = np.random.default_rng(seed)
    rows = []
    for basket in range(90):
        day = FIRST_DAY + timedelta(days=int(rng.integers(0, 56)))
        if day.weekday() == 6:
            day -= timedelta(days=1)
        customer = f"C{rng.integers(1, 6)}"
        ts = pd.Timestamp(day) + pd.Timedelta(minutes=int(rng.integers(480, 1200)))
        for product in rng.choice(["P1", "P2", "P3", "P4", "P5"], size=int(rng.integers(1, 5)), replace=False):
            quantity = int(rng.integers(1, 4))
            list_amount = round(quantity * SHELF_PRICE[product], 2)
            retail = round(list_amount * float(rng.choice([0, 0, 0.1, 0.25])), 2)
            coupon = 0.5 if rng.random() < 0.1 and list_amount - retail > 1 else 0.0
            rows.append(
                (
                    f"B{basket:03d}",
                    customer,
                    ts,
                    product,
                    quantity,
                    round(list_amount - retail - coupon, 2),
                    list_amount,
                    retail,
                    coupon,
                )
            )
    rows.append(("B000", rows[0][1], rows[0][2], "P6", 12.5, 38.75, 38.75, 0.0, 0.0))  # fuel: dropped
    rows.append(("B001", rows[1][1], rows[1][2], "P5", 0, 0.0, 0.0, 0.0, 0.0))  # void: dropped
    duplicate = rows[2]
    rows.append((duplicate[0], duplicate[1], duplicate[2], duplicate[3], 1, 1.00, 1.50, 0.50, 0.0))  # merged
    lines = pd.DataFrame(
        rows,
        columns=[
            "basket_id",
            "customer_id",
            "ts",
            "product_id",
            "quantity",
            "paid",
            "list_amount",
            "retail_discount",
            "coupon_discount",
        ],
    )
    lines["week"] = (lines["ts"].dt.normalize() - pd.Timestamp(FIRST_DAY)).dt.days // 7 + 1
    promotions = pd.DataFrame(
        [
            ("P1", 2, True, False),
            ("P1", 3, False, True),
            ("P3", 2, True, True),
            ("P5", 5, False, False),
            ("P5", 6, True, False),
        ],
        columns=["product_id", "week", "display", "mailer"],
    )  # P5 week 5: a promotion row with neither display nor mailer, so not promoted
    return lines, promotions


CSV = "read_csv($path, header = true, all_varchar = true)"
STAGE_SQL = {  # the staging contract of engine.schema, filled from the raw CSV files
    "stage_products": f"""
        SELECT product_id, name, department, category, brand, unit_cost::DOUBLE AS unit_cost FROM {CSV}""",
    "stage_lines": f"""
        SELECT basket_id, customer_id, ts::TIMESTAMP AS ts, week::INTEGER AS week, NULL::VARCHAR AS store_id,
               product_id, quantity::DOUBLE AS quantity, paid::DOUBLE AS paid, list_amount::DOUBLE AS list_amount,
               retail_discount::DOUBLE AS retail_discount, coupon_discount::DOUBLE AS coupon_discount
        FROM {CSV}""",
    "stage_customer_attributes": f"""
        UNPIVOT (SELECT * FROM {CSV}) ON COLUMNS(* EXCLUDE customer_id) INTO NAME attribute VALUE value""",
    "stage_promotions": f"""
        SELECT product_id, week::INTEGER AS week, display::BOOLEAN AS display, mailer::BOOLEAN AS mailer FROM {CSV}""",
}


def ingest_raw(con, folder, name: str = "tiny") -> store.DatasetInfo:
    """Ingest the CSV files in ``folder`` through the staging contract and the cleaning rules."""

    def build(cur):
        for relation, select in STAGE_SQL.items():
            cur.execute(f"CREATE TEMP TABLE {relation} AS " + select, {"path": str(folder / f"{relation}.csv")})
        report = finish_dataset(cur)
        for relation in STAGE_SQL:
            cur.execute(f"DROP TABLE {relation}")
        return report, {"currency": "USD"}

    return store.replace_dataset(con, name, "files", build)


@pytest.fixture
def raw(tmp_path):
    lines, promotions = raw_dataset()
    PRODUCTS.to_csv(tmp_path / "stage_products.csv", index=False)
    lines.to_csv(tmp_path / "stage_lines.csv", index=False)
    DEMOGRAPHICS.to_csv(tmp_path / "stage_customer_attributes.csv", index=False)
    promotions.to_csv(tmp_path / "stage_promotions.csv", index=False)
    return tmp_path, lines, promotions


@pytest.fixture
def tiny(con, raw):
    ingest_raw(con, raw[0])
    store.set_setting(con, "min_group_size", 1)  # five customers: show every group (see the suppression test)
    return con


# ---- the independent recomputation, from the raw rows ----------------------------------------


def cleaned_lines(
    lines: pd.DataFrame, promotions: pd.DataFrame, ratios: dict[str, float] | None = None
) -> pd.DataFrame:
    """Raw lines minus fuel and voids (the two cleaning rules this data triggers), with cost and promotion flag."""
    frame = lines.merge(PRODUCTS, on="product_id")
    frame = frame[(frame["department"] != "FUEL") & (frame["quantity"] > 0)].copy()
    frame["day"] = frame["ts"].dt.date
    ratio = frame["department"].map(lambda d: (ratios or {}).get(d, DEFAULT_COST_RATIO))
    frame["cost"] = np.where(
        frame["unit_cost"].notna(), frame["quantity"] * frame["unit_cost"], frame["list_amount"] * ratio
    )
    promoted = promotions[promotions["display"] | promotions["mailer"]][["product_id", "week"]].assign(promoted=True)
    frame = frame.merge(promoted, on=["product_id", "week"], how="left")
    frame["promoted"] = frame["promoted"].eq(True)
    demographics = DEMOGRAPHICS.set_index("customer_id")
    for attribute in ("age_band", "income_band"):
        frame[attribute] = frame["customer_id"].map(demographics[attribute]).fillna("Unknown")
    return frame


def expected_kpis(frame: pd.DataFrame) -> dict:
    revenue = frame["paid"].sum()
    baskets = frame["basket_id"].nunique()
    return {
        "revenue": revenue,
        "units": frame["quantity"].sum(),
        "baskets": baskets,
        "aov": revenue / baskets,
        "items_per_basket": len(frame.drop_duplicates(["basket_id", "product_id"])) / baskets,
        "customers": frame["customer_id"].nunique(),
        "discount_rate": (frame["list_amount"].sum() - revenue) / frame["list_amount"].sum(),
        "promo_share": frame.loc[frame["promoted"], "paid"].sum() / revenue,
        "gross_margin": (revenue - frame["cost"].sum()) / revenue,
    }


def select(frame: pd.DataFrame, start: date, end: date, departments=(), segment=None) -> pd.DataFrame:
    keep = (frame["day"] >= start) & (frame["day"] <= end)
    if departments:
        keep &= frame["department"].isin(departments)
    if segment:
        keep &= frame[segment[0]] == segment[1]
    return frame[keep]


def assert_kpis(actual: dict, expected: dict) -> None:
    for name, value in expected.items():
        tolerance = CENT if kpi.KPI_DEFINITIONS[name].unit == "currency" else 1e-9
        assert actual[name] == pytest.approx(value, abs=tolerance), name


# ---- tests -------------------------------------------------------------------------------------


def test_headline_equals_pandas_over_the_whole_dataset(tiny, raw):
    frame = cleaned_lines(raw[1], raw[2])
    result = kpi.headline(tiny, "tiny")
    assert_kpis(result, expected_kpis(frame))
    assert (result["start"], result["end"]) == (min(frame["day"]), max(frame["day"]))
    assert all(value is None for value in result["previous"].values())  # nothing before the first day
    assert result["items_per_basket"] < frame.groupby("basket_id").size().mean()  # the duplicated line counts once


def test_headline_filters_and_change_vs_previous_period(tiny, raw):
    frame = cleaned_lines(raw[1], raw[2])
    start, end = date(2024, 1, 22), date(2024, 2, 11)  # 21 days; previous: 2024-01-01 to 2024-01-21
    for departments, segment in [
        ((), None),
        (("DAIRY", "PRODUCE"), None),
        ((), ("age_band", "35-44")),
        (("DAIRY",), ("income_band", "Unknown")),
    ]:
        flt = kpi.KpiFilter(start, end, departments, segment)
        result = kpi.headline(tiny, "tiny", flt)
        current = expected_kpis(select(frame, start, end, departments, segment))
        previous = expected_kpis(select(frame, date(2024, 1, 1), date(2024, 1, 21), departments, segment))
        assert_kpis(result, current)
        assert_kpis(result["previous"], previous)
        assert (result["previous_start"], result["previous_end"]) == (date(2024, 1, 1), date(2024, 1, 21))
        assert result["change"]["revenue"] == pytest.approx(current["revenue"] / previous["revenue"] - 1, abs=1e-9)
        assert result["change"]["gross_margin"] == pytest.approx(
            current["gross_margin"] - previous["gross_margin"], abs=1e-9
        )


@pytest.mark.parametrize("departments", [(), ("DAIRY", "BAKERY", "GROCERY")])
@pytest.mark.parametrize("by, key", [("week", "week"), ("department", "department"), ("segment", "age_band")])
def test_breakdown_rows_equal_pandas(tiny, raw, by, key, departments):
    frame = cleaned_lines(raw[1], raw[2])
    flt = kpi.KpiFilter(date(2024, 1, 8), date(2024, 2, 25), departments)
    rows = kpi.breakdown(tiny, "tiny", flt, by, attribute="age_band" if by == "segment" else None)
    scoped = select(frame, flt.start, flt.end, flt.departments)
    expected = {group: expected_kpis(part) for group, part in scoped.groupby(key)}
    column = "segment" if by == "segment" else key
    assert sorted(rows[column].tolist()) == sorted(expected)
    for row in rows.to_dict("records"):
        assert_kpis(row, expected[row[column]])
    assert rows["revenue"].sum() == pytest.approx(scoped["paid"].sum(), abs=CENT)
    if by == "week":  # the raw weeks here are calendar weeks from Monday FIRST_DAY
        assert rows["week"].tolist() == sorted(rows["week"])
        last_day = min(flt.end, frame["day"].max())  # the data ends on a Saturday: its last week has 6 days
        for row in rows.to_dict("records"):
            days = scoped.loc[scoped["week"] == row["week"], "day"]
            week_start = FIRST_DAY + timedelta(weeks=row["week"] - 1)
            covered = (min(week_start + timedelta(days=6), last_day) - max(week_start, flt.start)).days + 1
            assert (row["week_start"], row["days"], row["partial"]) == (week_start, covered, covered < 7)
            assert row["days_with_baskets"] == days.nunique()
        assert not rows["partial"].iloc[:-1].any()


def test_edited_cost_ratio_changes_gross_margin_only(tiny, raw):
    before = kpi.headline(tiny, "tiny")
    kpi.set_cost_ratio(tiny, "tiny", "BAKERY", 0.5)
    after = kpi.headline(tiny, "tiny")
    assert_kpis(after, expected_kpis(cleaned_lines(raw[1], raw[2], {"BAKERY": 0.5})))
    assert after["gross_margin"] > before["gross_margin"]
    assert after["revenue"] == before["revenue"]
    ratios = kpi.cost_ratios(tiny, "tiny").set_index("department")
    assert ratios.loc["BAKERY", "cost_ratio"] == 0.5 and ratios.loc["DAIRY", "cost_ratio"] == DEFAULT_COST_RATIO
    assert ratios.loc["DAIRY", "products_without_unit_cost"] == 0


def test_customer_groups_below_the_minimum_size_are_suppressed(tiny, raw):
    frame = cleaned_lines(raw[1], raw[2])
    sizes = frame.groupby("age_band")["customer_id"].nunique()
    store.set_setting(tiny, "min_group_size", 2)
    assert sizes["25-34"] < 2 <= sizes["35-44"]
    rows = kpi.breakdown(tiny, "tiny", by="segment", attribute="age_band").set_index("segment")
    for segment, customers in sizes.items():
        if customers < 2:
            assert rows.loc[segment, list(kpi.KPI_NAMES)].isna().all() and rows.loc[segment, "suppressed"]
        else:
            assert rows.loc[segment, "revenue"] == pytest.approx(
                frame.loc[frame["age_band"] == segment, "paid"].sum(), abs=CENT
            )
            assert rows.loc[segment, "suppressed"] == ""
    small = kpi.headline(tiny, "tiny", kpi.KpiFilter(segment=("age_band", "25-34")))
    assert (
        small["revenue"] is None
        and small["change"]["revenue"] is None
        and "fewer than 2 customers" in small["suppressed"]
    )
    assert kpi.breakdown(tiny, "tiny", kpi.KpiFilter(segment=("age_band", "25-34")), "week")["revenue"].isna().all()
    assert kpi.headline(tiny, "tiny")["suppressed"] == ""  # the whole population is never suppressed
    assert (kpi.breakdown(tiny, "tiny", by="department")["suppressed"] == "").all()


@pytest.mark.parametrize(
    "department, ratio", [("BAKERY", 0), ("BAKERY", 1.5), ("BAKERY", "abc"), ("BAKERY", float("nan")), ("FUEL", 0.5)]
)
def test_bad_cost_ratio_is_one_clear_line(tiny, department, ratio):
    with pytest.raises(DataError) as error:
        kpi.set_cost_ratio(tiny, "tiny", department, ratio)
    assert "\n" not in str(error.value)
    assert kpi.cost_ratios(tiny, "tiny")["cost_ratio"].eq(DEFAULT_COST_RATIO).all()


@pytest.mark.parametrize(
    "flt, message",
    [
        (kpi.KpiFilter(departments=("FUEL",)), "unknown department"),
        (kpi.KpiFilter(segment=("shoe_size", "42")), "no customer attribute 'shoe_size'"),
        (kpi.KpiFilter(segment=("age_band", "99+")), "no customers with age_band = '99+'"),
        (kpi.KpiFilter(date(2024, 2, 1), date(2024, 1, 1)), "must start on or before its end"),
    ],
)
def test_bad_filter_is_one_clear_line(tiny, flt, message):
    with pytest.raises(DataError, match=re.escape(message)):
        kpi.headline(tiny, "tiny", flt)


def test_period_without_baskets_gives_zero_not_an_error(tiny):
    sunday = date(2024, 1, 7)
    result = kpi.headline(tiny, "tiny", kpi.KpiFilter(sunday, sunday))
    assert (result["revenue"], result["baskets"], result["aov"]) == (0.0, 0, None)
    assert kpi.breakdown(tiny, "tiny", kpi.KpiFilter(sunday, sunday), "department").empty


def test_reingest_replaces_the_kpi_facts(tiny, raw):
    folder, lines, _ = raw
    before = kpi.headline(tiny, "tiny")["revenue"]
    lines.assign(paid=lines["paid"] * 2, list_amount=lines["list_amount"] * 2).to_csv(
        folder / "stage_lines.csv", index=False
    )
    ingest_raw(tiny, folder)
    assert kpi.headline(tiny, "tiny")["revenue"] == pytest.approx(2 * before, abs=CENT)


def test_cli_kpi_json_matches_the_engine(tmp_path, raw):
    db = tmp_path / "cli.duckdb"
    con = store.connect(db)
    ingest_raw(con, raw[0])
    store.set_setting(con, "min_group_size", 1)  # five customers: show the figures
    expected = kpi.headline(con, "tiny")
    expected_rows = kpi.breakdown(con, "tiny", by="department")
    con.close()
    command = [
        sys.executable,
        "-m",
        "engine",
        "kpi",
        "--db",
        str(db),
        "--dataset",
        "tiny",
        "--by",
        "department",
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(done.stdout)
    for name in (
        "revenue",
        "units",
        "baskets",
        "aov",
        "items_per_basket",
        "customers",
        "discount_rate",
        "promo_share",
        "gross_margin",
    ):
        assert result[name] == pytest.approx(expected[name], abs=1e-9), name
    assert [row["department"] for row in result["rows"]] == expected_rows["department"].tolist()
    assert result["rows"][0]["revenue"] == pytest.approx(expected_rows["revenue"].iloc[0], abs=1e-9)
    bad = subprocess.run(command[:-3] + ["--by", "store", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "breakdown must be one of" in bad.stderr


@pytest.mark.slow
def test_completejourney_kpis_are_merchandise_only(cj_con):
    info = store.get_dataset(cj_con, "completejourney")
    result = kpi.headline(cj_con, "completejourney")
    assert (result["baskets"], result["customers"]) == (info.baskets, info.customers)
    assert (
        result["units"] < 3 * info.lines
    )  # raw CJ counts ~129 million fuel "units"; cleaned lines hold ~1.3 units each
    departments = kpi.breakdown(cj_con, "completejourney", by="department")
    assert not set(departments["department"]) & {"FUEL", "MISCELLANEOUS", "KIOSK-GAS", "COUPON"}
    assert departments["units"].max() < 0.8 * result["units"]
    shown = departments["revenue"].sum()  # skips the few departments of fewer than min_group_size customers
    assert 0.9999 * result["revenue"] < shown <= result["revenue"] + CENT
    assert 0 < result["discount_rate"] < 0.5 and 0 < result["promo_share"] < 1
    # No unit costs in the Complete Journey: cost = shelf amount x ratio, so margin = 1 - ratio / (1 - discount rate).
    assert result["unit_cost_share"] == 0
    assert result["gross_margin"] == pytest.approx(1 - DEFAULT_COST_RATIO / (1 - result["discount_rate"]), abs=1e-9)


def test_default_period_is_the_latest_half_so_the_change_has_a_baseline(tiny):
    info = store.get_dataset(tiny, "tiny")
    start, end = kpi.default_period(info.first_day, info.last_day)
    result = kpi.headline(tiny, "tiny", kpi.KpiFilter(start, end))
    assert end == info.last_day and result["previous_start"] >= info.first_day
    assert (end - start).days + 1 == ((info.last_day - info.first_day).days + 1) // 2
    assert all(result["change"][name] is not None for name in kpi.KPI_NAMES)
    assert kpi.default_period(date(2024, 1, 1), date(2024, 1, 1)) == (date(2024, 1, 1), date(2024, 1, 1))
