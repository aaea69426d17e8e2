"""Cleaning rules: the one place that decides which raw lines become canonical data.

Real transaction logs are dirty. The Complete Journey has lines with quantity 0, lines with
zero sales value, FUEL and MISCELLANEOUS lines whose "quantity" is gallons or loyalty points
(129 million "units" of fuel), and coupons sold as pseudo-products. Each rule below is applied
in order to every staged line; a line is dropped by the first rule it matches, and the ingest
reports how many rows each rule dropped or changed. The Data page shows ``RULES`` verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from engine.schema import CANONICAL_DDL, DEFAULT_COST_RATIO
from engine.store import pseudonym_key

# Departments and category words that are not merchandise a shopper chooses in a basket.
NON_MERCHANDISE_DEPARTMENTS = ["FUEL", "MISCELLANEOUS", "COUPON", "KIOSK-GAS", "MISC SALES TRAN", "MISC. TRANS."]
NON_MERCHANDISE_CATEGORY_PATTERN = "COUPON|GASOLINE|FUEL"  # regular expression on the upper-cased category
MAX_LINE_QUANTITY = 100  # more units of one product on one line is a data error or a bulk sale


@dataclass(frozen=True)
class Rule:
    name: str
    action: str  # "dropped" or "changed"
    description: str


RULES: tuple[Rule, ...] = (
    Rule(
        "pseudonymized_customers",
        "changed",
        "Customer identifiers replaced by a keyed hash (privacy); the key is kept apart from the database file.",
    ),
    Rule("unknown_product", "dropped", "The line's product is not in the product master."),
    Rule(
        "non_merchandise",
        "dropped",
        "Fuel, coupons and miscellaneous pseudo-products: departments "
        + ", ".join(NON_MERCHANDISE_DEPARTMENTS)
        + " and categories containing "
        + NON_MERCHANDISE_CATEGORY_PATTERN.replace("|", ", ")
        + ". Their 'quantity' counts gallons or points, not units.",
    ),
    Rule("zero_quantity", "dropped", "Quantity is zero or negative (voids, returns, weighed items without a count)."),
    Rule("zero_sales_value", "dropped", "The customer paid nothing or a negative amount for the line."),
    Rule("implausible_quantity", "dropped", f"More than {MAX_LINE_QUANTITY} units of one product on one line."),
    Rule("merged_duplicate_lines", "changed", "Several lines of one product in one basket are summed into one line."),
    Rule(
        "list_below_paid",
        "changed",
        "Shelf amount below the amount paid: the shelf amount is raised to the amount paid.",
    ),
    Rule("empty_baskets", "dropped", "Baskets left with no line after the rules above (counted in baskets)."),
    Rule(
        "unsold_products", "dropped", "Products in the product master never sold in a kept line (counted in products)."
    ),
)

# Customer identifiers are pseudonymized here, at ingest: a keyed hash (engine.store.pseudonymize),
# computed once per distinct customer.
PSEUDONYMS = """
CREATE TEMP TABLE pseudonyms AS
SELECT raw_id, 'c' || left(sha256($pseudonym_key || ':' || raw_id), 16) AS customer_id
FROM (SELECT customer_id AS raw_id FROM stage_lines UNION SELECT customer_id FROM stage_customer_attributes)
"""

CLASSIFY_LINES = """
CREATE TEMP TABLE classified AS
SELECT l.* REPLACE (ps.customer_id AS customer_id),
       CASE
         WHEN p.product_id IS NULL THEN 'unknown_product'
         WHEN list_contains($non_merch_departments, upper(p.department))
              OR regexp_matches(upper(coalesce(p.category, '')), $non_merch_category)
              THEN 'non_merchandise'
         WHEN l.quantity <= 0 THEN 'zero_quantity'
         WHEN l.paid <= 0 THEN 'zero_sales_value'
         WHEN l.quantity > $max_quantity THEN 'implausible_quantity'
       END AS dropped_by
FROM stage_lines l
JOIN pseudonyms ps ON ps.raw_id = l.customer_id
LEFT JOIN stage_products p USING (product_id)
"""

COUNT_DROPPED = """
SELECT dropped_by, count(*) FROM classified WHERE dropped_by IS NOT NULL GROUP BY ALL
"""

KEEP_LINES = """
CREATE TEMP TABLE kept AS
SELECT basket_id,
       any_value(customer_id) AS customer_id,
       min(ts) AS ts,
       min(week) AS week,
       any_value(store_id) AS store_id,
       product_id,
       sum(quantity) AS quantity,
       sum(paid) AS paid,
       sum(greatest(coalesce(list_amount, paid), paid)) AS list_amount,
       sum(coalesce(retail_discount, 0)) AS retail_discount,
       sum(coalesce(coupon_discount, 0)) AS coupon_discount,
       count(*) AS merged,
       count(*) FILTER (WHERE coalesce(list_amount, paid) < paid) AS raised
FROM classified
WHERE dropped_by IS NULL
GROUP BY basket_id, product_id
"""

COUNT_CHANGED = """
SELECT coalesce(sum(merged - 1), 0)::BIGINT, coalesce(sum(raised), 0)::BIGINT FROM kept
"""

FILL_BASKETS = """
INSERT INTO baskets
WITH first_day AS (SELECT min(ts)::DATE AS d FROM kept)
SELECT basket_id, any_value(customer_id), min(ts), min(ts)::DATE,
       coalesce(min(week), (date_diff('day', (SELECT d FROM first_day), min(ts)::DATE) // 7) + 1),
       any_value(store_id)
FROM kept GROUP BY basket_id
"""

FILL_LINES = """
INSERT INTO lines
SELECT basket_id, product_id, quantity, paid, list_amount, retail_discount, coupon_discount FROM kept
"""

FILL_PRODUCTS = """
INSERT INTO products
SELECT product_id,
       coalesce(nullif(trim(name), ''), 'Product ' || product_id),
       coalesce(nullif(trim(department), ''), 'Unknown'),
       coalesce(nullif(trim(category), ''), 'Unknown'),
       nullif(trim(brand), ''),
       unit_cost
FROM stage_products
WHERE product_id IN (SELECT DISTINCT product_id FROM kept)
"""

PSEUDONYMIZE_ATTRIBUTES = """
UPDATE stage_customer_attributes s SET customer_id = ps.customer_id FROM pseudonyms ps WHERE ps.raw_id = s.customer_id
"""

FILL_CUSTOMERS = """
INSERT INTO customers
SELECT c.customer_id,
       c.customer_id IN (SELECT customer_id FROM stage_customer_attributes)
FROM (SELECT DISTINCT customer_id FROM baskets) c
"""

FILL_CUSTOMER_ATTRIBUTES = """
INSERT INTO customer_attributes
SELECT c.customer_id, a.attribute, coalesce(nullif(trim(s.value), ''), 'Unknown')
FROM customers c
CROSS JOIN (SELECT DISTINCT attribute FROM stage_customer_attributes) a
LEFT JOIN stage_customer_attributes s ON s.customer_id = c.customer_id AND s.attribute = a.attribute
"""

FILL_PROMOTIONS = """
INSERT INTO promotions
SELECT product_id, week, bool_or(display), bool_or(mailer)
FROM stage_promotions
WHERE product_id IN (SELECT product_id FROM products)
GROUP BY ALL
"""

FILL_COST_RATIOS = """
INSERT INTO cost_ratios SELECT DISTINCT department, $ratio FROM products
"""

COUNTS = """
SELECT (SELECT count(DISTINCT basket_id) FROM stage_lines) - (SELECT count(*) FROM baskets),
       (SELECT count(*) FROM stage_products) - (SELECT count(*) FROM products)
"""


def finish_dataset(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Apply ``RULES`` to the staged relations and fill the canonical tables.

    Runs on the build cursor of ``engine.store.replace_dataset``. Returns the cleaning report:
    for every rule, the number of rows it dropped or changed (0 included, so the report always
    lists every rule).
    """
    cur.execute(CANONICAL_DDL)
    cur.execute(PSEUDONYMS, {"pseudonym_key": pseudonym_key(cur)})
    cur.execute(
        CLASSIFY_LINES,
        {
            "non_merch_departments": NON_MERCHANDISE_DEPARTMENTS,
            "non_merch_category": NON_MERCHANDISE_CATEGORY_PATTERN,
            "max_quantity": MAX_LINE_QUANTITY,
        },
    )
    cur.execute(PSEUDONYMIZE_ATTRIBUTES)
    report = {rule.name: 0 for rule in RULES}
    for rule, count in cur.execute(COUNT_DROPPED).fetchall():
        report[rule] = int(count)
    cur.execute(KEEP_LINES)
    merged, raised = cur.execute(COUNT_CHANGED).fetchall()[0]
    report["merged_duplicate_lines"] = int(merged)
    report["list_below_paid"] = int(raised)
    for statement in (
        FILL_BASKETS,
        FILL_LINES,
        FILL_PRODUCTS,
        FILL_CUSTOMERS,
        FILL_CUSTOMER_ATTRIBUTES,
        FILL_PROMOTIONS,
    ):
        cur.execute(statement)
    cur.execute(FILL_COST_RATIOS, {"ratio": DEFAULT_COST_RATIO})
    empty_baskets, unsold = cur.execute(COUNTS).fetchall()[0]
    report["pseudonymized_customers"] = cur.execute("SELECT count(*) FROM customers").fetchall()[0][0]
    report["empty_baskets"] = int(empty_baskets)
    report["unsold_products"] = int(unsold)
    cur.execute("DROP TABLE pseudonyms")
    cur.execute("DROP TABLE classified")
    cur.execute("DROP TABLE kept")
    return report
