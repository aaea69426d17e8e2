"""Lightning layers around the network: ``ChoiceModule`` (one shared step) and ``TripDataModule``.

The DataModule builds the run's tensors once, on the training device, in ``setup``; its
"dataloaders" are ``TripBatches`` iterables that slice batches from those tensors (no worker
processes, no per-example Python). Under DDP each rank takes its own shard of every epoch's
permutation.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from engine.model.batches import TripBatches, TripTensors
from engine.model.config import ModelConfig
from engine.model.network import ChoiceBatch, ChoiceNetwork, weighted_nll
from engine.model.prepared import SPLIT_TRAIN, SPLIT_VAL, PreparedData

VALIDATION_SEED_OFFSET = 1_000_003  # validation negatives: fixed draws, distinct from training's


class ChoiceModule(pl.LightningModule):
    """Maximum likelihood (pseudo-likelihood) training of ``ChoiceNetwork``.

    The loss per batch is the importance-weighted binary NLL summed over each trip's scored
    items, averaged over trips, plus the Gaussian-prior penalty spread over the training trips
    (so the whole epoch adds up to the MAP objective). ``val_loss`` is the NLL part alone.

    Hyperparameters are primitives only (a config dict and table sizes), so checkpoints load
    with ``weights_only=True``.
    """

    def __init__(
        self,
        config: dict,
        n_items: int,
        n_customers: int,
        n_demographics: int,
        n_season: int,
        n_promo: int,
        n_train_trips: int,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = ModelConfig.from_dict(config)
        self.network = ChoiceNetwork(
            n_items, n_customers, n_demographics, n_season, n_promo, self.config.latent_dim, self.config.demo_hidden
        )
        self.n_train_trips = n_train_trips

    @classmethod
    def for_data(cls, data: PreparedData, config: ModelConfig) -> ChoiceModule:
        """A fresh module sized for ``data``, lambda started at each item's base log-odds."""
        module = cls(
            config=config.to_dict(),
            n_items=data.n_items,
            n_customers=data.n_customers,
            n_demographics=data.demographics.shape[1],
            n_season=data.season.shape[1],
            n_promo=data.promo.shape[2],
            n_train_trips=int((data.trip_split == SPLIT_TRAIN).sum()),
        )
        rate = data.items["base_rate"].to_numpy(np.float64)
        module.network.initialize_from_data(
            torch.from_numpy(data.demographics), torch.from_numpy(np.log(rate / (1.0 - rate)).astype(np.float32))
        )
        return module

    def forward(self, batch: ChoiceBatch) -> torch.Tensor:
        return self.network(batch)

    def shared_step(self, batch: ChoiceBatch, stage: str) -> torch.Tensor:
        trips = batch.customer.shape[0]
        nll = weighted_nll(self.network(batch), batch.label, batch.weight) / trips  # per trip
        self.log(f"{stage}_loss", nll, on_step=False, on_epoch=True, batch_size=trips, sync_dist=True)
        if stage != "train":
            return nll
        penalty = self.network.prior_penalty(self.config.l2_customer, self.config.l2_item, self.config.l2_season)
        return nll + penalty / self.n_train_trips  # per trip, like nll: an epoch sums to the MAP objective

    def training_step(self, batch: ChoiceBatch, batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: ChoiceBatch, batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "val")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.config.learning_rate)
        if self.config.lr_decay == 1.0:
            return optimizer
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.config.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}


class TripDataModule(pl.LightningDataModule):
    """Training and validation batches of a prepared run, sliced from tensors built once."""

    def __init__(self, data: PreparedData, config: ModelConfig) -> None:
        super().__init__()
        self.data = data
        self.config = config
        self.tensors: TripTensors | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.tensors is None:
            device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
            self.tensors = TripTensors(self.data, self.config.habit_decay, device)

    @property
    def batch_trips(self) -> int:
        return self.config.trips_per_batch(len(self.data.trips_in(SPLIT_TRAIN)))

    def _built_tensors(self) -> TripTensors:
        assert self.tensors is not None, "setup() builds the tensors before a dataloader is asked for"
        return self.tensors

    def _shard(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def train_dataloader(self) -> TripBatches:
        rank, world_size = self._shard()
        return TripBatches(
            self._built_tensors(),
            self.data.trips_in(SPLIT_TRAIN),
            self.batch_trips,
            self.config.negatives,
            seed=self.config.seed,
            shuffle=True,
            rank=rank,
            world_size=world_size,
        )

    def val_dataloader(self) -> TripBatches:
        rank, world_size = self._shard()
        return TripBatches(
            self._built_tensors(),
            self.data.trips_in(SPLIT_VAL),
            self.batch_trips,
            self.config.negatives,
            seed=self.config.seed + VALIDATION_SEED_OFFSET,
            shuffle=False,
            rank=rank,
            world_size=world_size,
        )
