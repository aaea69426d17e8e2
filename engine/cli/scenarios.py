"""Scenario commands: ``scenario save|list|show|delete|compare``, ``export pricelist``, ``report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine.cli import DatasetOption, DbOption, JsonOption, app, emit, open_store
from engine.errors import DataError
from engine.exports import write_price_list, write_report
from engine.scenarios import STATUS_QUO, get, list_all, price_scenario, staleness
from engine.scenarios import compare as compare_scenarios
from engine.scenarios import delete as delete_scenario
from engine.store import DEFAULT_DB

scenario_app = typer.Typer(help="Saved pricing scenarios.", no_args_is_help=True)
export_app = typer.Typer(help="Exports for people without the app.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")
app.add_typer(export_app, name="export")

NameOption = Annotated[str, typer.Option("--name", help="Scenario name.")]


def _summary(scenario, con) -> dict:

    data = scenario.to_json()
    data["stale"] = staleness(con, scenario)
    return data


@scenario_app.command("save")
def save(
    dataset: DatasetOption,
    name: NameOption,
    items: Annotated[str, typer.Option("--items", help="Item ids of the bundle, comma-separated (2 to 4).")],
    price: Annotated[
        float | None, typer.Option("--price", help="Bundle price (omit, or --optimize, to save the optimized price).")
    ] = None,
    optimize: Annotated[bool, typer.Option("--optimize", help="Save the optimizer's recommended price.")] = False,
    segment: Annotated[str | None, typer.Option("--segment", help="ATTRIBUTE or ATTRIBUTE=VALUE.")] = None,
    notes: Annotated[str, typer.Option("--notes", help="Free text kept with the scenario.")] = "",
    weeks: Annotated[float, typer.Option("--weeks", help="Horizon in weeks.")] = 4.0,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Save a pricing decision (a given price, or the optimized one) as a named scenario."""

    if optimize and price is not None:
        raise DataError("give either --price or --optimize, not both")
    con = open_store(db)
    item_ids = [i.strip() for i in items.split(",") if i.strip()]
    scenario = price_scenario(con, dataset, name, item_ids, price=price, segment=segment, notes=notes, weeks=weeks)
    emit(_summary(scenario, con), as_json)


@scenario_app.command("list")
def list_scenarios(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Every saved scenario, newest first."""

    con = open_store(db)
    emit({"scenarios": [_summary(s, con) for s in list_all(con)]}, as_json)


@scenario_app.command("show")
def show(name: NameOption, db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """One scenario with its figures, bands and whether it is stale."""

    con = open_store(db)
    emit(_summary(get(con, name), con), as_json)


@scenario_app.command("delete")
def delete(name: NameOption, db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Delete a scenario."""

    delete_scenario(open_store(db), name)
    emit({"deleted": name}, as_json)


@scenario_app.command("compare")
def compare(
    names: Annotated[str, typer.Option("--names", help="2 to 4 scenario names, comma-separated.")],
    baseline: Annotated[str | None, typer.Option("--baseline", help="A scenario name (default: no bundle).")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Scenarios side by side with deltas against the no-bundle status quo (or --baseline)."""

    con = open_store(db)
    chosen = [get(con, n.strip()) for n in names.split(",") if n.strip()]
    table = compare_scenarios(chosen, baseline or STATUS_QUO)
    emit({"baseline": baseline or STATUS_QUO, "rows": json.loads(table.to_json(orient="records"))}, as_json)


@export_app.command("pricelist")
def export_pricelist(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
    out: Annotated[Path, typer.Option("--out", help="Output file.")] = Path("pricelist.csv"),
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Write a price list: one row per bundle x segment."""

    con = open_store(db)
    path = write_price_list(con, [get(con, scenario)], out, fmt)
    emit({"scenario": scenario, "format": fmt, "out": str(path)}, as_json)


@app.command("report")
def report(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name.")],
    out: Annotated[Path, typer.Option("--out", help="Output .html file.")] = Path("report.html"),
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Write a self-contained HTML stakeholder report for a scenario."""

    con = open_store(db)
    path = write_report(con, get(con, scenario), out)
    emit({"scenario": scenario, "out": str(path)}, as_json)
