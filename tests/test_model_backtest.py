"""Promotion backtest: the block of a run, an independent recomputation, price-term invariants."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from model_fixtures import sample_run

from engine.model.backtest import MAX_ROWS, MIN_CHANGE, MIN_REGULAR_PURCHASES, backtest
from engine.model.batches import TripTensors
from engine.model.config import ModelConfig
from engine.model.lightning import ChoiceModule
from engine.model.prepared import SPLIT_HOLDOUT, SPLIT_TRAIN, PreparedData
from engine.model.runs import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, read_json


@pytest.fixture(scope="module")
def run():
    """(network, data, config) of the shared tiny run, loaded from its folder."""
    run_dir = sample_run().run_dir
    network = ChoiceModule.load_from_checkpoint(run_dir / CHECKPOINT_FILE, map_location="cpu").network
    return network, PreparedData.load(run_dir), ModelConfig.from_dict(read_json(run_dir / CONFIG_FILE))


@pytest.fixture(scope="module")
def block(run):
    return backtest(*run)


def _holdout_trips_per_week(data: PreparedData) -> dict[int, int]:
    """Dataset week number -> held-out trips that week."""
    holdout = data.trips_in(SPLIT_HOLDOUT)
    return pd.Series(data.weeks[data.trip_week[holdout]]).value_counts().to_dict()


@pytest.mark.slow
def test_backtest_block_of_the_sample_run(run, block):
    _, data, _ = run
    assert set(block) == {"item_weeks", "items", "min_change", "model", "no_price_effect", "rows"}
    # the synthetic sample discounts a fifth of its product-weeks, so its held-out weeks hold price moves
    assert block["item_weeks"] > 0 and 0 < block["items"] <= block["item_weeks"]
    assert block["min_change"] == MIN_CHANGE
    for name in ("model", "no_price_effect"):
        assert set(block[name]) == {"promo_lift_corr", "promo_lift_wape"}
        assert all(v is not None and np.isfinite(v) for v in block[name].values())
        assert -1 <= block[name]["promo_lift_corr"] <= 1 and block[name]["promo_lift_wape"] >= 0
    rows = block["rows"]
    assert len(rows) == min(MAX_ROWS, block["item_weeks"])
    assert all(abs(r["discount"]) >= MIN_CHANGE - 1e-6 for r in rows)
    assert all(r["observed_lift"] >= 0 and r["model_lift"] > 0 and r["no_price_effect_lift"] > 0 for r in rows)
    trips = _holdout_trips_per_week(data)
    week_trips = [trips[r["week"]] for r in rows]
    assert week_trips == sorted(week_trips, reverse=True), "rows: most held-out trips first"
    json.dumps(block, allow_nan=False)  # JSON-ready, no NaN
    # the trained run's metrics hold the block (the observed side does not depend on the weights)
    saved = json.loads((sample_run().run_dir / METRICS_FILE).read_text())["backtest"]
    assert (saved["item_weeks"], saved["items"]) == (block["item_weeks"], block["items"])


def test_observed_lifts_match_an_independent_recomputation(run, block):
    _, data, _ = run
    holdout = data.trips_in(SPLIT_HOLDOUT)
    baskets = [set(data.basket_items[data.basket_offsets[t] : data.basket_offsets[t + 1]].tolist()) for t in holdout]
    trip_weeks = data.weeks[data.trip_week[holdout]]
    held_weeks = [w for w in range(len(data.weeks)) if data.weeks[w] > data.last_train_week]
    regular = data.items["regular_price"].to_numpy()

    def lift_and_kept(item: int, week: int) -> tuple[float, bool]:
        in_week = [basket for basket, w in zip(baskets, trip_weeks, strict=True) if w == data.weeks[week]]
        regular_weeks = {
            int(data.weeks[w]) for w in held_weeks if abs(data.price[w, item] / regular[item] - 1) < MIN_CHANGE
        }
        regular_trips = regular_bought = 0
        for basket, w in zip(baskets, trip_weeks, strict=True):
            if w in regular_weeks:
                regular_trips += 1
                regular_bought += item in basket
        moved = abs(data.price[week, item] / regular[item] - 1) >= MIN_CHANGE
        kept = moved and regular_bought >= MIN_REGULAR_PURCHASES and len(in_week) > 0
        rate = sum(item in basket for basket in in_week) / max(len(in_week), 1)
        return rate / (regular_bought / regular_trips) if kept else float("nan"), kept

    kept = [(i, w) for i in range(data.n_items) for w in held_weeks if lift_and_kept(i, w)[1]]
    assert block["item_weeks"] == len(kept)
    assert block["items"] == len({i for i, _ in kept})
    index_of = {item_id: i for i, item_id in enumerate(data.items["item_id"].astype(str))}
    week_of = {int(number): w for w, number in enumerate(data.weeks)}
    rows = block["rows"]
    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        item, week = index_of[row["item_id"]], week_of[row["week"]]
        assert row["observed_lift"] == pytest.approx(lift_and_kept(item, week)[0], rel=1e-9)
        assert row["discount"] == pytest.approx(1 - data.price[week, item] / regular[item], rel=1e-6)


def test_model_lift_matches_a_per_trip_recomputation(run, block):
    """Model lift of one item-week from one trip at a time, habits looked up per trip."""
    network, data, config = run
    tensors = TripTensors(data, config.habit_decay)
    row = block["rows"][0]
    item = int(np.flatnonzero(data.items["item_id"].astype(str) == row["item_id"])[0])
    week = int(np.flatnonzero(data.weeks == row["week"])[0])
    holdout = data.trips_in(SPLIT_HOLDOUT)
    regular = data.regular_price[item]
    regular_weeks = {
        w for w in np.unique(data.trip_week[holdout]) if abs(data.price[w, item] / regular - 1) < MIN_CHANGE
    }

    def probability(trip: int, at_regular: bool) -> float:
        t = torch.tensor([trip])
        w = tensors.trip_week[t]
        habit = tensors.habit(
            tensors.trip_customer[t].repeat(data.n_items),
            torch.arange(data.n_items),
            tensors.trip_habit_number[t].repeat(data.n_items),
        )[None, :]
        price = torch.from_numpy(data.regular_price)[None, :] if at_regular else tensors.price[w]
        with torch.no_grad():
            u = network.catalog_utility(tensors.trip_customer[t], tensors.season[w], habit, price, tensors.promo[w])
        return float(torch.sigmoid(u[0, item]))

    for at_regular, key in ((False, "model_lift"), (True, "no_price_effect_lift")):
        rate = np.mean([probability(t, at_regular) for t in holdout if data.trip_week[t] == week])
        regular_rate = np.mean([probability(t, at_regular) for t in holdout if data.trip_week[t] in regular_weeks])
        assert row[key] == pytest.approx(rate / regular_rate, rel=1e-4)


def test_price_term_moves_the_model_lift_the_right_way(run):
    network, data, config = run
    held = data.weeks > data.last_train_week
    relative = np.abs(data.price / data.regular_price[None, :] - 1)  # (W, I)
    snapped = data.price.copy()
    at_regular = held[:, None] & (relative < MIN_CHANGE)
    snapped[at_regular] = np.broadcast_to(data.regular_price, snapped.shape)[at_regular]
    # regular weeks exactly at the regular price: both scorers share the denominator, so with
    # b > 0 the model's lift is above the baseline's at a discount and below it at a price rise
    block = backtest(network, dataclasses.replace(data, price=snapped), config)
    assert block["item_weeks"] > 0
    for row in block["rows"]:
        if row["discount"] > 0:
            assert row["model_lift"] > row["no_price_effect_lift"], row
        else:
            assert row["model_lift"] < row["no_price_effect_lift"], row
    assert any(row["discount"] > 0 for row in block["rows"])
    # a network without price sensitivity (b ~ 0) is its own no-price-effect baseline
    flat = copy.deepcopy(network)
    with torch.no_grad():
        flat.beta_item.fill_(-60.0)
    flat_block = backtest(flat, data, config)
    model = [r["model_lift"] for r in flat_block["rows"]]
    assert model == pytest.approx([r["no_price_effect_lift"] for r in flat_block["rows"]], rel=1e-6)
    assert flat_block["model"] == pytest.approx(flat_block["no_price_effect"], rel=1e-6)


def test_no_holdout_or_no_price_move_gives_an_empty_block(run):
    network, data, config = run
    split = np.where(data.trip_split == SPLIT_HOLDOUT, SPLIT_TRAIN, data.trip_split).astype(np.int8)
    no_holdout = dataclasses.replace(data, trip_split=split)
    assert backtest(network, no_holdout, config) == {"item_weeks": 0}
    flat_prices = np.broadcast_to(data.regular_price, data.price.shape).copy()
    assert backtest(network, dataclasses.replace(data, price=flat_prices), config) == {"item_weeks": 0}
