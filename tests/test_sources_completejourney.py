"""The Complete Journey ingest and its cleaning report, against the raw Parquet files."""

from __future__ import annotations

import duckdb

from engine import store
from engine.cleaning import RULES
from engine.sources import completejourney


def raw(sql: str, params: dict | None = None):
    con = duckdb.connect()
    folder = completejourney.data_dir()
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet($p)", {"p": str(folder / "transactions.parquet")})
    con.execute("CREATE TABLE p AS SELECT * FROM read_parquet($p)", {"p": str(folder / "products.parquet")})
    return con.execute(sql, params or {}).fetchall()


def test_counts_and_report_add_up(cj_con):
    info = store.get_dataset(cj_con, "completejourney")
    assert set(info.cleaning) == {rule.name for rule in RULES}
    raw_lines, raw_baskets, raw_customers = raw(
        "SELECT count(*), count(DISTINCT basket_id), count(DISTINCT household_id) FROM t"
    )[0]
    assert raw_lines == 1_469_307 and raw_baskets == 155_848 and raw_customers == 2_469
    dropped_lines = sum(
        info.cleaning[r]
        for r in ("unknown_product", "non_merchandise", "zero_quantity", "zero_sales_value", "implausible_quantity")
    )
    assert info.lines == raw_lines - dropped_lines - info.cleaning["merged_duplicate_lines"]
    assert info.baskets == raw_baskets - info.cleaning["empty_baskets"]
    assert info.cleaning["non_merchandise"] > 10_000 and info.cleaning["zero_quantity"] > 0
    assert info.weeks == 53 and info.first_day.isoformat() == "2017-01-01"


def test_fuel_does_not_dominate_units(cj_con):
    with store.dataset_cursor(cj_con, "completejourney") as cur:
        units, max_line = cur.execute("SELECT sum(quantity), max(quantity) FROM lines").fetchall()[0]
        fuel = cur.execute(
            "SELECT count(*) FROM lines JOIN products USING (product_id) WHERE department IN ('FUEL', 'MISCELLANEOUS', 'COUPON')"
        ).fetchall()[0][0]
    raw_units = raw("SELECT sum(quantity) FROM t")[0][0]
    assert raw_units > 150_000_000  # the raw file is dominated by gallons of fuel
    assert units < 2_000_000 and max_line <= 100 and fuel == 0


def test_kept_revenue_equals_raw_revenue_of_kept_rules(cj_con):
    """Revenue after cleaning equals the raw sum over the lines no rule drops, recomputed independently."""
    expected = raw(
        """
        SELECT round(sum(sales_value), 2) FROM t JOIN p USING (product_id)
        WHERE quantity > 0 AND quantity <= 100 AND sales_value > 0
          AND upper(department) NOT IN ('FUEL', 'MISCELLANEOUS', 'COUPON', 'KIOSK-GAS', 'MISC SALES TRAN', 'MISC. TRANS.')
          AND NOT regexp_matches(upper(coalesce(product_category, '')), 'COUPON|GASOLINE|FUEL')
        """
    )[0][0]
    with store.dataset_cursor(cj_con, "completejourney") as cur:
        got = cur.execute("SELECT round(sum(paid), 2) FROM lines").fetchall()[0][0]
    assert got == expected


def test_demographics_known_for_801_households(cj_con):
    with store.dataset_cursor(cj_con, "completejourney") as cur:
        known = cur.execute("SELECT count(*) FROM customers WHERE has_demographics").fetchall()[0][0]
        per_customer = cur.execute("SELECT DISTINCT count(*) FROM customer_attributes GROUP BY customer_id").fetchall()
        unknown_age = cur.execute(
            "SELECT count(*) FROM customer_attributes WHERE attribute = 'age_band' AND value = 'Unknown'"
        ).fetchall()[0][0]
        customers = cur.execute("SELECT count(*) FROM customers").fetchall()[0][0]
    assert 790 <= known <= 801
    assert per_customer == [(7,)]  # every customer has every attribute, unknown included
    assert unknown_age == customers - known
