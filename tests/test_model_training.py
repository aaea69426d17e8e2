"""Training, checkpoints, runs and the exported-parameter contract (tiny CPU fits of the sample)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from model_fixtures import TINY, fresh_prepared_run, sample_run

from engine import store
from engine.errors import ModelError
from engine.model.export import HABITS, ITEMS, exported_parameters
from engine.model.insights import regular_utilities
from engine.model.lightning import ChoiceModule
from engine.model.prepared import SPLIT_TRAIN, PreparedData
from engine.model.progress import CANCEL_FILE
from engine.model.projection import replayed_recent_level
from engine.model.runs import CHECKPOINT_FILE, METRICS_FILE, RUN_FILE, get_run, latest_run, list_runs, register_run
from engine.model.train import fit_run
from engine.schema import MODEL_DDL

SQL_UTILITY = """
SELECT c.customer_id, i.item_id,
       i.popularity + list_dot_product(c.theta, i.alpha) + coalesce(h.habit, 0)
       - ln(1 + exp(c.beta_customer + i.beta_item)) * i.regular_price AS utility
FROM model_customers c
JOIN model_items i ON i.run_id = c.run_id
LEFT JOIN model_habits h ON h.run_id = c.run_id AND h.customer_id = c.customer_id AND h.item_id = i.item_id
WHERE c.run_id = $run AND c.customer_id IN (SELECT unnest($customers))
"""


@pytest.fixture(scope="module")
def shared():
    return sample_run()


@pytest.fixture(scope="module")
def network(shared):
    return ChoiceModule.load_from_checkpoint(shared.run_dir / CHECKPOINT_FILE, map_location="cpu").network.eval()


def test_checkpoint_round_trip_gives_the_same_model(shared, network):
    from engine.model.batches import TripTensors

    data = PreparedData.load(shared.run_dir)
    reloaded = ChoiceModule.load_from_checkpoint(shared.run_dir / CHECKPOINT_FILE, map_location="cpu")
    assert reloaded.config == TINY and reloaded.hparams["n_items"] == data.n_items
    tensors = TripTensors(data, TINY.habit_decay)
    batch = tensors.batch(torch.from_numpy(data.trips_in(SPLIT_TRAIN)[:100]), 4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reloaded.network.eval()(batch), network(batch))
    assert torch.equal(reloaded.network.demographics, torch.from_numpy(data.demographics))  # data travels with it


def test_training_improves_on_the_initial_model_and_records_the_run(shared):
    record = json.loads((shared.run_dir / RUN_FILE).read_text())
    metrics = json.loads((shared.run_dir / METRICS_FILE).read_text())
    assert record["status"] == "trained" and record["device"].startswith("CPU")
    training = metrics["training"]
    assert 1 <= training["epochs"] <= TINY.max_epochs and training["train_examples_per_s"] > 0
    assert np.isfinite(training["val_loss"])
    run = latest_run(shared.con, "sample")
    assert run is not None and run.run_id == shared.run_dir.name and run.kind == "trained"
    assert run.config == TINY.to_dict() and run.metrics["training"]["val_loss"] == training["val_loss"]


def test_same_seed_same_weights(shared):
    first, second = fresh_prepared_run(TINY.replace(max_epochs=1)), fresh_prepared_run(TINY.replace(max_epochs=1))
    for folder in (first, second):
        fit_run(folder, accelerator="cpu")
    a = ChoiceModule.load_from_checkpoint(first / CHECKPOINT_FILE, map_location="cpu").state_dict()
    b = ChoiceModule.load_from_checkpoint(second / CHECKPOINT_FILE, map_location="cpu").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_exported_tables_follow_the_contract(shared):
    run = shared.run_dir.name
    data = PreparedData.load(shared.run_dir)
    with store.dataset_cursor(shared.con, "sample") as cur:
        for table in ("model_runs", "model_items", "model_customers", "model_habits"):
            columns = [r[0] for r in cur.execute(f"DESCRIBE {table}").fetchall()]  # noqa: S608 - fixed names
            assert columns == _ddl_columns(table), table
        counts = {
            t: cur.execute(f"SELECT count(*) FROM {t} WHERE run_id = $run", {"run": run}).fetchall()[0][0]  # noqa: S608
            for t in ("model_items", "model_customers", "model_habits")
        }
        dims = cur.execute(
            "SELECT DISTINCT len(alpha), len(rho) FROM model_items WHERE run_id = $run", {"run": run}
        ).fetchall()
    pairs_with_history = len(np.unique(data.habit_code // data.habit_stride))
    assert counts == {
        "model_items": data.n_items,
        "model_customers": data.n_customers,
        "model_habits": pairs_with_history,
    }
    assert dims == [(TINY.latent_dim, TINY.latent_dim)]


def test_sql_utility_from_exported_tables_equals_the_network(shared, network):
    data = PreparedData.load(shared.run_dir)
    rng = np.random.default_rng(0)
    customers = np.sort(rng.choice(data.n_customers, 40, replace=False))
    ids = data.customers["customer_id"].to_numpy()[customers].tolist()
    with store.dataset_cursor(shared.con, "sample") as cur:
        sql = cur.execute(SQL_UTILITY, {"run": shared.run_dir.name, "customers": ids}).df()
    utility, _ = regular_utilities(network, data, TINY, customers)  # (40, I) from the network
    utility = utility + replayed_recent_level(network, data, TINY)[None, :]  # exported lambda holds the recent level
    expected = {(c, i): utility[r, k] for r, c in enumerate(ids) for k, i in enumerate(data.items["item_id"])}
    assert len(sql) == 40 * data.n_items
    got = np.array([expected[(c, i)] for c, i in zip(sql["customer_id"], sql["item_id"], strict=True)])
    assert np.allclose(sql["utility"].to_numpy(), got, atol=1e-4)
    assert np.ptp(got) > 0.5  # customers and items really differ


def test_habits_export_only_pairs_with_history_and_lambda_folds_season_promotion_and_recent_level(shared, network):
    data = PreparedData.load(shared.run_dir)
    tables = exported_parameters(network, data, TINY)
    habits = tables[HABITS]
    assert len(habits) == len(habits.drop_duplicates(["customer_id", "item_id"]))
    assert (habits["habit"] != 0).all()
    season = network.season_item.detach().numpy() @ data.season.mean(axis=0)
    promo = data.promo.mean(axis=0) @ network.promo_effect.detach().numpy()
    delta = replayed_recent_level(network, data, TINY)
    assert np.abs(delta).max() > 1e-3  # the recent level moves items: the check below sees it
    assert np.allclose(
        tables[ITEMS]["popularity"], network.popularity.detach().numpy() + season + promo + delta, atol=1e-5
    )


def test_unfinished_runs_are_never_registered(shared):
    prepared = fresh_prepared_run(TINY.replace(max_epochs=1))
    with pytest.raises(ModelError, match="only a finished"):
        register_run(shared.con, "sample", prepared)
    (prepared / CANCEL_FILE).touch()  # the callback sees it at the first step group and stops
    result = fit_run(prepared, accelerator="cpu")
    assert result.status == "cancelled" and json.loads((prepared / RUN_FILE).read_text())["status"] == "cancelled"
    assert not (prepared / METRICS_FILE).exists()
    with pytest.raises(ModelError, match="only a finished"):
        register_run(shared.con, "sample", prepared)
    assert prepared.name not in [r.run_id for r in list_runs(shared.con, "sample")]
    with pytest.raises(ModelError, match="no run"):
        get_run(shared.con, "sample", prepared.name)


def test_a_run_trained_on_an_older_version_of_the_dataset_is_refused(shared, tmp_path):
    """A training started before a re-import must not register against the new data."""
    stale = tmp_path / "20990101-000000-stale0"
    shutil.copytree(shared.run_dir, stale)
    record = json.loads((stale / RUN_FILE).read_text())
    record.update(run_id=stale.name, dataset_version="an-older-version")
    (stale / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(ModelError, match="trained on version an-older-version") as refused:
        register_run(shared.con, "sample", stale)
    assert "\n" not in str(refused.value) and "train again" in str(refused.value)
    assert stale.name not in [r.run_id for r in list_runs(shared.con, "sample")]


def _ddl_columns(table: str) -> list[str]:
    block = MODEL_DDL.split(f"CREATE TABLE IF NOT EXISTS {table} (")[1].split(");")[0]
    return [
        line.split()[0] for line in block.strip().splitlines() if line.strip() and not line.strip().startswith("--")
    ]
