"""``segments``: customer segments (demographic, RFM, learned preference clusters)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli import DatasetOption, DbOption, JsonOption, app, emit, open_store
from engine.segments import segments_json
from engine.store import DEFAULT_DB


@app.command("segments")
def segments(
    dataset: DatasetOption,
    kind: Annotated[str, typer.Option("--kind", help="demographic | rfm | learned")] = "demographic",
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Profile customer segments: size, revenue, basket share, top categories, price sensitivity."""

    emit(segments_json(open_store(db), dataset, kind), as_json)
