"""Training progress: throughput bookkeeping, the JSON-lines protocol, and cancellation.

Protocol (one JSON object per line on the training process's stdout, rank 0 only)::

    {"event": "start", "run_id", "device", "max_epochs", "steps_per_epoch", "total_steps"}
    {"event": "progress", "epoch", "max_epochs", "step", "total_steps", "fraction",
     "loss", "examples_per_s", "elapsed_s", "eta_s"}                 every few steps
    {"event": "epoch", "epoch", "val_loss"}                          after each validation
    {"event": "evaluating"}                                          training done, evaluating
    {"event": "done", "run_id", ...the train result...}              success: nothing after it
    {"event": "cancelled", "run_id"} | {"event": "error", "message"}

Cancel: create the file ``CANCEL_FILE`` in the run folder; the callback sees it at the next
step group and stops the trainer (``trainer.should_stop``); the run is then never registered.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any

import pytorch_lightning as pl

from engine import strict_json

CANCEL_FILE = "CANCEL"
REPORT_EVERY_S = 0.5  # at most two progress lines a second


def emit_event(stream: IO[str] | None, event: str, **fields: Any) -> None:
    """Write one protocol line (and flush: the reader is waiting for it)."""
    if stream is None:
        return
    stream.write(strict_json.dumps({"event": event, **fields}) + "\n")  # a NaN loss is written as null
    stream.flush()


class TrainingMonitor(pl.Callback):
    """Counts scored examples and training seconds; optionally reports and watches for cancel.

    Training seconds run from each epoch start to its validation, so ``examples_per_s`` is
    the throughput of the training loop itself (batch slicing, forward, backward, optimizer).
    """

    def __init__(self, run_dir: Path | None = None, stream: IO[str] | None = None, run_id: str = "") -> None:
        self.run_dir = run_dir
        self.stream = stream
        self.run_id = run_id
        self.examples = 0
        self.train_seconds = 0.0
        self.cancelled = False
        self.epochs_run = 0
        self.val_losses: list[float | None] = []  # one per epoch
        self._epoch_start: float | None = None
        self._last_report = 0.0
        self._fit_start = 0.0
        self._total_steps = 1
        self._loss = float("nan")

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.train_seconds if self.train_seconds > 0 else 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()
        # every rank asks: estimating the steps can be a collective operation under DDP
        self._total_steps = max(int(trainer.estimated_stepping_batches), 1)
        if trainer.is_global_zero:
            emit_event(
                self.stream,
                "start",
                run_id=self.run_id,
                device=str(trainer.strategy.root_device),
                max_epochs=trainer.max_epochs,
                steps_per_epoch=self._total_steps // max(trainer.max_epochs or 1, 1),
                total_steps=self._total_steps,
            )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def _close_epoch_clock(self) -> None:
        if self._epoch_start is not None:
            self.train_seconds += time.perf_counter() - self._epoch_start
            self._epoch_start = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._close_epoch_clock()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch_clock()  # when there is no validation
        self.epochs_run += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.examples += int(batch.item.shape[0])
        if outputs is not None:
            self._loss = float(outputs["loss"].detach()) if isinstance(outputs, dict) else float(outputs.detach())
        now = time.perf_counter()
        if now - self._last_report < REPORT_EVERY_S:
            return
        self._last_report = now
        if self.run_dir is not None and (self.run_dir / CANCEL_FILE).exists():
            self.cancelled = True
            trainer.should_stop = True
        if not trainer.is_global_zero or self.stream is None:
            return
        total = self._total_steps
        step = trainer.global_step
        elapsed = now - self._fit_start
        rate = self.examples / (self.train_seconds + (now - (self._epoch_start or now)) or 1e-9)
        emit_event(
            self.stream,
            "progress",
            epoch=trainer.current_epoch + 1,
            max_epochs=trainer.max_epochs,
            step=step,
            total_steps=total,
            fraction=min(step / total, 1.0),
            loss=self._loss,
            examples_per_s=rate,
            elapsed_s=elapsed,
            eta_s=elapsed / max(step, 1) * (total - step),
        )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val_loss = trainer.callback_metrics.get("val_loss")
        self.val_losses.append(None if val_loss is None else float(val_loss))
        if trainer.is_global_zero:
            emit_event(self.stream, "epoch", epoch=trainer.current_epoch + 1, val_loss=self.val_losses[-1])


def stdout_stream() -> IO[str]:
    return sys.stdout
