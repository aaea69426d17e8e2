"""Pricing commands: ``whatif`` (project a bundle at a price) and ``optimize`` (recommend a price)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli import DatasetOption, DbOption, JsonOption, app, emit, open_store
from engine.pricing.guardrails import Guardrails
from engine.pricing.optimize import optimize_price
from engine.pricing.whatif import project_bundle
from engine.store import DEFAULT_DB

ItemsOption = Annotated[str, typer.Option("--items", help="Item ids of the bundle, comma-separated (2 to 4).")]
SegmentOption = Annotated[
    str | None,
    typer.Option("--segment", help="ATTRIBUTE (figures/prices per value) or ATTRIBUTE=VALUE (that segment only)."),
]
WeeksOption = Annotated[float, typer.Option("--weeks", help="Horizon in weeks (each customer's trips x weeks).")]
RunOption = Annotated[str | None, typer.Option("--run", help="Model run (default: latest trained, else 'truth').")]


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command("whatif")
def whatif(
    dataset: DatasetOption,
    items: ItemsOption,
    price: Annotated[float, typer.Option("--price", help="Bundle price.")],
    segment: SegmentOption = None,
    weeks: WeeksOption = 4.0,
    run: RunOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Project a bundle at a price: take rate, units, revenue, margin, cannibalization, surplus, with bands."""

    projection = project_bundle(open_store(db), dataset, _items(items), price, segment, weeks, run)
    emit(projection.to_json(), as_json)


@app.command("optimize")
def optimize(
    dataset: DatasetOption,
    items: ItemsOption,
    segment: SegmentOption = None,
    objective: Annotated[str, typer.Option("--objective", help="margin, revenue or welfare.")] = "margin",
    min_margin_pct: Annotated[float | None, typer.Option("--min-margin-pct", help="Minimum bundle margin %.")] = None,
    max_discount_pct: Annotated[
        float | None, typer.Option("--max-discount-pct", help="Maximum discount % vs the sum of the parts.")
    ] = 50.0,
    price_ending: Annotated[
        list[str] | None,
        typer.Option("--price-ending", help="Allowed price ending, e.g. .99 (repeat or comma-separate)."),
    ] = None,
    max_spread_pct: Annotated[
        float | None,
        typer.Option("--max-spread-pct", help="Max spread between segment prices, % of the sum of the parts."),
    ] = 10.0,
    stock_limit: Annotated[
        float | None, typer.Option("--stock-limit", help="Max bundle units over the horizon.")
    ] = None,
    welfare_weight: Annotated[
        float, typer.Option("--welfare-weight", help="Weight on consumer surplus (objective welfare).")
    ] = 0.5,
    weeks: WeeksOption = 4.0,
    run: RunOption = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Recommend a bundle price within guardrails; compare no bundle, one price, per segment, per customer."""

    endings = tuple(e for text in (price_ending or []) for e in _items(text))
    guardrails = Guardrails(
        min_margin_pct=min_margin_pct,
        max_discount_pct=max_discount_pct,
        price_endings=endings,
        max_segment_spread_pct=max_spread_pct,
        stock_limit=stock_limit,
    )
    decision = optimize_price(
        open_store(db), dataset, _items(items), segment, objective, guardrails, weeks, run, welfare_weight
    )
    emit(decision.to_json(), as_json)
