"""Training jobs for the app: prepare in-process, train in a subprocess, register on success.

The app process holds the DuckDB file read-write, so the training process must not open it
(PITFALLS: one writer process). A ``TrainingJob`` therefore runs three steps on a background
thread of the app process:

1. ``prepare_run`` (reads the database through a cursor of the app's connection);
2. ``python -m engine train --run-dir DIR --progress jsonl`` as a subprocess (files only),
   whose JSON progress lines update the job's ``state``;
3. ``register_run`` (one transaction) once the subprocess reports ``done`` and exits 0.

``cancel`` writes the run's cancel file (the trainer stops at its next step group) and
terminates the process if it has not stopped after a grace period; a cancelled or failed run
is never registered. Nothing here imports streamlit; the page polls ``state()``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.model.config import ModelConfig
from engine.model.progress import CANCEL_FILE
from engine.model.runs import prepare_run, register_run

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CANCEL_GRACE_S = 20.0
LOG_FILE = "train.log"
ACTIVE = ("preparing", "training", "evaluating", "registering")


@dataclass(frozen=True)
class JobState:
    """A snapshot of a training job, for display."""

    dataset: str
    status: str  # preparing | training | evaluating | registering | done | cancelled | failed
    run_id: str | None = None
    device: str | None = None
    epoch: int = 0
    max_epochs: int = 0
    fraction: float = 0.0
    loss: float | None = None
    val_loss: float | None = None
    examples_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class TrainingJob:
    """One training of one dataset, run in the background (see the module docstring)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: Path, dataset: str, config: ModelConfig) -> None:
        self.con, self.db_path, self.dataset, self.config = con, Path(db_path), dataset, config
        self._state = JobState(dataset=dataset, status="preparing")
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._process: subprocess.Popen | None = None
        self.run_dir: Path | None = None
        self._thread = threading.Thread(target=self._run, name=f"train-{dataset}", daemon=True)

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def state(self) -> JobState:
        with self._lock:
            return self._state

    def wait(self, timeout: float | None = None) -> JobState:
        self._thread.join(timeout)
        return self.state()

    def cancel(self) -> None:
        """Ask the training to stop; terminate it if it does not within the grace period."""
        self._cancel.set()
        if self.run_dir is not None:
            (self.run_dir / CANCEL_FILE).touch()
        threading.Thread(target=self._terminate_later, daemon=True).start()

    def _terminate_later(self) -> None:
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return
            time.sleep(0.2)
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _update(self, **changes) -> None:
        with self._lock:
            self._state = dataclasses.replace(self._state, **changes)

    def _run(self) -> None:
        try:
            self.run_dir = prepare_run(self.con, self.dataset, self.config, self.db_path)
            self._update(run_id=self.run_dir.name, status="training")
            if self._cancel.is_set():
                self._update(status="cancelled", message="cancelled before training started")
                return
            done = self._train_subprocess()
            if self._cancel.is_set() or not done:
                if self.state().status != "failed":
                    self._update(status="cancelled", message="training cancelled; nothing was registered")
                return
            self._update(status="registering")
            register_run(self.con, self.dataset, self.run_dir)
            self._update(status="done", fraction=1.0, message=f"run {self.run_dir.name} registered")
        except Exception as exc:  # shown on the page; the run stays unregistered
            log.exception("training job of %s failed", self.dataset)
            self._update(status="failed", message=" ".join(str(exc).split()) or type(exc).__name__)

    def _train_subprocess(self) -> bool:
        """Run the trainer; follow its progress lines. True when it finished and reported done."""
        assert self.run_dir is not None, "the run is prepared before it is trained"
        command = [
            sys.executable,
            "-m",
            "engine",
            "train",
            "--run-dir",
            str(self.run_dir),
            "--progress",
            "jsonl",
            "--devices",
            "1",
        ]  # never DDP from inside the app
        with open(self.run_dir / LOG_FILE, "w") as errors:
            self._process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=errors, text=True, bufsize=1
            )
            assert self._process.stdout is not None, "stdout=PIPE"
            done = False
            for line in self._process.stdout:
                event = _parse(line)
                if event is None:
                    continue
                done = done or event.get("event") == "done"
                self._apply(event)
            code = self._process.wait()
        if code != 0 and not self._cancel.is_set():
            self._update(status="failed", message=self._error_message(code))
            return False
        return done and code == 0

    def _apply(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self._update(device=event.get("device"), max_epochs=int(event.get("max_epochs") or 0))
        elif kind == "progress":
            self._update(
                epoch=int(event["epoch"]),
                max_epochs=int(event["max_epochs"]),
                fraction=float(event["fraction"]),
                loss=event.get("loss"),
                examples_per_s=float(event["examples_per_s"]),
                elapsed_s=float(event["elapsed_s"]),
                eta_s=event.get("eta_s"),
            )
        elif kind == "epoch":
            self._update(val_loss=event.get("val_loss"))
        elif kind == "evaluating":
            self._update(status="evaluating", fraction=1.0, eta_s=None)
        elif kind == "done":
            self._update(device=event.get("device"), val_loss=event.get("val_loss"))
        elif kind == "error":
            self._update(message=str(event.get("message", "")))

    def _error_message(self, code: int) -> str:
        assert self.run_dir is not None, "the run is prepared before it is trained"
        lines = (self.run_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if line.startswith("error:")]
        return (errors[-1] if errors else (lines[-1] if lines else "")) or f"training exited with status {code}"


def _parse(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
