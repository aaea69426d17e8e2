"""The network, the habit feature and the batches: shapes, invariants, independent recomputations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import TINY, sample_run

from engine.model.batches import TripBatches, TripTensors
from engine.model.habits import habit_events, habit_lookup
from engine.model.lightning import ChoiceModule
from engine.model.prepared import SPLIT_TRAIN, PreparedData


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return PreparedData.load(sample_run().run_dir)


@pytest.fixture(scope="module")
def network(data):
    from engine.model.runs import CHECKPOINT_FILE

    return ChoiceModule.load_from_checkpoint(sample_run().run_dir / CHECKPOINT_FILE, map_location="cpu").network.eval()


@pytest.fixture(scope="module")
def tensors(data) -> TripTensors:
    return TripTensors(data, TINY.habit_decay)


def one_batch(tensors, data, negatives=8, trips=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return tensors.batch(torch.from_numpy(data.trips_in(SPLIT_TRAIN)[:trips]), negatives, generator)


def test_batch_shapes_labels_and_importance_weights(tensors, data):
    batch = one_batch(tensors, data)
    B, N, K = 64, batch.item.shape[0], 8
    L = batch.basket_item.shape[0]
    assert batch.customer.shape == (B,) and batch.season.shape == (B, data.season.shape[1])
    assert N == L + B * K and batch.row.shape == batch.price.shape == batch.habit.shape == (N,)
    assert batch.promo.shape == (N, 2)
    assert torch.equal(batch.label[:L], torch.ones(L)) and torch.equal(batch.label[L:], torch.zeros(B * K))
    # a sampled item that is in the basket has weight 0, every other sample stands for I / K items
    basket = set(zip(batch.basket_row.tolist(), batch.basket_item.tolist(), strict=True))
    for row, item, weight in zip(
        batch.row[L:].tolist(), batch.item[L:].tolist(), batch.weight[L:].tolist(), strict=True
    ):
        assert weight == (0.0 if (row, item) in basket else pytest.approx(data.n_items / K))
    # basket items are exactly the trip's basket, in the prepared order
    trips = data.trips_in(SPLIT_TRAIN)[:64]
    expected = np.concatenate([data.basket_items[data.basket_offsets[t] : data.basket_offsets[t + 1]] for t in trips])
    assert np.array_equal(batch.basket_item.numpy(), expected)
    # price and promotion are those of the trip's week
    weeks = data.trip_week[trips][batch.row.numpy()]
    assert np.allclose(batch.price.numpy(), data.price[weeks, batch.item.numpy()])


def test_epochs_cover_every_training_trip_once_and_ddp_shards_are_disjoint(tensors, data):
    trips = data.trips_in(SPLIT_TRAIN)
    seen = []
    for rank in range(2):
        batches = TripBatches(tensors, trips, 300, 2, seed=3, shuffle=True, rank=rank, world_size=2)
        rows = [b.customer for b in batches]
        assert len(rows) == len(batches)
        seen.append(sum(len(r) for r in rows))
    assert seen[0] == seen[1] == len(trips) // 2  # equal shards: DDP ranks step together
    single = TripBatches(tensors, trips, 300, 2, seed=3, shuffle=True)
    first, second = [torch.cat([b.customer for b in single]) for _ in range(2)]
    assert len(first) == len(trips) and not torch.equal(first, second)  # a new permutation per epoch
    assert torch.equal(torch.sort(first).values, torch.sort(second).values)


def test_forward_and_catalog_utility_agree(network, tensors, data):
    batch = one_batch(tensors, data)
    with torch.no_grad():
        rows = network(batch)  # (N,)
        week = tensors.trip_week[torch.from_numpy(data.trips_in(SPLIT_TRAIN)[:64])]
        I, B = data.n_items, 64
        habit = tensors.habit(
            batch.customer.repeat_interleave(I),
            torch.arange(I).repeat(B),
            tensors.trip_habit_number[torch.from_numpy(data.trips_in(SPLIT_TRAIN)[:64])].repeat_interleave(I),
        ).reshape(B, I)
        full = network.catalog_utility(
            batch.customer,
            tensors.season[week],
            habit,
            tensors.price[week],
            tensors.promo[week],
            network.basket_sums(batch.basket_item, batch.basket_offsets),
        )  # (B, I): each item against the whole basket
    assert full.shape == (B, I) and rows.shape == batch.item.shape
    L = batch.basket_item.shape[0]
    # sampled items are scored against the whole basket
    sampled = full[batch.row[L:], batch.item[L:]]
    assert torch.allclose(rows[L:], sampled, atol=1e-4)
    # a basket item is scored against the rest of the basket: drop its own couplings
    with torch.no_grad():
        own = network.coupling_rows(batch.basket_item)[torch.arange(L), batch.basket_item]
    assert torch.allclose(rows[:L], full[batch.basket_row, batch.basket_item] - own, atol=1e-4)


def test_price_coefficient_is_positive_and_coupling_symmetric(network):
    with torch.no_grad():
        beta = torch.tensor([-1e3, -30.0, 0.0, 30.0])
        b = network.price_sensitivity(beta, torch.zeros(4, dtype=torch.int64))
        assert (b >= 0).all() and (b[1:] > 0).all()
        a, c = torch.arange(0, 20), torch.arange(20, 40)
        assert torch.allclose(network.coupling(a, c), network.coupling(c, a))


def test_demand_falls_as_price_rises_for_random_customers_and_items(network, data):
    rng = np.random.default_rng(0)
    customers = torch.from_numpy(rng.integers(0, data.n_customers, 50))
    items = torch.from_numpy(rng.integers(0, data.n_items, 50))
    prices = torch.linspace(0.0, 50.0, 101)
    with torch.no_grad():
        _, beta_customer = network.customer_parameters(customers)
        b = network.price_sensitivity(beta_customer, items)  # (50,)
        # utility is affine in price with slope -b: probabilities along the sweep
        base = network.catalog_utility(
            customers,
            torch.zeros(50, data.season.shape[1]),
            torch.zeros(50, data.n_items),
            torch.zeros(50, data.n_items),
            torch.zeros(50, data.n_items, 2),
        )[torch.arange(50), items]
        probability = torch.sigmoid(base[:, None] - b[:, None] * prices[None, :])  # (50, 101)
        # and the same sweep through the full network path, price column by column
        swept = torch.stack(
            [
                network.catalog_utility(
                    customers,
                    torch.zeros(50, data.season.shape[1]),
                    torch.zeros(50, data.n_items),
                    torch.full((50, data.n_items), float(p)),
                    torch.zeros(50, data.n_items, 2),
                )[torch.arange(50), items]
                for p in prices
            ],
            dim=1,
        )
    assert torch.allclose(torch.sigmoid(swept), probability, atol=1e-5)
    assert (torch.diff(torch.sigmoid(swept), dim=1) <= 0).all(), "demand rose with price somewhere"
    assert (b > 0).all()


def test_habit_lookup_matches_the_loyalty_recursion():
    rng = np.random.default_rng(1)
    n_customers, n_items, n_trips, decay = 4, 5, 30, 0.8
    bought = rng.random((n_customers, n_trips, n_items)) < 0.3  # trip numbers 1..n_trips
    customer, trip, item = np.nonzero(bought)
    base_rate = torch.full((n_items,), 0.25)
    code, event_trip, value = habit_events(customer, item, trip + 1, n_items, n_trips, decay)
    h, i, n = np.meshgrid(np.arange(n_customers), np.arange(n_items), np.arange(1, n_trips + 2), indexing="ij")
    got = habit_lookup(
        torch.from_numpy(code),
        torch.from_numpy(event_trip),
        torch.from_numpy(value),
        n_trips + 2,
        base_rate,
        decay,
        torch.from_numpy(h.ravel()),
        torch.from_numpy(i.ravel()),
        torch.from_numpy(n.ravel()),
    ).reshape(h.shape)
    loyalty = np.zeros((n_customers, n_items))
    for t in range(1, n_trips + 2):  # the feature on trip t uses trips 1..t-1 only
        expected = np.log1p(loyalty / 0.25)
        assert np.allclose(got[:, :, t - 1].numpy(), expected, atol=1e-5), f"trip {t}"
        if t <= n_trips:
            loyalty = decay * loyalty + (1 - decay) * bought[:, t - 1, :]
