"""Model features in SQL: catalog, weekly prices, promotions, trips, baskets, demographics.

Every query runs on a ``store.dataset_cursor`` (unqualified canonical tables) with bound
parameters. ``build_features`` runs them in order and returns numpy arrays and small frames
(``PreparedData``); nothing here touches torch.

Definitions (DESIGN.md section 3):

- item: a product (``level='product'``) or a category (``level='category'``: "any pasta");
- catalog: the top ``catalog_size`` items by number of baskets in the training window;
- weekly unit price: median paid unit price of the item that week; weeks without a sale take
  the regular price; regular price: the modal shelf unit price over the training window;
- discount depth: ``max(0, 1 - price / regular price)``;
- promotion flags: any store displayed the item / featured it in the mailer that week;
- time split: the last ``holdout_weeks`` weeks are held out; the rest is the training window.
"""

from __future__ import annotations

import logging
import math

import duckdb
import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.model.config import ModelConfig
from engine.model.habits import habit_events
from engine.model.prepared import SPLIT_HOLDOUT, SPLIT_TRAIN, SPLIT_VAL, PreparedData
from engine.schema import DEFAULT_COST_RATIO

log = logging.getLogger(__name__)

WEEK_RANGE = "SELECT min(week), max(week), count(*) FROM baskets"

# Every kept line with its item key (product or category) and unit prices. A temp table is
# visible only on the cursor that made it, so concurrent prepares do not collide.
ITEM_LINES = """
CREATE OR REPLACE TEMP TABLE model_item_lines AS
SELECT l.basket_id, b.week,
       CASE WHEN $level = 'category' THEN p.category ELSE p.product_id END AS item_id,
       l.paid / l.quantity AS unit_paid,
       round(l.list_amount / l.quantity, 2) AS unit_shelf
FROM lines l
JOIN baskets b USING (basket_id)
JOIN products p USING (product_id)
"""

# Modes break ties deterministically (the higher shelf price; the first department by name):
# DuckDB's mode() keeps whichever tied value its parallel aggregation meets first.
CATALOG = """
WITH shelf_prices AS (
    SELECT item_id, unit_shelf, count(*) AS lines
    FROM model_item_lines
    WHERE week <= $last_train_week
    GROUP BY ALL
), ranked AS (
    SELECT item_id, count(DISTINCT basket_id) AS baskets,
           (SELECT first(s.unit_shelf ORDER BY s.lines DESC, s.unit_shelf DESC)
            FROM shelf_prices s WHERE s.item_id = l.item_id) AS regular_price
    FROM model_item_lines l
    WHERE week <= $last_train_week
    GROUP BY item_id
    ORDER BY baskets DESC, item_id
    LIMIT $catalog_size
), departments AS (
    SELECT CASE WHEN $level = 'category' THEN category ELSE product_id END AS item_id,
           department, count(*) AS products
    FROM products
    GROUP BY ALL
), described AS (
    SELECT CASE WHEN $level = 'category' THEN category ELSE product_id END AS item_id,
           CASE WHEN $level = 'category' THEN any_value(category) ELSE any_value(name) END AS name,
           (SELECT first(d.department ORDER BY d.products DESC, d.department) FROM departments d
            WHERE d.item_id = CASE WHEN $level = 'category' THEN p.category ELSE p.product_id END) AS department,
           any_value(category) AS category,
           avg(unit_cost) AS unit_cost
    FROM products p
    GROUP BY 1
)
SELECT r.item_id, d.name, d.department, d.category, r.baskets,
       greatest(r.regular_price, 0.01) AS regular_price,
       coalesce(CASE WHEN $level = 'product' THEN d.unit_cost END,
                coalesce(c.cost_ratio, $default_cost_ratio) * greatest(r.regular_price, 0.01)) AS unit_cost
FROM ranked r
JOIN described d USING (item_id)
LEFT JOIN cost_ratios c ON c.department = d.department
ORDER BY r.baskets DESC, r.item_id
"""

WEEKLY_PRICES = """
SELECT week, item_id, median(unit_paid) AS price
FROM model_item_lines
WHERE item_id IN (SELECT unnest($items))
GROUP BY ALL
"""

WEEKLY_PROMOTIONS = """
SELECT pr.week, CASE WHEN $level = 'category' THEN p.category ELSE p.product_id END AS item_id,
       bool_or(pr.display)::INTEGER AS display, bool_or(pr.mailer)::INTEGER AS mailer
FROM promotions pr JOIN products p USING (product_id)
GROUP BY ALL
"""

WEEK_FIRST_DAYS = "SELECT week, min(day) AS first_day FROM baskets GROUP BY week"

# Trips in time order within each customer; trip_number counts the customer's trips from 1.
TRIPS = """
SELECT b.basket_id, b.customer_id, b.week,
       row_number() OVER (PARTITION BY b.customer_id ORDER BY b.ts, b.basket_id) AS trip_number
FROM baskets b
ORDER BY b.customer_id, trip_number
"""

BASKET_ITEMS = """
SELECT DISTINCT basket_id, item_id FROM model_item_lines WHERE item_id IN (SELECT unnest($items))
"""

CUSTOMERS = """
SELECT c.customer_id, c.has_demographics, count(b.basket_id) AS trips,
       count(b.basket_id) FILTER (WHERE b.week <= $last_train_week) AS train_trips
FROM customers c LEFT JOIN baskets b USING (customer_id)
GROUP BY ALL
ORDER BY c.customer_id
"""

CUSTOMER_ATTRIBUTES = "SELECT customer_id, attribute, value FROM customer_attributes ORDER BY attribute, value"

DROP_ITEM_LINES = "DROP TABLE IF EXISTS model_item_lines"


def build_features(cur: duckdb.DuckDBPyConnection, config: ModelConfig) -> PreparedData:
    """Run the feature queries of ``config`` on a dataset cursor; return the arrays of a run."""
    first_week, last_week, n_baskets = cur.execute(WEEK_RANGE).fetchall()[0]
    if n_baskets == 0:
        raise DataError("the dataset has no baskets; expected transactions to train on")
    last_train_week = last_week - config.holdout_weeks
    if last_train_week < first_week + 1:
        raise DataError(
            f"holdout of {config.holdout_weeks} weeks leaves no training window: the data spans "
            f"weeks {first_week}-{last_week}"
        )
    level = {"level": config.level}
    try:
        cur.execute(ITEM_LINES, level)
        items = cur.execute(
            CATALOG,
            {
                **level,
                "last_train_week": last_train_week,
                "catalog_size": config.catalog_size,
                "default_cost_ratio": DEFAULT_COST_RATIO,
            },
        ).df()
        item_ids = items["item_id"].tolist()
        if len(item_ids) < 2:
            raise DataError(f"expected at least 2 items sold in the training window, found {len(item_ids)}")
        prices = cur.execute(WEEKLY_PRICES, {"items": item_ids}).df()
        promotions = cur.execute(WEEKLY_PROMOTIONS, level).df()
        week_days = cur.execute(WEEK_FIRST_DAYS).df()
        trips = cur.execute(TRIPS).df()
        basket_items = cur.execute(BASKET_ITEMS, {"items": item_ids}).df()
        customers = cur.execute(CUSTOMERS, {"last_train_week": last_train_week}).df()
        attributes = cur.execute(CUSTOMER_ATTRIBUTES).df()
    finally:
        cur.execute(DROP_ITEM_LINES)
    training_window_trips = int((trips["week"] <= last_train_week).sum())
    items["base_rate"] = (items["baskets"] + 0.5) / (training_window_trips + 1.0)  # r_i of the habit feature
    weeks = np.arange(first_week, last_week + 1)
    item_index = pd.Index(item_ids)
    week_index = pd.Index(weeks)
    regular = items["regular_price"].to_numpy(np.float64)

    price = np.tile(regular, (len(weeks), 1))  # (W, I): regular price where nothing sold
    price[week_index.get_indexer(prices["week"]), item_index.get_indexer(prices["item_id"])] = prices["price"]
    promo = np.zeros((len(weeks), len(item_ids), 2), np.float32)  # (W, I, [display, mailer])
    promotions = promotions[promotions["item_id"].isin(item_index)]
    promo_rows, promo_cols = week_index.get_indexer(promotions["week"]), item_index.get_indexer(promotions["item_id"])
    keep = promo_rows >= 0
    promo[promo_rows[keep], promo_cols[keep], 0] = promotions["display"].to_numpy()[keep]
    promo[promo_rows[keep], promo_cols[keep], 1] = promotions["mailer"].to_numpy()[keep]

    customer_index = pd.Index(customers["customer_id"])
    trip_customer = customer_index.get_indexer(trips["customer_id"]).astype(np.int64)
    trip_week = week_index.get_indexer(trips["week"]).astype(np.int64)
    trip_number = trips["trip_number"].to_numpy(np.int64)
    train_trips = customers["train_trips"].to_numpy(np.int64)
    in_holdout = trips["week"].to_numpy() > last_train_week
    rng = np.random.default_rng(config.seed)
    trip_split = np.where(in_holdout, SPLIT_HOLDOUT, SPLIT_TRAIN).astype(np.int8)
    trip_split[(~in_holdout) & (rng.random(len(trips)) < config.val_fraction)] = SPLIT_VAL
    # Held-out trips see only training-window history: their habit clock stops at the end of it.
    habit_number = np.where(in_holdout, train_trips[trip_customer] + 1, trip_number)

    trip_of_basket = pd.Index(trips["basket_id"]).get_indexer(basket_items["basket_id"])
    order = np.lexsort((item_index.get_indexer(basket_items["item_id"]), trip_of_basket))
    line_trip = trip_of_basket[order].astype(np.int64)
    line_item = item_index.get_indexer(basket_items["item_id"])[order].astype(np.int64)
    basket_offsets = np.zeros(len(trips) + 1, np.int64)
    np.cumsum(np.bincount(line_trip, minlength=len(trips)), out=basket_offsets[1:])

    habit_code, habit_trip, habit_value = habit_events(
        line_customer=trip_customer[line_trip],
        line_item=line_item,
        line_trip_number=trip_number[line_trip],
        n_items=len(item_ids),
        max_trip_number=int(trip_number.max()),
        decay=config.habit_decay,
    )
    demographics, demo_names = _one_hot_demographics(customers, attributes)
    n_weeks_total = len(weeks)
    customers = customers.assign(
        trips_per_week=customers["trips"] / n_weeks_total,
        segment=_segment(customers, attributes, config.segment_attribute),
    )
    data = PreparedData(
        items=items,
        customers=customers[["customer_id", "has_demographics", "trips", "train_trips", "trips_per_week", "segment"]],
        demographics=demographics,
        demographic_names=demo_names,
        weeks=weeks.astype(np.int64),
        last_train_week=int(last_train_week),
        season=_season_features(weeks, week_days, config.season_harmonics),
        price=price.astype(np.float32),
        promo=promo,
        trip_customer=trip_customer,
        trip_week=trip_week,
        trip_split=trip_split,
        trip_number=trip_number,
        trip_habit_number=habit_number.astype(np.int64),
        basket_offsets=basket_offsets,
        basket_items=line_item,
        habit_code=habit_code,
        habit_trip=habit_trip,
        habit_value=habit_value,
        habit_stride=int(trip_number.max()) + 2,
    )
    log.info(
        "features: %d items, %d customers, %d trips, %d basket lines, weeks %d-%d (train to %d)",
        len(item_ids),
        len(customers),
        len(trips),
        len(line_item),
        first_week,
        last_week,
        last_train_week,
    )
    return data


def _one_hot_demographics(customers: pd.DataFrame, attributes: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(H, D) one-hot of every attribute=value, plus a has-demographics column."""
    names = ["has_demographics"]
    columns = [customers["has_demographics"].to_numpy(np.float32)]
    if not attributes.empty:
        labels = attributes["attribute"] + "=" + attributes["value"]
        codes, uniques = pd.factorize(labels, sort=True)
        rows = pd.Index(customers["customer_id"]).get_indexer(attributes["customer_id"])
        one_hot = np.zeros((len(customers), len(uniques)), np.float32)
        keep = rows >= 0
        one_hot[rows[keep], codes[keep]] = 1.0
        names += list(uniques)
        columns += list(one_hot.T)
    return np.stack(columns, axis=1), names


def _segment(customers: pd.DataFrame, attributes: pd.DataFrame, attribute: str) -> pd.Series:
    """Each customer's value of ``attribute`` ('Unknown' where missing; 'All customers' if absent)."""
    chosen = attributes[attributes["attribute"] == attribute]
    if chosen.empty:
        return pd.Series("All customers", index=customers.index)
    values = customers[["customer_id"]].merge(chosen, on="customer_id", how="left")["value"]
    return values.fillna("Unknown").astype(str).set_axis(customers.index)


def _season_features(weeks: np.ndarray, week_days: pd.DataFrame, harmonics: int) -> np.ndarray:
    """(W, 2 * harmonics) annual Fourier features of each week's first day (zeros if none asked)."""
    first_days = pd.to_datetime(week_days.set_index("week").reindex(weeks)["first_day"])
    day_of_year = first_days.dt.day_of_year.to_numpy(np.float64)
    missing = np.isnan(day_of_year)  # a week with no baskets: step 7 days from the week before
    if missing.any():
        day_of_year = pd.Series(day_of_year).interpolate(limit_direction="both").to_numpy()
    phase = 2.0 * math.pi * day_of_year / 365.25
    features = [f(k * phase) for k in range(1, harmonics + 1) for f in (np.sin, np.cos)]
    if not features:
        return np.zeros((len(weeks), 0), np.float32)
    return np.stack(features, axis=1).astype(np.float32)


__all__ = ["build_features", "SPLIT_TRAIN", "SPLIT_VAL", "SPLIT_HOLDOUT"]
