"""Fitting a prepared run with PyTorch Lightning, then evaluating and exporting it.

``fit_run`` reads only the run folder and writes only into it (checkpoint, exported
parameters, metrics, record), so it runs in a subprocess while the app holds the database.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from engine.errors import ModelError
from engine.model.backtest import backtest
from engine.model.calibration import calibration
from engine.model.config import ModelConfig
from engine.model.evaluate import evaluate
from engine.model.export import write_export
from engine.model.insights import elasticities_by_segment, learned_pairs, truth_recovery
from engine.model.lightning import ChoiceModule, TripDataModule
from engine.model.prepared import PreparedData
from engine.model.progress import TrainingMonitor, emit_event
from engine.model.runs import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RUN_FILE, read_json, read_truth, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What ``train --json`` prints."""

    run_id: str
    status: str  # 'trained' | 'cancelled'
    device: str
    epochs: int
    seconds: float  # wall time of the Lightning fit
    train_examples_per_s: float  # scored (trip, item) rows per second of training loop
    val_loss: float | None  # best validation NLL per trip

    def to_json(self) -> dict:
        return asdict(self)


def describe_device(accelerator: str = "auto") -> str:
    """The device a training with ``accelerator`` uses, in words (GPU name or CPU)."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def quiet_lightning() -> None:
    """Keep Lightning's banners and known-harmless warnings off the console of a training."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (
        ".*LeafSpec.*",
        ".*Checkpoint directory .* exists and is not empty.*",
        ".*does not have many workers.*",
    ):
        warnings.filterwarnings("ignore", message)


def build_trainer(
    config: ModelConfig,
    run_dir: Path,
    monitor: TrainingMonitor,
    accelerator: str = "auto",
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    max_steps: int = -1,
    validate: bool = True,
) -> pl.Trainer:
    """The Lightning trainer of a run: early stopping on ``val_loss``, best checkpoint kept.

    ``validate=False`` (the speed bench) trains only: no validation, early stopping or checkpoint.
    """
    callbacks: list[pl.Callback] = [monitor]
    if validate:
        callbacks += [
            EarlyStopping(monitor="val_loss", patience=config.patience, min_delta=1e-3),
            ModelCheckpoint(
                dirpath=run_dir,
                filename=CHECKPOINT_FILE.removesuffix(".ckpt"),
                monitor="val_loss",
                save_top_k=1,
                enable_version_counter=False,
            ),
        ]
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        max_epochs=config.max_epochs,
        max_steps=max_steps,
        callbacks=callbacks,
        # CUDA has no deterministic kernel for some scatter-adds: warn there instead of failing.
        deterministic="warn" if on_gpu else True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=validate,
        limit_val_batches=None if validate else 0,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir),
    )


def fit_run(
    run_dir: Path,
    accelerator: str = "auto",
    devices: int = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    stream: IO[str] | None = None,
) -> TrainResult | None:
    """Train, evaluate and export the prepared run in ``run_dir`` (no database access).

    Returns the result on the main process, None on the other DDP ranks. A failure marks the
    run 'failed' (it can then be retried) and is re-raised.
    """
    try:
        return _fit_run(run_dir, accelerator, devices, num_nodes, strategy, stream)
    except BaseException as exc:
        record_path = run_dir / RUN_FILE
        if record_path.exists():
            record = read_json(record_path)
            if record.get("status") in ("prepared", "failed"):
                write_json(record_path, {**record, "status": "failed", "error": str(exc)})
        emit_event(stream, "error", message=" ".join(str(exc).split()) or type(exc).__name__)
        raise


def _fit_run(run_dir, accelerator, devices, num_nodes, strategy, stream) -> TrainResult | None:
    record = read_json(run_dir / RUN_FILE)
    if record.get("status") not in ("prepared", "failed"):
        raise ModelError(f"run {record.get('run_id')} is {record.get('status')!r}; expected a prepared run")
    config = ModelConfig.from_dict(read_json(run_dir / CONFIG_FILE))
    data = PreparedData.load(run_dir)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = ChoiceModule.for_data(data, config)
    monitor = TrainingMonitor(run_dir, stream, record["run_id"])
    quiet_lightning()
    trainer = build_trainer(config, run_dir, monitor, accelerator, devices, num_nodes, strategy)
    device = (
        describe_device(accelerator)
        if trainer.world_size == 1
        else f"{describe_device(accelerator)} x {trainer.world_size}"
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=TripDataModule(data, config))
    seconds = time.perf_counter() - start
    checkpoint = trainer.checkpoint_callback  # the ModelCheckpoint of build_trainer
    best = checkpoint.best_model_score if isinstance(checkpoint, ModelCheckpoint) else None
    result = TrainResult(
        run_id=record["run_id"],
        status="cancelled" if monitor.cancelled else "trained",
        device=device,
        epochs=monitor.epochs_run,
        seconds=round(seconds, 2),
        train_examples_per_s=round(monitor.examples_per_s * trainer.world_size, 1),  # ranks run equal shards
        val_loss=None if best is None else float(best),
    )
    if not trainer.is_global_zero:
        return None
    if monitor.cancelled:
        write_json(run_dir / RUN_FILE, {**record, "status": "cancelled"})
        emit_event(stream, "cancelled", run_id=record["run_id"])
        return result
    emit_event(stream, "evaluating")
    start = time.perf_counter()
    network = ChoiceModule.load_from_checkpoint(run_dir / CHECKPOINT_FILE, map_location="cpu").network
    metrics = evaluate_network(network, data, config, read_truth(run_dir))
    write_export(network, data, config, run_dir)
    metrics["training"] = {
        **result.to_json(),
        "val_losses": monitor.val_losses,
        "evaluate_seconds": round(time.perf_counter() - start, 2),
    }
    write_json(run_dir / METRICS_FILE, metrics)
    write_json(run_dir / RUN_FILE, {**record, "status": "trained", "device": device, "seconds": result.seconds})
    emit_event(stream, "done", **result.to_json())
    return result


def evaluate_network(network, data: PreparedData, config: ModelConfig, truth=None) -> dict:
    """Held-out metrics, elasticities by segment, learned pairs and (when known) truth recovery."""
    metrics = evaluate(network, data, config)
    metrics["calibration"] = calibration(network, data, config)
    metrics["backtest"] = backtest(network, data, config)
    metrics["elasticities"] = elasticities_by_segment(network, data, config)
    metrics["pairs"] = learned_pairs(network, data)
    if truth is not None:
        metrics["truth"] = truth_recovery(network, data, truth)
    return metrics


def evaluate_folder(run_dir: Path) -> dict:
    """Recompute the evaluation of a trained run from its folder; update ``metrics.json``."""
    config = ModelConfig.from_dict(read_json(run_dir / CONFIG_FILE))
    data = PreparedData.load(run_dir)
    checkpoint = run_dir / CHECKPOINT_FILE
    if not checkpoint.exists():
        raise ModelError(f"expected a checkpoint {checkpoint}; the run folder holds none (was it trained?)")
    network = ChoiceModule.load_from_checkpoint(checkpoint, map_location="cpu").network
    previous = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).exists() else {}
    metrics = {**evaluate_network(network, data, config, read_truth(run_dir)), "training": previous.get("training", {})}
    write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def result_from_folder(run_dir: Path) -> TrainResult:
    """The train result a finished run folder records (used after a multi-process training)."""
    record = read_json(run_dir / RUN_FILE)
    if record.get("status") not in ("trained", "cancelled"):
        raise ModelError(
            f"run {record.get('run_id')} ended {record.get('status')!r}: {record.get('error', 'no result')}"
        )
    if record["status"] == "cancelled":
        return TrainResult(record["run_id"], "cancelled", "", 0, 0.0, 0.0, None)
    training = read_json(run_dir / METRICS_FILE)["training"]
    fields = {k: training[k] for k in TrainResult.__dataclass_fields__}
    return TrainResult(**fields)
