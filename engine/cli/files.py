"""``ingest files``: import a retailer's own CSV or Parquet files (see ``engine.sources.files``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import DbOption, JsonOption, emit, open_store
from engine.cli.data import NameOption, ingest_app
from engine.sources import files
from engine.store import DEFAULT_DB

FileOption = Annotated[
    Path, typer.Option("--transactions", help="Transactions file (CSV or Parquet), one row per line.")
]
ProductsOption = Annotated[Path | None, typer.Option("--products", help="Products file (CSV or Parquet).")]
CustomersOption = Annotated[Path | None, typer.Option("--customers", help="Customers file with demographics.")]
MappingOption = Annotated[
    Path | None, typer.Option("--mapping", help="TOML column mapping; omit when the files use canonical names.")
]


@ingest_app.command("files")
def ingest_files(
    name: NameOption,
    transactions: FileOption,
    products: ProductsOption = None,
    customers: CustomersOption = None,
    mapping: MappingOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Import a retailer's transactions (and optional products, customers) as dataset NAME."""

    info = files.ingest(open_store(db), name, transactions, products, customers, mapping)
    emit(info.to_json(), as_json)
