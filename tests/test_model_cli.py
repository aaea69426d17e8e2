"""The model commands through real subprocesses: the progress protocol, DDP, train and evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_fixtures import TINY, fresh_prepared_run, scratch_dir

from engine import store
from engine.model.runs import CHECKPOINT_FILE, RUN_FILE
from engine.sources import synthetic

ROOT = Path(__file__).resolve().parents[1]
TRAIN_KEYS = {"run_id", "device", "epochs", "seconds", "train_examples_per_s", "val_loss"}


def engine(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_progress_protocol_of_a_training_subprocess():
    folder = fresh_prepared_run(TINY.replace(max_epochs=2))
    done = engine("train", "--run-dir", str(folder), "--accelerator", "cpu", "--progress", "jsonl", "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is JSON
    events = [line.get("event") for line in lines]
    assert events[0] == "start" and events[-2:] == ["done", None]  # the --json result comes last
    assert events.index("evaluating") > max(i for i, e in enumerate(events) if e in ("progress", "epoch"))
    assert events.count("epoch") == 2
    progress = [line for line in lines if line.get("event") == "progress"]
    assert progress, "no progress line"
    fractions = [p["fraction"] for p in progress]
    assert fractions == sorted(fractions) and all(0 < f <= 1 for f in fractions)
    for p in progress:
        assert {"epoch", "max_epochs", "loss", "examples_per_s", "eta_s", "elapsed_s"} <= set(p)
        assert p["examples_per_s"] > 0 and p["eta_s"] >= 0
    result = lines[-1]
    assert set(result) >= TRAIN_KEYS and result["run_id"] == folder.name and result["epochs"] == 2
    assert json.loads((folder / RUN_FILE).read_text())["status"] == "trained"


@pytest.mark.slow
def test_train_with_ddp_on_two_cpu_processes_then_evaluate():
    db = scratch_dir() / "cli" / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    con.close()  # the commands below open the file themselves
    trained = engine(
        "train",
        "--dataset",
        "sample",
        "--db",
        str(db),
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--max-epochs",
        "2",
        "--holdout-weeks",
        "4",
        "--json",
        timeout=600,
    )
    if "gloo" in trained.stderr.lower() and trained.returncode != 0:
        pytest.skip(f"this platform cannot run gloo DDP: {trained.stderr.strip().splitlines()[-1]}")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert set(result) >= TRAIN_KEYS and result["device"].endswith("x 2") and result["epochs"] >= 1
    folder = db.parent / "runs" / "sample" / result["run_id"]
    assert (folder / CHECKPOINT_FILE).exists()
    evaluated = engine("evaluate", "--dataset", "sample", "--db", str(db), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["run_id"] == result["run_id"]  # the latest run by default
    for scores in (
        report["model"],
        report["baselines"]["global_popularity"],
        report["baselines"]["personal_frequency"],
    ):
        assert set(scores) == {"nll", "loo_nll", "auc", "recall_at_10"}
    assert report["model"]["auc"] > report["baselines"]["global_popularity"]["auc"]  # it learned in 2 DDP epochs
    assert set(report["truth"]) >= {"price_sensitivity_spearman", "complement_auc", "substitute_auc"}
    assert report["slices"]


@pytest.mark.slow
def test_cli_errors_are_one_line():
    missing = engine("evaluate", "--dataset", "nosuch", "--db", str(scratch_dir() / "empty" / "s.duckdb"), "--json")
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    both = engine("train", "--json")
    assert both.returncode == 1 and "--dataset" in both.stderr and "--run-dir" in both.stderr


@pytest.mark.slow
def test_an_ensemble_of_fits_gives_the_pricing_bands():
    from engine.pricing.whatif import project_bundle

    db = scratch_dir() / "ensemble" / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    con.close()
    trained = engine(
        "train",
        "--dataset",
        "sample",
        "--db",
        str(db),
        "--accelerator",
        "cpu",
        "--ensemble",
        "2",
        "--max-epochs",
        "1",
        "--holdout-weeks",
        "4",
        "--json",
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    members = json.loads(trained.stdout)["ensemble"]
    assert len(members) == 2 and len(set(members)) == 2
    con = store.connect(db)
    with store.dataset_cursor(con, "sample") as cur:
        tags = cur.execute(
            "SELECT DISTINCT json_extract_string(config, '$.ensemble') FROM model_runs WHERE kind = 'trained'"
        ).fetchall()
        seeds = sorted(
            r[0]
            for r in cur.execute(
                "SELECT json_extract(config, '$.seed')::INTEGER FROM model_runs WHERE kind = 'trained'"
            ).fetchall()
        )
    assert len(tags) == 1 and tags[0][0] and seeds == [0, 1]
    projection = project_bundle(con, "sample", ["P0032", "P0047"], 4.0)
    assert "2" in projection.band and "bootstrap" not in projection.band
    take = projection.total.figures["take_rate"]
    assert take.low < take.high  # two different fits disagree a little
