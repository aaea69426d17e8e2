"""Model runs: run folders, preparing a run from the database, registering a finished run.

A run lives in ``<db folder>/runs/<dataset>/<run_id>/``::

    run.json          the record: run_id, dataset, level, status, created_at, device, seconds
    config.json       ModelConfig
    arrays.npz ...    the prepared arrays (engine.model.prepared), truth_*.parquet if known
    model.ckpt        best checkpoint (Lightning)
    export/*.parquet  the learned parameters in the MODEL_DDL contract
    metrics.json      training figures and the held-out evaluation

The database is touched only by ``prepare_run`` (reads) and ``register_run`` (one transaction
that inserts the run and its parameters), both in the process that holds the database; the
training process in between reads and writes files only (DuckDB allows one writer process).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from engine import store
from engine.errors import ModelError
from engine.model.config import ModelConfig
from engine.model.export import CUSTOMERS, EXPORT_DIR, HABITS, ITEMS
from engine.model.features import build_features
from engine.model.prepared import META_FILE
from engine.replay import insert_replayed_trips
from engine.schema import MODEL_DDL

log = logging.getLogger(__name__)

RUN_FILE, CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE = "run.json", "config.json", "metrics.json", "model.ckpt"
TRUTH_FILES = {"items": "truth_items.parquet", "customers": "truth_customers.parquet", "pairs": "truth_pairs.parquet"}

HAS_TRUTH = "SELECT count(*) FROM model_runs WHERE run_id = 'truth'"
TRUTH_ITEMS = "SELECT item_id, popularity, alpha, rho, beta_item FROM model_items WHERE run_id = 'truth'"
TRUTH_CUSTOMERS = "SELECT customer_id, theta, beta_customer FROM model_customers WHERE run_id = 'truth'"
TRUTH_PAIRS = "SELECT item_a, item_b, coupling FROM model_pairs WHERE run_id = 'truth'"
MODEL_TABLE_EXISTS = """
SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'model_runs'
"""
DELETE_RUN = [
    "DELETE FROM model_items WHERE run_id = $run",
    "DELETE FROM model_customers WHERE run_id = $run",
    "DELETE FROM model_habits WHERE run_id = $run",
    "DELETE FROM model_pairs WHERE run_id = $run",
    "DELETE FROM model_trips WHERE run_id = $run",
    "DELETE FROM model_runs WHERE run_id = $run",
]
INSERT_RUN = """
INSERT INTO model_runs VALUES ($run, 'trained', $level, $created_at, $device, $seconds, $config, $metrics)
"""
INSERT_ITEMS = "INSERT INTO model_items SELECT $run, * FROM read_parquet($path)"
INSERT_CUSTOMERS = "INSERT INTO model_customers SELECT $run, * FROM read_parquet($path)"
INSERT_HABITS = "INSERT INTO model_habits SELECT $run, * FROM read_parquet($path)"
LIST_RUNS = """
SELECT run_id, kind, level, created_at, device, seconds, config, metrics FROM model_runs
ORDER BY (kind = 'trained') DESC, created_at DESC
"""
UPDATE_METRICS = "UPDATE model_runs SET metrics = $metrics WHERE run_id = $run"


@dataclass(frozen=True)
class RunInfo:
    """A registered run (one row of ``model_runs``)."""

    run_id: str
    kind: str
    level: str
    created_at: datetime
    device: str | None
    seconds: float | None
    config: dict
    metrics: dict


def runs_root(db_path: str | Path) -> Path:
    """Folder holding the run folders of the database at ``db_path``."""
    return Path(db_path).resolve().parent / "runs"


def run_folder(db_path: str | Path, dataset: str, run_id: str) -> Path:
    return runs_root(db_path) / store.check_dataset_name(dataset) / _check_run_id(run_id)


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"expected {path.name} in the run folder {path.parent}, found: {exc}") from exc


def write_json(path: Path, value: dict) -> None:
    """Write atomically (a reader never sees half a file)."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(value, indent=1, default=str))
    partial.replace(path)


def prepare_run(
    con: duckdb.DuckDBPyConnection, dataset: str, config: ModelConfig, db_path: str | Path, run_id: str | None = None
) -> Path:
    """Build the features of ``dataset`` and write a new run folder; return its path."""
    run_id = run_id or new_run_id()
    folder = run_folder(db_path, dataset, run_id)
    folder.mkdir(parents=True, exist_ok=False)
    info = store.get_dataset(con, dataset)
    with store.dataset_cursor(con, dataset) as cur:
        data = build_features(cur, config)
        truth = _truth_frames(cur)
    data.save(folder)
    for name, frame in truth.items():
        frame.to_parquet(folder / TRUTH_FILES[name], index=False)
    write_json(folder / CONFIG_FILE, config.to_dict())
    write_json(
        folder / RUN_FILE,
        {
            "run_id": run_id,
            "dataset": dataset,
            "dataset_version": info.version,
            "level": config.level,
            "status": "prepared",
            "created_at": datetime.now().isoformat(timespec="seconds"),
        },
    )
    log.info("prepared run %s of %s in %s", run_id, dataset, folder)
    return folder


def read_truth(folder: Path) -> dict[str, pd.DataFrame] | None:
    """The truth frames a run folder holds, or None (the dataset has no known truth)."""
    if not all((folder / file).exists() for file in TRUTH_FILES.values()):
        return None
    return {name: pd.read_parquet(folder / file) for name, file in TRUTH_FILES.items()}


def register_run(con: duckdb.DuckDBPyConnection, dataset: str, folder: Path) -> RunInfo:
    """Insert a trained run and its exported parameters in one transaction.

    Refuses a run that is not finished (status 'trained'): a cancelled or failed training
    never appears. Refuses a run prepared from another version of the dataset (re-imported while
    it trained): its customers and items are not the dataset's any more. Registering the same run
    again replaces it.
    """
    record = read_json(folder / RUN_FILE)
    if record.get("status") != "trained":
        raise ModelError(
            f"run {record.get('run_id')} is {record.get('status')!r}; only a finished ('trained') run can be registered"
        )
    if record["dataset"] != dataset:
        raise ModelError(f"run {record['run_id']} was prepared from dataset {record['dataset']!r}, not {dataset!r}")
    current = store.get_dataset(con, dataset).version
    if record.get("dataset_version") != current:  # the dataset was re-imported while the run trained
        raise ModelError(
            f"run {record['run_id']} was trained on version {record.get('dataset_version')} of {dataset!r}, "
            f"but the dataset is now version {current}; train again on the current data"
        )
    run = _check_run_id(record["run_id"])
    export = folder / EXPORT_DIR
    with store.dataset_cursor(con, dataset) as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(MODEL_DDL)
            for statement in DELETE_RUN:
                cur.execute(statement, {"run": run})
            cur.execute(
                INSERT_RUN,
                {
                    "run": run,
                    "level": record["level"],
                    "created_at": datetime.fromisoformat(record["created_at"]),
                    "device": record.get("device"),
                    "seconds": record.get("seconds"),
                    "config": (folder / CONFIG_FILE).read_text(),
                    "metrics": (folder / METRICS_FILE).read_text(),
                },
            )
            for statement, file in ((INSERT_ITEMS, ITEMS), (INSERT_CUSTOMERS, CUSTOMERS), (INSERT_HABITS, HABITS)):
                cur.execute(statement, {"run": run, "path": str(export / file)})
            config = ModelConfig.from_dict(read_json(folder / CONFIG_FILE))
            last_week = read_json(folder / META_FILE)["last_train_week"]
            insert_replayed_trips(cur, run, record["level"], last_week, config.replay_trips)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    log.info("registered run %s of %s", run, dataset)
    return get_run(con, dataset, run)


def list_runs(con: duckdb.DuckDBPyConnection, dataset: str) -> list[RunInfo]:
    """Every run of ``dataset``, trained runs first, newest first (the truth, if any, last)."""
    with store.dataset_cursor(con, dataset) as cur:
        if cur.execute(MODEL_TABLE_EXISTS).fetchall()[0][0] == 0:
            return []
        rows = cur.execute(LIST_RUNS).fetchall()
    return [
        RunInfo(
            run_id=r[0],
            kind=r[1],
            level=r[2],
            created_at=r[3],
            device=r[4],
            seconds=r[5],
            config=json.loads(r[6]),
            metrics=json.loads(r[7]),
        )
        for r in rows
    ]


def latest_run(con: duckdb.DuckDBPyConnection, dataset: str) -> RunInfo | None:
    """The newest trained run of ``dataset`` (None when it has none)."""
    trained = [r for r in list_runs(con, dataset) if r.kind == "trained"]
    return trained[0] if trained else None


def get_run(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str | None = None) -> RunInfo:
    """Run ``run_id`` of ``dataset``, or its latest trained run when ``run_id`` is None."""
    runs = list_runs(con, dataset)
    if run_id is None:
        found = latest_run(con, dataset)
        if found is None:
            raise ModelError(
                f"dataset {dataset!r} has no trained model yet; train one first (python -m engine train --dataset {dataset})"
            )
        return found
    for run in runs:
        if run.run_id == run_id:
            return run
    known = ", ".join(r.run_id for r in runs) or "none"
    raise ModelError(f"dataset {dataset!r} has no run {run_id!r}; its runs: {known}")


def update_metrics(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str, metrics: dict) -> None:
    with store.dataset_cursor(con, dataset) as cur:
        cur.execute(UPDATE_METRICS, {"run": run_id, "metrics": json.dumps(metrics, default=str)})


def _truth_frames(cur: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    if cur.execute(MODEL_TABLE_EXISTS).fetchall()[0][0] == 0 or cur.execute(HAS_TRUTH).fetchall()[0][0] == 0:
        return {}
    return {
        "items": cur.execute(TRUTH_ITEMS).df(),
        "customers": cur.execute(TRUTH_CUSTOMERS).df(),
        "pairs": cur.execute(TRUTH_PAIRS).df(),
    }


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id or any(not (c.isalnum() or c in "-_") for c in run_id):
        raise ModelError(f"a run id is letters, digits, '-' and '_'; found {run_id!r}")
    return run_id
