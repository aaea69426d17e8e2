"""The canonical tables every source produces, and the staging contract sources fill.

A source (``engine.sources.*``) never writes canonical tables itself. Inside the build
transaction it creates these temporary staging relations on the build cursor, then calls
``engine.cleaning.finish_dataset``, which applies the cleaning rules and fills the canonical
tables below:

    stage_products(product_id, name, department, category, brand, unit_cost)
    stage_lines(basket_id, customer_id, ts, week, store_id, product_id,
                quantity, paid, list_amount, retail_discount, coupon_discount)
    stage_customer_attributes(customer_id, attribute, value)      -- may be empty
    stage_promotions(product_id, week, display, mailer)            -- may be empty

``week`` in ``stage_lines`` may be NULL: weeks are then numbered from the first day (week 1).
Money is in the dataset's currency; ``paid`` is what the customer paid for the line and
``list_amount`` the shelf (regular) amount before discounts.
"""

from __future__ import annotations

CANONICAL_DDL = """
CREATE TABLE customers (
    customer_id       VARCHAR PRIMARY KEY,
    has_demographics  BOOLEAN NOT NULL
);
CREATE TABLE customer_attributes (      -- one row per customer x attribute; unknown is 'Unknown'
    customer_id  VARCHAR NOT NULL,
    attribute    VARCHAR NOT NULL,
    value        VARCHAR NOT NULL
);
CREATE TABLE customer_attribute_kinds ( -- engine.personal_data: what an imported attribute is
    attribute  VARCHAR PRIMARY KEY,
    kind       VARCHAR NOT NULL CHECK (kind IN ('attribute', 'identifier')),  -- identifier: never a dimension
    reason     VARCHAR NOT NULL
);
CREATE TABLE products (
    product_id  VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    department  VARCHAR NOT NULL,
    category    VARCHAR NOT NULL,
    brand       VARCHAR,
    unit_cost   DOUBLE                  -- NULL: margin uses the department's cost ratio
);
CREATE TABLE baskets (
    basket_id    VARCHAR PRIMARY KEY,
    customer_id  VARCHAR NOT NULL,
    ts           TIMESTAMP NOT NULL,
    day          DATE NOT NULL,
    week         INTEGER NOT NULL,
    store_id     VARCHAR
);
CREATE TABLE lines (                    -- one row per basket x product
    basket_id        VARCHAR NOT NULL,
    product_id       VARCHAR NOT NULL,
    quantity         DOUBLE NOT NULL,
    paid             DOUBLE NOT NULL,   -- what the customer paid
    list_amount      DOUBLE NOT NULL,   -- shelf amount before discounts (>= paid)
    retail_discount  DOUBLE NOT NULL,   -- retailer's (loyalty, shelf) discount
    coupon_discount  DOUBLE NOT NULL    -- coupon discounts
);
CREATE TABLE promotions (               -- one row per product x week with a promotion
    product_id  VARCHAR NOT NULL,
    week        INTEGER NOT NULL,
    display     BOOLEAN NOT NULL,
    mailer      BOOLEAN NOT NULL
);
CREATE TABLE cost_ratios (              -- analyst assumption: unit cost / shelf price by department
    department  VARCHAR PRIMARY KEY,
    cost_ratio  DOUBLE NOT NULL
);
"""

CANONICAL_TABLES = (
    "customers",
    "customer_attributes",
    "customer_attribute_kinds",
    "products",
    "baskets",
    "lines",
    "promotions",
    "cost_ratios",
)

# Default gross-margin assumption where a product has no unit cost: cost = 72% of shelf price,
# a typical US grocery gross margin of about 28%. Editable per department on the KPI page.
DEFAULT_COST_RATIO = 0.72

DESCRIBE_TABLE = """
SELECT table_name AS "table", column_name AS "column", data_type AS "type", is_nullable AS "nullable"
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $table
ORDER BY ordinal_position
"""

# Model runs and their exported parameters (engine.model writes them; pricing reads them).
# Replayed trips: the basket context of bundle projections (engine.replay).
MODEL_TRIPS_DDL = """
CREATE TABLE IF NOT EXISTS model_trips (
    run_id       VARCHAR NOT NULL,
    customer_id  VARCHAR NOT NULL,
    trip         INTEGER NOT NULL,      -- 1 = the customer's last trip of the run's window, 2 = the one before...
    items        VARCHAR[] NOT NULL     -- the run's catalog items in that trip's basket (may be empty)
);
"""

# Item utility at regular price with no basket context, as DESIGN.md section 4 defines it (bundle
# projections add the rest of each replayed trip's basket, engine.pricing.params):
# ("lambda" is a DuckDB keyword, so lambda_i is stored in the column popularity.)
#   u(h,i) = lambda_i + <theta_h, alpha_i> + habit(h,i) - b(h,i) * regular_price_i
#   b(h,i) = softplus(beta_customer_h + beta_item_i)           (1/currency, > 0)
#   c_ij   = <rho_i, alpha_j> + <rho_j, alpha_i> + pair_ij       (pair_ij from model_pairs, else 0)
# A synthetic dataset stores its true parameters as the run 'truth' in the same tables.
MODEL_DDL = (
    """
CREATE TABLE IF NOT EXISTS model_runs (
    run_id      VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,       -- 'trained' | 'truth'
    level       VARCHAR NOT NULL,       -- 'product' | 'category'
    created_at  TIMESTAMP NOT NULL,
    device      VARCHAR,
    seconds     DOUBLE,
    config      VARCHAR NOT NULL,       -- JSON
    metrics     VARCHAR NOT NULL        -- JSON
);
CREATE TABLE IF NOT EXISTS model_items (
    run_id         VARCHAR NOT NULL,
    item_id        VARCHAR NOT NULL,    -- product_id, or category name at category level
    name           VARCHAR NOT NULL,
    department     VARCHAR NOT NULL,
    category       VARCHAR NOT NULL,
    popularity     DOUBLE NOT NULL,     -- lambda_i (with the average season and promotion folded in)
    alpha          FLOAT[] NOT NULL,    -- (K,) item attributes
    rho            FLOAT[] NOT NULL,    -- (K,) interaction vector for complementarity
    beta_item      DOUBLE NOT NULL,
    regular_price  DOUBLE NOT NULL,     -- modal shelf price per unit
    unit_cost      DOUBLE NOT NULL      -- unit cost, or the department cost ratio x regular price
);
CREATE TABLE IF NOT EXISTS model_customers (
    run_id          VARCHAR NOT NULL,
    customer_id     VARCHAR NOT NULL,
    theta           FLOAT[] NOT NULL,   -- (K,) preferences
    beta_customer   DOUBLE NOT NULL,
    trips_per_week  DOUBLE NOT NULL     -- expected shopping trips per week (horizon scaling)
);
CREATE TABLE IF NOT EXISTS model_habits (   -- sparse: only customer x item pairs with history
    run_id       VARCHAR NOT NULL,
    customer_id  VARCHAR NOT NULL,
    item_id      VARCHAR NOT NULL,
    habit        DOUBLE NOT NULL        -- gamma_i * habit(h,i) at the end of the data
);
CREATE TABLE IF NOT EXISTS model_pairs (    -- sparse explicit couplings (the truth of a synthetic market)
    run_id   VARCHAR NOT NULL,
    item_a   VARCHAR NOT NULL,
    item_b   VARCHAR NOT NULL,
    coupling DOUBLE NOT NULL
);
"""
    + MODEL_TRIPS_DDL
)
