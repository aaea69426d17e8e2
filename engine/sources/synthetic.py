"""A synthetic grocery market with known ground truth.

Baskets are drawn from a pairwise auto-logistic choice model of the same family as the studio's
model (DESIGN.md section 4; SHOPPER, Ruiz, Athey & Blei 2020), so the model's ability to
recover preferences, price sensitivities and complementarities can be tested, and optimal
bundle prices can be computed with the true parameters. For trip t of customer h in week w,
the basket x in {0,1}^I has

    P(x) ∝ exp( sum_i x_i u(h,i,w) + sum_{i<j} x_i x_j c_ij )
    u(h,i,w) = lambda_i + <theta_h, alpha_i> + eta * promo(i,w) - b_h * price(i,w)
    theta_h  = W_age[age_h] + W_income[income_h] + noise       (K dims)
    b_h      = softplus(beta_h),  beta_h = beta_0 + beta_income[income_h] + noise   (1/currency)
    c_ij     > 0 for complement pairs (across categories), < 0 for substitutes (same category)

Baskets are sampled by Gibbs sweeps over the items; trips that end with an empty basket are
not observed (as in a real till log). Prices vary weekly: each product-week is discounted with
some probability, and promoted (display) products get the ``eta`` lift.

The true parameters are stored beside the data as model run ``truth`` in the exported-
parameter tables of ``engine.schema.MODEL_DDL`` (``beta_item = 0``, ``rho = 0``, the pairs in
``model_pairs``), so pricing code and recovery tests read truth and learned runs the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from engine import store
from engine.cleaning import finish_dataset
from engine.replay import DEFAULT_REPLAY_TRIPS, insert_replayed_trips
from engine.schema import MODEL_DDL

SOURCE = "synthetic"
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data" / "synthetic"
AGE_BANDS = ["19-24", "25-34", "35-44", "45-54", "55-64", "65+"]
INCOME_BANDS = ["Under 25K", "25-49K", "50-99K", "100K+"]
DEPARTMENTS = ["GROCERY", "PRODUCE", "DAIRY", "MEAT", "BAKERY", "DRUG GM"]
START = datetime(2024, 1, 7)  # a Sunday: week 1


@dataclass(frozen=True)
class MarketConfig:
    """Size and shape of a synthetic market."""

    customers: int = 2000
    products: int = 120
    weeks: int = 52
    seed: int = 0
    dim: int = 6  # K: preference dimensions
    products_per_category: int = 4
    complement_pairs: int = 12  # true complement product pairs (across categories)
    substitute_pairs: int = 12  # true substitute product pairs (within a category)
    coupling: float = 2.0  # |c_ij| of a true pair (utility units)
    trips_per_week: float = 1.2  # mean of the per-customer trip rate (gamma distributed)
    discount_probability: float = 0.2  # share of product-weeks on discount
    promo_effect: float = 0.6  # eta: utility lift of a displayed product
    known_demographics: float = 0.7  # share of customers whose demographics are known
    gibbs_sweeps: int = 4
    cost_ratio_low: float = 0.3  # unit cost / regular price, drawn per product in [low, high]: bundle-
    # friendly margins, so that some discounts pay and some do not
    cost_ratio_high: float = 0.65
    beta_0: float = 0.2  # base of the price coefficient: b_h = softplus(beta_0 + ...)


@dataclass
class Market:
    """A generated market: raw tables (as a retailer would have them) and the truth."""

    config: MarketConfig
    products: pd.DataFrame  # product_id, name, department, category, brand, unit_cost
    customers: pd.DataFrame  # customer_id, age_band, income_band (None when unknown)
    lines: pd.DataFrame  # basket_id, customer_id, ts, week, store_id, product_id, quantity, paid, list_amount, retail_discount, coupon_discount
    promotions: pd.DataFrame  # product_id, week, display, mailer
    truth_items: pd.DataFrame  # item_id, lambda, alpha, regular_price, unit_cost, ...
    truth_customers: pd.DataFrame  # customer_id, theta, beta_customer, trips_per_week
    truth_pairs: pd.DataFrame  # item_a, item_b, coupling


def generate(config: MarketConfig = MarketConfig()) -> Market:
    """Draw a market from ``config`` (deterministic for a given seed)."""
    rng = np.random.default_rng(config.seed)
    n_items, n_cust, dim = config.products, config.customers, config.dim
    n_cat = max(2, n_items // config.products_per_category)

    # Items: categories, departments, prices, costs, attributes.
    category = np.arange(n_items) % n_cat  # (I,)
    cat_alpha = rng.normal(0.0, 0.6, size=(n_cat, dim))
    alpha = cat_alpha[category] + rng.normal(0.0, 0.3, size=(n_items, dim))  # (I, K)
    regular = np.round(np.exp(rng.normal(np.log(3.0), 0.45, size=n_items)), 1) - 0.01  # (I,) .x9 endings
    regular = np.maximum(regular, 0.49)
    unit_cost = np.round(regular * rng.uniform(config.cost_ratio_low, config.cost_ratio_high, size=n_items), 2)
    lam = rng.normal(-1.5, 0.5, size=n_items)  # (I,)

    # Customers: demographics drive preferences and price sensitivity.
    age = rng.integers(0, len(AGE_BANDS), size=n_cust)
    income = rng.integers(0, len(INCOME_BANDS), size=n_cust)
    w_age = rng.normal(0.0, 0.5, size=(len(AGE_BANDS), dim))
    w_income = rng.normal(0.0, 0.5, size=(len(INCOME_BANDS), dim))
    theta = w_age[age] + w_income[income] + rng.normal(0.0, 0.4, size=(n_cust, dim))  # (H, K)
    beta_income = np.array([0.6, 0.2, -0.2, -0.6])  # lower income, more price sensitive
    beta = config.beta_0 + beta_income[income] + rng.normal(0.0, 0.5, size=n_cust)  # (H,)
    b = np.log1p(np.exp(beta))  # (H,) softplus
    rate = rng.gamma(4.0, config.trips_per_week / 4.0, size=n_cust)  # (H,)

    # True pairs: complements across categories, substitutes within one.
    coupling = np.zeros((n_items, n_items))
    pairs: list[tuple[int, int, float]] = []  # (i, j, c_ij)
    chosen: set[tuple[int, int]] = set()
    while len(pairs) < config.complement_pairs:
        i, j = sorted(rng.choice(n_items, size=2, replace=False))
        if category[i] != category[j] and (i, j) not in chosen:
            chosen.add((i, j))
            pairs.append((i, j, config.coupling * rng.uniform(0.85, 1.15)))
    while len(pairs) < config.complement_pairs + config.substitute_pairs:
        c = rng.integers(0, n_cat)
        members = np.flatnonzero(category == c)
        if len(members) < 2:
            continue
        i, j = sorted(rng.choice(members, size=2, replace=False))
        if (i, j) not in chosen:
            chosen.add((i, j))
            pairs.append((i, j, -config.coupling * rng.uniform(0.85, 1.15)))
    for i, j, c_ij in pairs:
        coupling[i, j] = coupling[j, i] = c_ij

    # Weekly prices and promotions.
    weeks = config.weeks
    discounted = rng.random((weeks, n_items)) < config.discount_probability  # (W, I)
    depth = rng.choice([0.1, 0.2, 0.3, 0.4], size=(weeks, n_items)) * discounted
    price = np.round(regular[None, :] * (1.0 - depth), 2)  # (W, I)
    display = discounted & (rng.random((weeks, n_items)) < 0.5)
    mailer = discounted & (rng.random((weeks, n_items)) < 0.3)

    # Trips, then baskets by Gibbs sampling of the auto-logistic model.
    trips_per_cw = rng.poisson(rate[:, None], size=(n_cust, weeks))  # (H, W)
    trip_cust, trip_week = np.nonzero(trips_per_cw)
    reps = trips_per_cw[trip_cust, trip_week]
    trip_cust, trip_week = np.repeat(trip_cust, reps), np.repeat(trip_week, reps)  # (T,)
    base = (
        lam[None, :]
        + theta[trip_cust] @ alpha.T
        + config.promo_effect * display[trip_week]
        - b[trip_cust, None] * price[trip_week]
    )  # (T, I)
    x = (rng.random(base.shape) < 1.0 / (1.0 + np.exp(-base))).astype(np.float32)  # (T, I)
    coupled = [i for i in range(n_items) if coupling[i].any()]  # other items need no resampling
    for _ in range(config.gibbs_sweeps):
        for i in rng.permutation(coupled):
            partners = np.flatnonzero(coupling[i])
            field = base[:, i] + x[:, partners] @ coupling[partners, i]  # (T,)
            x[:, i] = rng.random(len(field)) < 1.0 / (1.0 + np.exp(-field))

    trip_idx, item_idx = np.nonzero(x)
    kept_trips = np.unique(trip_idx)
    basket_ids = np.full(len(trip_cust), "", dtype=object)
    basket_ids[kept_trips] = [f"B{n:07d}" for n in range(len(kept_trips))]
    offsets = rng.integers(0, 7 * 24 * 60, size=len(trip_cust))  # minutes into the week
    ts = pd.to_datetime(START) + pd.to_timedelta(trip_week * 7 * 24 * 60 + offsets, unit="min")
    quantity = 1 + rng.poisson(0.25, size=len(trip_idx))
    w = trip_week[trip_idx]
    paid = np.round(quantity * price[w, item_idx], 2)
    list_amount = np.round(quantity * regular[item_idx], 2)

    product_ids = np.array([f"P{i + 1:04d}" for i in range(n_items)])
    customer_ids = np.array([f"{h + 1:06d}" for h in range(n_cust)])  # leading zeros on purpose
    lines = pd.DataFrame(
        {
            "basket_id": basket_ids[trip_idx],
            "customer_id": customer_ids[trip_cust[trip_idx]],
            "ts": ts[trip_idx],
            "week": (w + 1).astype("int32"),
            "store_id": "S1",
            "product_id": product_ids[item_idx],
            "quantity": quantity.astype(float),
            "paid": paid,
            "list_amount": list_amount,
            "retail_discount": np.round(list_amount - paid, 2),
            "coupon_discount": 0.0,
        }
    )
    known = rng.random(n_cust) < config.known_demographics
    customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "age_band": np.where(known, np.array(AGE_BANDS)[age], np.array(None)),
            "income_band": np.where(known, np.array(INCOME_BANDS)[income], np.array(None)),
        }
    )
    cat_names = [f"Category {c + 1:02d}" for c in range(n_cat)]
    products = pd.DataFrame(
        {
            "product_id": product_ids,
            "name": [f"{cat_names[category[i]]} item {i + 1}" for i in range(n_items)],
            "department": [DEPARTMENTS[category[i] % len(DEPARTMENTS)] for i in range(n_items)],
            "category": [cat_names[c] for c in category],
            "brand": np.where(rng.random(n_items) < 0.3, "Private", "National"),
            "unit_cost": unit_cost,
        }
    )
    pw, pi = np.nonzero(display | mailer)
    promotions = pd.DataFrame(
        {
            "product_id": product_ids[pi],
            "week": (pw + 1).astype("int32"),
            "display": display[pw, pi],
            "mailer": mailer[pw, pi],
        }
    )
    truth_items = products.rename(columns={"product_id": "item_id"}).assign(
        # Regular-price utility with the average promotion folded in, as the export contract says.
        popularity=lam + config.promo_effect * display.mean(axis=0),
        alpha=list(alpha.astype(np.float32)),
        rho=list(np.zeros((n_items, dim), dtype=np.float32)),
        beta_item=0.0,
        regular_price=regular,
    )[
        [
            "item_id",
            "name",
            "department",
            "category",
            "popularity",
            "alpha",
            "rho",
            "beta_item",
            "regular_price",
            "unit_cost",
        ]
    ]
    truth_customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "theta": list(theta.astype(np.float32)),
            "beta_customer": beta,
            "trips_per_week": rate,
        }
    )
    truth_pairs = pd.DataFrame(
        {
            "item_a": [product_ids[i] for i, _, _ in pairs],
            "item_b": [product_ids[j] for _, j, _ in pairs],
            "coupling": [c for _, _, c in pairs],
        }
    )
    return Market(config, products, customers, lines, promotions, truth_items, truth_customers, truth_pairs)


TABLES = ("products", "customers", "lines", "promotions", "truth_items", "truth_customers", "truth_pairs")


def write(market: Market, folder: Path) -> None:
    """Write a market as Parquet files (the committed sample is made this way)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        getattr(market, table).to_parquet(folder / f"{table}.parquet", index=False, compression="zstd")
    (folder / "config.json").write_text(json.dumps(asdict(market.config), indent=2) + "\n")


def read(folder: Path = SAMPLE_DIR) -> Market:
    """Read a market written by ``write`` (the one loader of ``sample_data/``)."""
    config = MarketConfig(**json.loads((folder / "config.json").read_text()))
    frames = {table: pd.read_parquet(folder / f"{table}.parquet") for table in TABLES}
    return Market(config=config, **frames)


STAGE_PRODUCTS = "CREATE TEMP TABLE stage_products AS SELECT product_id, name, department, category, brand, unit_cost FROM market_products"
STAGE_LINES = """
CREATE TEMP TABLE stage_lines AS
SELECT basket_id, customer_id, ts::TIMESTAMP AS ts, week::INTEGER AS week, store_id, product_id,
       quantity, paid, list_amount, retail_discount, coupon_discount
FROM market_lines
"""
STAGE_ATTRIBUTES = """
CREATE TEMP TABLE stage_customer_attributes AS
UNPIVOT (SELECT customer_id, age_band, income_band FROM market_customers)
ON COLUMNS(* EXCLUDE customer_id) INTO NAME attribute VALUE value
"""
STAGE_PROMOTIONS = "CREATE TEMP TABLE stage_promotions AS SELECT product_id, week::INTEGER AS week, display, mailer FROM market_promotions"
INSERT_TRUTH_RUN = """
INSERT INTO model_runs VALUES ('truth', 'truth', 'product', now()::TIMESTAMP, NULL, NULL, $config, '{}')
"""
INSERT_TRUTH_ITEMS = "INSERT INTO model_items SELECT 'truth', * FROM market_truth_items"
INSERT_TRUTH_CUSTOMERS = """
INSERT INTO model_customers
SELECT 'truth', 'c' || left(sha256($pseudonym_key || ':' || customer_id), 16), theta, beta_customer, trips_per_week
FROM market_truth_customers
"""
INSERT_TRUTH_PAIRS = "INSERT INTO model_pairs SELECT 'truth', * FROM market_truth_pairs"


def ingest_market(con: duckdb.DuckDBPyConnection, name: str, market: Market) -> store.DatasetInfo:
    """Ingest a generated (or read) market as dataset ``name``, truth included."""

    def build(cur: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict]:
        for table in TABLES:
            cur.register(f"market_{table}", getattr(market, table))
        for statement in (STAGE_PRODUCTS, STAGE_LINES, STAGE_ATTRIBUTES, STAGE_PROMOTIONS):
            cur.execute(statement)
        report = finish_dataset(cur)
        cur.execute(MODEL_DDL)
        cur.execute(INSERT_TRUTH_RUN, {"config": json.dumps(asdict(market.config))})
        cur.execute(INSERT_TRUTH_ITEMS)
        cur.execute(INSERT_TRUTH_CUSTOMERS, {"pseudonym_key": store.pseudonym_key(cur)})
        cur.execute(INSERT_TRUTH_PAIRS)
        last_week = cur.execute("SELECT max(week) FROM baskets").fetchall()[0][0]
        insert_replayed_trips(cur, "truth", "product", last_week, DEFAULT_REPLAY_TRIPS)
        for table in TABLES:
            cur.unregister(f"market_{table}")
        for table in ("stage_products", "stage_lines", "stage_customer_attributes", "stage_promotions"):
            cur.execute("DROP TABLE " + table)
        return report, {"config": asdict(market.config), "currency": "USD"}

    return store.replace_dataset(con, name, SOURCE, build)


def ingest(
    con: duckdb.DuckDBPyConnection,
    name: str = "synthetic",
    seed: int = 0,
    customers: int = MarketConfig.customers,
    products: int = MarketConfig.products,
    weeks: int = MarketConfig.weeks,
) -> store.DatasetInfo:
    """Generate a market with these sizes and ingest it as dataset ``name``."""
    for label, value, low in (("customers", customers, 10), ("products", products, 8), ("weeks", weeks, 4)):
        if value < low:
            from engine.errors import DataError

            raise DataError(f"synthetic market needs at least {low} {label}; found {value}")
    config = MarketConfig(customers=customers, products=products, weeks=weeks, seed=seed)
    return ingest_market(con, name, generate(config))


def ingest_sample(con: duckdb.DuckDBPyConnection, name: str = "sample") -> store.DatasetInfo:
    """Ingest the committed sample market (``sample_data/synthetic``) as dataset ``name``."""
    return ingest_market(con, name, read(SAMPLE_DIR))


SAMPLE_CONFIG = MarketConfig(customers=500, products=48, weeks=26, seed=7)
