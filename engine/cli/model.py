"""Model commands: train, evaluate, runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

import typer

from engine.cli import DbOption, JsonOption, app, emit, open_store
from engine.errors import ModelError
from engine.store import DEFAULT_DB, check_dataset_name

# Training runs many small tensor operations on every core. OpenMP's default is to spin while
# waiting for a thread that another process has pushed off its core, which on a shared 2-core
# machine made training ~10x slower (measured: 60-140k vs 600-920k examples/s). Waiting threads
# sleep instead; how many threads torch uses stays its default. Set before torch is imported
# (the commands import it lazily); an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

OptionalDataset = Annotated[str | None, typer.Option("--dataset", help="Dataset to prepare, train and register.")]
RunDirOption = Annotated[
    Path | None, typer.Option("--run-dir", help="Train an already prepared run folder only (no database access).")
]
ProgressOption = Annotated[
    str, typer.Option("--progress", help="'jsonl': one JSON progress line per step group on stdout.")
]


class FitOptions(TypedDict):
    """Where and how ``fit_run`` trains (its keyword arguments)."""

    accelerator: str
    devices: int
    num_nodes: int
    strategy: str


@app.command("train")
def train(
    dataset: OptionalDataset = None,
    run_dir: RunDirOption = None,
    db: DbOption = DEFAULT_DB,
    level: Annotated[str | None, typer.Option("--level", help="product | category")] = None,
    catalog_size: Annotated[int | None, typer.Option("--catalog-size", help="Top-N items by baskets.")] = None,
    max_epochs: Annotated[int | None, typer.Option("--max-epochs")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    holdout_weeks: Annotated[int | None, typer.Option("--holdout-weeks", help="Last W weeks held out.")] = None,
    accelerator: Annotated[str, typer.Option("--accelerator", help="auto | cpu | gpu")] = "auto",
    devices: Annotated[int, typer.Option("--devices", help="Devices (processes) per node.")] = 1,
    num_nodes: Annotated[int, typer.Option("--num-nodes")] = 1,
    strategy: Annotated[str, typer.Option("--strategy", help="auto | ddp | ...")] = "auto",
    progress: ProgressOption = "none",
    ensemble: Annotated[
        int, typer.Option("--ensemble", help="Fit N runs (seeds seed..seed+N-1) as one ensemble for uncertainty bands.")
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Train the choice model: prepare features, fit with Lightning, evaluate, register the run."""
    from engine.model.config import ModelConfig  # deferred: imports torch
    from engine.model.train import fit_run

    if progress not in ("none", "jsonl"):
        raise ModelError(f"--progress must be 'none' or 'jsonl'; found {progress!r}")
    if (dataset is None) == (run_dir is None):
        raise ModelError(
            "give either --dataset NAME (prepare, train, register) or --run-dir DIR (train a prepared run)"
        )
    stream = sys.stdout if progress == "jsonl" else None
    fit_options: FitOptions = {
        "accelerator": accelerator,
        "devices": devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
    }
    if run_dir is not None:
        result = fit_run(run_dir.resolve(), stream=stream, **fit_options)
        if result is not None:  # other DDP ranks print nothing
            emit(result.to_json(), as_json)
        return
    con = open_store(db)
    config = ModelConfig().replace(
        level=level, catalog_size=catalog_size, max_epochs=max_epochs, seed=seed, holdout_weeks=holdout_weeks
    )
    if not 1 <= ensemble <= 20:
        raise ModelError(f"--ensemble must be between 1 and 20 fits; found {ensemble}")
    assert dataset is not None, "--dataset is given when --run-dir is not (checked above)"
    members = []
    tag = f"{dataset}-{uuid.uuid4().hex[:8]}" if ensemble > 1 else None
    for member in range(ensemble):
        member_config = config.replace(seed=config.seed + member, ensemble=tag)
        members.append(_train_one(con, dataset, member_config, db, stream, fit_options, progress))
    summary = members[0] | ({"ensemble": [m["run_id"] for m in members]} if tag else {})
    emit(summary, as_json)


def _train_one(con, dataset: str, config, db: Path, stream, fit_options: FitOptions, progress: str) -> dict:
    """Prepare, fit and register one run; its result as JSON."""
    from engine.model.runs import prepare_run, register_run  # deferred: imports torch
    from engine.model.train import fit_run, result_from_folder
    from engine.pricing.truth_check import add_truth_decisions  # deferred: imports torch

    devices, num_nodes, strategy = fit_options["devices"], fit_options["num_nodes"], fit_options["strategy"]
    folder = prepare_run(con, check_dataset_name(dataset), config, db)
    if devices > 1 or num_nodes > 1 or "ddp" in strategy:
        # DDP re-launches the command line in each process: launch one that reads only the folder.
        command = [sys.executable, "-m", "engine", "train", "--run-dir", str(folder), "--progress", progress]
        for option, value in fit_options.items():
            command += ["--" + option.replace("_", "-"), str(value)]
        completed = subprocess.run(command, stdout=None if stream else subprocess.DEVNULL, env=os.environ.copy())
        if completed.returncode != 0:
            raise ModelError(
                f"multi-process training of run {folder.name} failed (exit {completed.returncode}); see its messages above"
            )
        result = result_from_folder(folder)
    else:
        fitted = fit_run(folder, stream=stream, **fit_options)
        assert fitted is not None, "a single-process fit returns its result"
        result = fitted
    if result.status == "trained":
        register_run(con, dataset, folder)
        add_truth_decisions(con, dataset, result.run_id)  # synthetic markets: decisions checked against the truth
    return result.to_json()


@app.command("evaluate")
def evaluate(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name.")],
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: the latest trained run).")] = None,
    recompute: Annotated[bool, typer.Option("--recompute", help="Recompute from the run folder.")] = False,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Held-out metrics of a run against the baselines (and truth recovery on synthetic data)."""
    from engine.model.runs import get_run, run_folder, update_metrics  # deferred: imports torch
    from engine.model.train import evaluate_folder
    from engine.pricing.truth_check import add_truth_decisions  # deferred: imports torch

    con = open_store(db)
    info = get_run(con, check_dataset_name(dataset), run)
    if info.kind != "trained":
        raise ModelError(f"run {info.run_id!r} is the {info.kind}, not a trained model; evaluate a trained run")
    metrics = info.metrics
    if recompute or "model" not in metrics:
        metrics = evaluate_folder(run_folder(db, dataset, info.run_id))
        update_metrics(con, dataset, info.run_id, metrics)
    if "truth" in metrics and (recompute or "decision_capture" not in metrics["truth"]):
        metrics = add_truth_decisions(con, dataset, info.run_id)
    result: dict[str, object] = {"run_id": info.run_id, "dataset": dataset, "level": info.level}
    result.update({key: metrics[key] for key in ("model", "baselines", "slices") if key in metrics})
    for block in ("calibration", "backtest"):
        if block in metrics:  # the figures; the per-item and per-week rows are for the Model page
            result[block] = {k: v for k, v in metrics[block].items() if not isinstance(v, list)}
    if "truth" in metrics:
        result["truth"] = metrics["truth"]
    emit(result, as_json)


@app.command("runs")
def runs(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name.")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The model runs of a dataset, newest first."""
    from engine.model.runs import list_runs  # deferred: imports torch

    rows = [
        {
            "run_id": r.run_id,
            "kind": r.kind,
            "level": r.level,
            "created_at": r.created_at,
            "device": r.device,
            "seconds": r.seconds,
        }
        for r in list_runs(open_store(db, read_only=True), check_dataset_name(dataset))
    ]
    emit({"dataset": dataset, "runs": rows}, as_json)
