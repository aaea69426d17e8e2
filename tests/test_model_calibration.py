"""Replayed trips and the held-out calibration: the SQL and numpy replays agree, the calibration
checks the very projection pricing uses, and its observed side is recomputed independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import TINY, sample_run

from engine import store
from engine.model import calibration as C
from engine.model.lightning import ChoiceModule
from engine.model.prepared import SPLIT_HOLDOUT, PreparedData
from engine.model.projection import recent_level
from engine.model.replay import replayed_trip_indices
from engine.model.runs import CHECKPOINT_FILE
from engine.pricing.demand import FIELD
from engine.pricing.vectorized import load_demand


@pytest.fixture(scope="module")
def shared():
    return sample_run()


@pytest.fixture(scope="module")
def data(shared):
    return PreparedData.load(shared.run_dir)


@pytest.fixture(scope="module")
def network(shared):
    return ChoiceModule.load_from_checkpoint(shared.run_dir / CHECKPOINT_FILE, map_location="cpu").network.eval()


def test_sql_replay_equals_the_numpy_replay(shared, data):
    """model_trips (SQL, at registration) holds exactly the trips replayed_trip_indices picks."""
    with store.dataset_cursor(shared.con, "sample") as cur:
        rows = cur.execute(
            "SELECT customer_id, trip, items FROM model_trips WHERE run_id = $run", {"run": shared.run_dir.name}
        ).fetchall()
    replayed = replayed_trip_indices(data, TINY.replay_trips)
    ids, items = data.customers["customer_id"].to_numpy(), data.items["item_id"].to_numpy()
    expected = {}
    for trip in replayed:
        basket = sorted(items[data.basket_items[data.basket_offsets[trip] : data.basket_offsets[trip + 1]]])
        expected.setdefault(ids[data.trip_customer[trip]], []).append((data.trip_number[trip], basket))
    got = {}
    for customer, trip, basket in rows:
        got.setdefault(customer, {})[trip] = sorted(basket)
    assert set(got) == set(expected)
    for customer, trips in expected.items():
        newest_first = [basket for _, basket in sorted(trips, reverse=True)]
        assert [got[customer][k + 1] for k in range(len(newest_first))] == newest_first
        assert len(trips) <= TINY.replay_trips
    # only training-window trips are replayed
    assert (data.trip_split[replayed] != SPLIT_HOLDOUT).all()


def test_calibration_checks_the_projection_pricing_uses(shared, data, network):
    """Pair purchases per week predicted by the calibration code, weighted by each customer's trips
    per week, equal the pricing projection's no-bundle purchases of the whole pair (SQL export,
    replayed trips, recent level: every piece in play)."""
    window = np.flatnonzero(data.trip_split != SPLIT_HOLDOUT)
    pairs = C.top_pairs(data, window, 3)
    trips_per_week = data.customers["trips_per_week"].to_numpy()[:, None]  # (H, 1): one "week"
    _, predicted = C._model_predictions(network, data, TINY, trips_per_week, pairs)
    ids = data.items["item_id"].to_numpy()
    for (a, b), value in zip(pairs, predicted, strict=True):
        demand = load_demand(shared.con, "sample", [ids[a], ids[b]], run=shared.run_dir.name)
        projected = demand.without_bundle.sum(axis=(0, 1))[FIELD["separate_full_share"]]
        assert value == pytest.approx(projected, rel=2e-4)


def test_observed_side_and_ratios_by_plain_loops(shared, data, network):
    out = C.calibration(network, data, TINY)
    holdout = data.trips_in(SPLIT_HOLDOUT)
    baskets = [set(data.basket_items[data.basket_offsets[t] : data.basket_offsets[t + 1]].tolist()) for t in holdout]
    ids = list(data.items["item_id"])
    for row in out["pairs"][:5]:
        a, b = ids.index(row["item_a"]), ids.index(row["item_b"])
        assert row["observed"] == sum(a in s and b in s for s in baskets)
    for row in out["items"][:5]:
        assert row["observed"] == sum(ids.index(row["item_id"]) in s for s in baskets)
    observed_total = sum(len(s) for s in baskets)
    assert sum(w["observed"] for w in out["weeks"]) == observed_total
    model_total = sum(w["model"] for w in out["weeks"])
    assert out["model"]["total_ratio"] == pytest.approx(model_total / observed_total)
    ratios = [r["model"] / r["observed"] for r in out["pairs"] if r["observed"] > 0]
    assert out["model"]["pair_rate_ratio"]["median"] == pytest.approx(np.median(ratios))
    # the sample market is drawn from the model's own family: its projection is calibrated
    assert 0.8 < out["model"]["total_ratio"] < 1.25
    assert 0.6 < out["model"]["pair_rate_ratio"]["median"] < 1.6


def test_recent_level_matches_each_items_purchases_on_the_replayed_trips():
    """With a flat prior the recent level reproduces each item's purchases exactly; with a tight
    prior it stays near 0."""
    rng = np.random.default_rng(0)
    utilities = torch.from_numpy(rng.normal(-2.0, 1.0, (400, 6))).float()
    basket = torch.from_numpy(rng.random((400, 6)) < np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5]))
    loose = recent_level(utilities, basket, prior=100.0)
    predicted = torch.sigmoid(utilities + torch.from_numpy(loose).float()).sum(dim=0).numpy()
    np.testing.assert_allclose(predicted, basket.sum(dim=0).numpy(), rtol=1e-3)
    tight = recent_level(utilities, basket, prior=0.01)
    assert np.abs(tight).max() < 0.05 * np.abs(loose).max()


def test_anchored_couplings_reproduce_the_joint_purchases_of_the_replayed_trips():
    """With a flat prior every pair's expected joint purchases equal the observed ones (the items'
    own utilities untouched); with a tight prior the model's couplings stay."""
    from engine.model.projection import anchor_couplings

    rng = np.random.default_rng(1)
    utilities = rng.normal(-1.5, 1.0, (3000, 3))
    coupling = np.array([[0.0, 1.2, -0.4], [1.2, 0.0, 0.3], [-0.4, 0.3, 0.0]])
    observed = np.array([[0.0, 180.0, 40.0], [180.0, 0.0, 90.0], [40.0, 90.0, 0.0]])
    loose = anchor_couplings(utilities, coupling, observed, prior=100.0)
    bits = ((np.arange(8)[:, None] >> np.arange(3)[None, :]) & 1).astype(float)  # (8, 3)
    option_u = utilities @ bits.T + 0.5 * np.einsum("ak,kl,al->a", bits, loose, bits)[None, :]
    probs = np.exp(option_u) / np.exp(option_u).sum(axis=1, keepdims=True)  # (R, 8)
    for k, m in [(0, 1), (0, 2), (1, 2)]:
        assert probs @ (bits[:, k] * bits[:, m]) @ np.ones(len(utilities)) == pytest.approx(observed[k, m], rel=1e-3)
    assert np.allclose(loose, loose.T) and np.allclose(np.diag(loose), 0)
    np.testing.assert_allclose(anchor_couplings(utilities, coupling, observed, prior=1e-4), coupling, atol=1e-3)
