"""Batches sliced from tensors built once: no Dataset, no DataLoader, no Python per example.

``TripTensors`` holds a run's prepared arrays as tensors on one device. ``TripTensors.batch``
turns a vector of trip indices into a ``ChoiceBatch``: every basket item of those trips (a
purchase, scored against the rest of its basket) plus ``negatives`` catalog items per trip drawn
uniformly (non-purchases, scored against the whole basket, with their price that week). A draw
that hits the basket gets weight 0; the others get weight I / negatives, so the weighted loss is
an unbiased estimate of the loss over the whole catalog, and the probabilities stay calibrated
per trip (what bundle take rates need).

``TripBatches`` iterates over a split: a fresh permutation per epoch from a seeded generator,
sharded by rank for DDP (every rank gets the same number of batches).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from engine.model.habits import habit_lookup
from engine.model.network import ChoiceBatch
from engine.model.prepared import PreparedData


class TripTensors:
    """The prepared arrays of a run as tensors on ``device``, and batch assembly from them."""

    def __init__(self, data: PreparedData, decay: float, device: torch.device | str = "cpu") -> None:
        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(device)

        self.device = torch.device(device)
        self.n_items = data.n_items
        self.decay = decay
        self.price = tensor(data.price)  # (W, I)
        self.promo = tensor(data.promo)  # (W, I, P)
        self.season = tensor(data.season)  # (W, S)
        self.trip_customer = tensor(data.trip_customer)  # (T,)
        self.trip_week = tensor(data.trip_week)  # (T,)
        self.trip_habit_number = tensor(data.trip_habit_number)  # (T,)
        self.basket_offsets = tensor(data.basket_offsets)  # (T+1,)
        self.basket_items = tensor(data.basket_items)  # (L,)
        self.habit_code = tensor(data.habit_code)  # (E,)
        self.habit_trip = tensor(data.habit_trip)  # (E,)
        self.habit_value = tensor(data.habit_value)  # (E,)
        self.habit_stride = data.habit_stride
        self.base_rate = tensor(data.items["base_rate"].to_numpy(np.float32))  # (I,)

    def habit(self, customer: torch.Tensor, item: torch.Tensor, trip_number: torch.Tensor) -> torch.Tensor:
        """habit(h,i) before trip ``trip_number``, rows (N,)."""
        return habit_lookup(
            self.habit_code,
            self.habit_trip,
            self.habit_value,
            self.habit_stride,
            self.base_rate,
            self.decay,
            customer,
            item,
            trip_number,
        )

    def catalog_habits(self, customer: torch.Tensor, trip_number: torch.Tensor) -> torch.Tensor:
        """habit(h,i) of every catalog item before trip ``trip_number`` of each row's customer: (B, I)
        for rows (B,). Rows that share a customer and a trip number are looked up once (held-out
        habits are frozen per customer; replayed trips all use the habit at the end of the window)."""
        I = self.n_items
        key, inverse = torch.unique(torch.stack([customer, trip_number], dim=1), dim=0, return_inverse=True)  # (U, 2)
        U = len(key)
        habit = self.habit(
            key[:, 0].repeat_interleave(I), torch.arange(I, device=key.device).repeat(U), key[:, 1].repeat_interleave(I)
        ).reshape(U, I)  # (U, I)
        return habit[inverse]  # (B, I)

    def baskets(self, trips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Basket items (L,) of ``trips`` (B,), the batch row (L,) of each, and the position (B,)
        of each trip's first item in them (EmbeddingBag offsets)."""
        start = self.basket_offsets[trips]  # (B,)
        length = self.basket_offsets[trips + 1] - start  # (B,)
        row = torch.repeat_interleave(torch.arange(len(trips), device=self.device), length)  # (L,)
        first = torch.cumsum(length, 0) - length  # (B,)
        position = start[row] + torch.arange(len(row), device=self.device) - first[row]  # (L,)
        return self.basket_items[position], row, first

    def batch(self, trips: torch.Tensor, negatives: int, generator: torch.Generator) -> ChoiceBatch:
        """The ``ChoiceBatch`` of ``trips`` (B,) with ``negatives`` sampled items per trip."""
        B, I = len(trips), self.n_items
        basket_item, basket_row, basket_offsets = self.baskets(trips)  # (L,), (L,), (B,)
        sampled = torch.randint(0, I, (B * negatives,), generator=generator, device=self.device)  # (B*Kn,)
        sampled_row = torch.arange(B, device=self.device).repeat_interleave(negatives)  # (B*Kn,)
        in_trip = torch.zeros(B, I, dtype=torch.bool, device=self.device)  # (B, I) basket membership
        in_trip[basket_row, basket_item] = True
        hit = in_trip[sampled_row, sampled]  # (B*Kn,) a draw that is in the basket
        item = torch.cat([basket_item, sampled])  # (N,)
        row = torch.cat([basket_row, sampled_row])  # (N,)
        n_basket = len(basket_item)
        in_basket = torch.zeros(len(item), device=self.device)  # (N,)
        in_basket[:n_basket] = 1.0
        weight = torch.cat([torch.ones(n_basket, device=self.device), (~hit).float() * (I / negatives)])  # (N,)
        week = self.trip_week[trips][row]  # (N,)
        customer = self.trip_customer[trips]  # (B,)
        return ChoiceBatch(
            customer=customer,
            season=self.season[self.trip_week[trips]],
            basket_item=basket_item,
            basket_row=basket_row,
            basket_offsets=basket_offsets,
            item=item,
            row=row,
            in_basket=in_basket,
            habit=self.habit(customer[row], item, self.trip_habit_number[trips][row]),
            price=self.price[week, item],
            promo=self.promo[week, item],
            label=in_basket.clone(),
            weight=weight,
        )


class TripBatches:
    """Iterable of ``ChoiceBatch`` over the trips of one split; re-iterable once per epoch.

    Parameters
    ----------
    tensors : the run's tensors.
    trips : (T_split,) trip indices of the split.
    batch_trips, negatives : trips per batch and sampled items per trip.
    seed : base seed; epoch e uses permutation and negatives from ``seed + e``.
    shuffle : False for validation (same order and same negatives every epoch).
    rank, world_size : this process's shard for DDP.
    """

    def __init__(
        self,
        tensors: TripTensors,
        trips: np.ndarray,
        batch_trips: int,
        negatives: int,
        seed: int,
        shuffle: bool,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.tensors = tensors
        self.trips = torch.from_numpy(trips).to(tensors.device)
        self.batch_trips = batch_trips
        self.negatives = negatives
        self.seed = seed
        self.shuffle = shuffle
        self.rank, self.world_size = rank, world_size
        self.per_rank = len(trips) // world_size  # equal shards: DDP ranks must step together
        assert self.per_rank > 0, f"{len(trips)} trips cannot be shared by {world_size} processes"
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(self.per_rank / self.batch_trips)

    def __iter__(self) -> Iterator[ChoiceBatch]:
        generator = torch.Generator(device=self.tensors.device)
        generator.manual_seed(self.seed + (self.epoch if self.shuffle else 0))
        self.epoch += 1
        if self.shuffle:
            order = self.trips[torch.randperm(len(self.trips), generator=generator, device=self.tensors.device)]
        else:
            order = self.trips
        shard = order[self.rank :: self.world_size][: self.per_rank]  # (per_rank,)
        for start in range(0, self.per_rank, self.batch_trips):
            yield self.tensors.batch(shard[start : start + self.batch_trips], self.negatives, generator)
