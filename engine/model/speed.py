"""Training throughput: the Lightning loop vs a plain PyTorch loop over the same model and tensors.

Both loops draw the same ``TripBatches`` (slicing, negative sampling and habit lookups are
part of the work measured), run the same ``ChoiceNetwork`` forward and backward and the same
Adam step, with the deterministic algorithms the Lightning trainer switches on. The raw loop
has no Lightning, no DataLoader, no callbacks, no logging: the gap between the two figures is
the framework's overhead.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from engine.model.batches import TripBatches, TripTensors
from engine.model.config import ModelConfig
from engine.model.lightning import ChoiceModule, TripDataModule
from engine.model.network import weighted_nll
from engine.model.prepared import SPLIT_TRAIN, PreparedData
from engine.model.progress import TrainingMonitor


def raw_torch_examples_per_s(data: PreparedData, config: ModelConfig, steps: int) -> float:
    """Scored rows per second of a hand-written training loop."""
    pl.seed_everything(config.seed, verbose=False)
    module = ChoiceModule.for_data(data, config)
    network = module.network.train()
    tensors = TripTensors(data, config.habit_decay)
    batches = TripBatches(
        tensors,
        data.trips_in(SPLIT_TRAIN),
        config.trips_per_batch(len(data.trips_in(SPLIT_TRAIN))),
        config.negatives,
        config.seed,
        True,
    )
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    examples, done = 0, 0
    start = time.perf_counter()
    while done < steps:
        for batch in batches:
            trips = batch.customer.shape[0]
            loss = weighted_nll(network(batch), batch.label, batch.weight) / trips
            loss = (
                loss
                + network.prior_penalty(config.l2_customer, config.l2_item, config.l2_season) / module.n_train_trips
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            examples += batch.item.shape[0]
            done += 1
            if done == steps:
                break
    return examples / (time.perf_counter() - start)


def lightning_examples_per_s(data: PreparedData, config: ModelConfig, steps: int) -> float:
    """Scored rows per second of the Lightning training loop (the one ``train`` runs)."""
    from engine.model.train import build_trainer, quiet_lightning

    quiet_lightning()
    pl.seed_everything(config.seed, verbose=False)
    module = ChoiceModule.for_data(data, config)
    monitor = TrainingMonitor()
    with tempfile.TemporaryDirectory() as folder:
        trainer = build_trainer(config, Path(folder), monitor, accelerator="cpu", max_steps=steps, validate=False)
        trainer.fit(module, datamodule=TripDataModule(data, config))
    return monitor.examples_per_s


def training_throughput(data: PreparedData, config: ModelConfig, steps: int = 30, rounds: int = 2) -> dict[str, float]:
    """Medians over alternating rounds of both loops (alternating evens out a noisy machine)."""
    torch.use_deterministic_algorithms(True)  # as under Trainer(deterministic=True)
    raw, lightning = [], []
    for _ in range(rounds):
        raw.append(raw_torch_examples_per_s(data, config, steps))
        lightning.append(lightning_examples_per_s(data, config, steps))
    lightning_rate, raw_rate = statistics.median(lightning), statistics.median(raw)
    return {
        "train_examples_per_s": round(lightning_rate),
        "raw_torch_examples_per_s": round(raw_rate),
        "lightning_vs_raw_ratio": round(lightning_rate / raw_rate, 3),
        "torch_threads": torch.get_num_threads(),
    }
