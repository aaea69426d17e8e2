"""``bundles``: ranked bundle candidates with their co-purchase and model evidence."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from engine.bundles import BundleQuery, Segment, candidates_frame, find_bundles
from engine.cli import DatasetOption, DbOption, JsonOption, app, emit, open_store
from engine.store import DEFAULT_DB


class Level(str, Enum):
    product = "product"
    category = "category"


class RankBy(str, Enum):
    default = "default"
    margin = "margin"
    complementarity = "complementarity"
    score = "score"
    lift = "lift"
    support = "support"
    confidence = "confidence"


@app.command("bundles")
def bundles(
    dataset: DatasetOption,
    level: Annotated[Level, typer.Option("--level", help="Items are products or categories.")] = Level.product,
    size: Annotated[int, typer.Option("--size", help="Items per candidate: 2 or 3.", min=2, max=3)] = 2,
    top: Annotated[int, typer.Option("--top", help="Number of candidates.", min=1)] = 20,
    min_support: Annotated[
        float, typer.Option("--min-support", help="Minimum share of baskets holding all the items.")
    ] = 0.001,
    min_baskets: Annotated[
        int, typer.Option("--min-baskets", help="Minimum number of baskets holding all the items.")
    ] = 10,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Only this segment's baskets: attribute=value.")
    ] = None,
    department: Annotated[str | None, typer.Option("--department", help="Keep bundles with an item here.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Keep bundles with an item here.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Keep bundles with an item whose name has this.")
    ] = None,
    across_categories: Annotated[
        bool, typer.Option("--across-categories", help="Only bundles whose items are in different categories.")
    ] = False,
    rank_by: Annotated[RankBy, typer.Option("--rank-by", help="Ranking (default: margin, else model, else score).")] = (
        RankBy.default
    ),
    margin_pool: Annotated[
        int,
        typer.Option("--margin-pool", help="Candidates the pricing optimizer prices (the rest show no margin).", min=0),
    ] = 20,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Bundle candidates ranked by expected incremental margin, complementarity or co-purchase."""

    query = BundleQuery(
        level=level.value,
        size=size,
        top=top,
        min_support=min_support,
        min_baskets=min_baskets,
        segment=Segment.parse(segment) if segment else None,
        department=department,
        category=category,
        search=search,
        across_categories=across_categories,
        rank_by=rank_by.value,
        margin_pool=margin_pool,
    )
    result = find_bundles(open_store(db), dataset, query)
    if as_json:
        emit(result.to_json(), True)
        return
    summary = {key: value for key, value in result.to_json().items() if key != "bundles"}
    emit(summary, False)
    typer.echo(candidates_frame(result).to_string(index=False) if result.candidates else "no candidates")
