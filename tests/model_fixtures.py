"""Shared, process-wide fixtures of the model tests: the committed sample market, prepared and
trained once (a few batches), reused by every ``tests/test_model_*.py`` module.

pytest session fixtures defined in a plain module would be rebuilt per importing module, so
the expensive objects are cached here with ``functools.cache`` instead.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine import store
from engine.model.config import ModelConfig

# Small but complete: every term of the model is exercised; a fit of the sample takes seconds
# and recovers the sample's true price sensitivities and pairs well enough to test thresholds.
TINY = ModelConfig(
    latent_dim=8,
    demo_hidden=8,
    negatives=16,
    batch_trips=512,
    max_epochs=8,
    holdout_weeks=4,
    eval_negatives=16,
    learning_rate=0.02,
)


@dataclass(frozen=True)
class SampleRun:
    db_path: Path
    con: duckdb.DuckDBPyConnection
    run_dir: Path  # a prepared, trained and registered run of TINY


@functools.cache
def scratch_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="model-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def sample_run() -> SampleRun:
    """The sample dataset in a temp database with one tiny trained and registered run."""
    from engine.model.runs import prepare_run, register_run
    from engine.model.train import fit_run
    from engine.sources import synthetic

    db_path = scratch_dir() / "shared" / "studio.duckdb"
    con = store.connect(db_path)
    synthetic.ingest_sample(con, "sample")
    run_dir = prepare_run(con, "sample", TINY, db_path)
    result = fit_run(run_dir, accelerator="cpu")
    assert result is not None and result.status == "trained", result
    register_run(con, "sample", run_dir)
    return SampleRun(db_path, con, run_dir)


def fresh_prepared_run(config: ModelConfig = TINY) -> Path:
    """A new prepared (untrained) run folder of the sample dataset."""
    from engine.model.runs import prepare_run

    shared = sample_run()
    return prepare_run(shared.con, "sample", config, shared.db_path)
