"""Feature building (SQL): catalog, prices, split, habits, against independent recomputations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_fixtures import TINY, sample_run

from engine import store
from engine.model.config import ModelConfig
from engine.model.features import build_features
from engine.model.prepared import SPLIT_HOLDOUT, SPLIT_TRAIN, SPLIT_VAL

LINES = """
SELECT b.basket_id, b.customer_id, b.week, b.ts, l.product_id, p.category, l.quantity, l.paid, l.list_amount
FROM lines l JOIN baskets b USING (basket_id) JOIN products p USING (product_id)
"""


@pytest.fixture(scope="module")
def lines() -> pd.DataFrame:
    with store.dataset_cursor(sample_run().con, "sample") as cur:
        return cur.execute(LINES).df()


@pytest.fixture(scope="module")
def data():
    with store.dataset_cursor(sample_run().con, "sample") as cur:
        return build_features(cur, TINY.replace(catalog_size=30))


def test_catalog_is_the_top_items_by_training_baskets(data, lines):
    last_train = lines["week"].max() - TINY.holdout_weeks
    assert data.last_train_week == last_train
    counts = lines[lines["week"] <= last_train].groupby("product_id")["basket_id"].nunique()
    top = counts.sort_values(ascending=False)
    assert data.n_items == 30
    assert list(data.items["baskets"]) == sorted(data.items["baskets"], reverse=True)
    assert data.items.set_index("item_id")["baskets"].to_dict() == counts[data.items["item_id"]].to_dict()
    assert data.items["baskets"].min() >= top.iloc[30]  # nothing left out sold in more baskets


def test_prices_are_weekly_medians_and_regular_prices_modal_shelf_prices(data, lines):
    unit = lines.assign(
        unit_paid=lines["paid"] / lines["quantity"], unit_shelf=(lines["list_amount"] / lines["quantity"]).round(2)
    )
    last_train = data.last_train_week
    for k, item in enumerate(data.items["item_id"][:10]):
        mine = unit[unit["product_id"] == item]
        modes = mine[mine["week"] <= last_train]["unit_shelf"].mode()
        assert round(float(data.regular_price[k]), 2) == round(modes.max(), 2), item  # modal; ties: the higher
        weekly = mine.groupby("week")["unit_paid"].median()
        for w, week in enumerate(data.weeks):
            expected = weekly.get(week, data.regular_price[k])  # no sale that week: regular price
            assert data.price[w, k] == pytest.approx(expected, rel=1e-5), (item, week)


def test_time_split_and_frozen_holdout_history(data, lines):
    trip_weeks = data.weeks[data.trip_week]
    assert np.array_equal(data.trip_split == SPLIT_HOLDOUT, trip_weeks > data.last_train_week)
    val_share = (data.trip_split == SPLIT_VAL).sum() / (data.trip_split != SPLIT_HOLDOUT).sum()
    assert 0.02 < val_share < 0.09
    holdout = data.trip_split == SPLIT_HOLDOUT
    train_trips = data.customers["train_trips"].to_numpy()[data.trip_customer]
    # held-out trips see only training-window history: the habit clock stops after the last training trip
    assert np.array_equal(data.trip_habit_number[holdout], train_trips[holdout] + 1)
    assert np.array_equal(data.trip_habit_number[~holdout], data.trip_number[~holdout])
    assert len(data.trip_customer) == lines["basket_id"].nunique()


def test_basket_items_are_the_catalog_items_of_each_trip(data, lines):
    catalog = set(data.items["item_id"])
    expected = lines[lines["product_id"].isin(catalog)].groupby("basket_id")["product_id"].apply(frozenset)
    with store.dataset_cursor(sample_run().con, "sample") as cur:
        trips = (
            cur.execute("SELECT basket_id FROM baskets ORDER BY customer_id, ts, basket_id")
            .df()["basket_id"]
            .to_numpy()
        )
    ids = data.items["item_id"].to_numpy()
    for t in range(0, len(trips), 97):
        got = frozenset(ids[data.basket_items[data.basket_offsets[t] : data.basket_offsets[t + 1]]])
        assert got == expected.get(trips[t], frozenset()), trips[t]


def test_category_level_makes_each_category_one_item(lines):
    with store.dataset_cursor(sample_run().con, "sample") as cur:
        data = build_features(cur, ModelConfig(level="category", holdout_weeks=TINY.holdout_weeks))
    train = lines[lines["week"] <= data.last_train_week]
    counts = train.groupby("category")["basket_id"].nunique()
    assert set(data.items["item_id"]) == set(counts.index)
    assert data.items.set_index("item_id")["baskets"].to_dict() == counts.to_dict()
    assert (data.items["name"] == data.items["item_id"]).all()
    assert (data.trip_split == SPLIT_TRAIN).sum() > 0
