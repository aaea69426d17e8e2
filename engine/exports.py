"""Exports for people without the app: a price list (CSV, Excel) and a stakeholder report (HTML).

Nothing exported identifies a customer: scenarios hold aggregates only, and any segment of
fewer than ``min_group_size`` customers (studio setting, default 10) is suppressed with the
reason written in its place. A scenario whose prices depend on a sensitive personal attribute
carries the disclosure notice in every export.

Excel files are written by openpyxl (through pandas), the well-kept reference writer for xlsx;
text from data is never written as a spreadsheet formula (``engine.spreadsheet_safety``). The
report embeds plotly.js once, inline, so the single HTML file opens offline; names from data are
escaped in its HTML and in its charts' text (``engine.markup``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go

from engine import spreadsheet_safety, store
from engine.errors import DataError
from engine.markup import escape_plotly
from engine.scenarios import FIGURES, Scenario

PERSONAL_DATA_NOTICE = (
    "Notice: these prices differ between customer groups defined by personal data "
    "({attribute}). Customers must be told that their price depends on personal data."
)
PRICE_LIST_COLUMNS = [
    "bundle",
    "items",
    "segment",
    "customers",
    "regular_price_total",
    "bundle_price",
    "discount_pct",
    "take_rate",
    "margin",
    "note",
]
COST_RATIOS = "SELECT department, cost_ratio FROM cost_ratios ORDER BY department"
RUN_METRICS = "SELECT metrics FROM model_runs WHERE run_id = $run"
FIGURE_LABELS = {
    "take_rate": "Bundle take rate",
    "bundle_units": "Bundle units",
    "revenue": "Revenue",
    "margin": "Margin",
    "incremental_revenue": "Incremental revenue",
    "incremental_margin": "Incremental margin",
    "cannibalized_revenue": "Cannibalized stand-alone revenue",
    "consumer_surplus_change": "Consumer surplus change",
    "share_better_off": "Share of customers better off",
}


def notice(scenario: Scenario) -> str | None:
    """The disclosure notice a scenario must carry, or None."""
    if not scenario.uses_personal_data:
        return None
    return PERSONAL_DATA_NOTICE.format(attribute=scenario.segment_attribute or "a sensitive attribute")


def price_list(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario]) -> pd.DataFrame:
    """One row per bundle x segment: items, regular prices, bundle price, discount, take rate, margin."""
    k = int(store.get_setting(con, "min_group_size"))
    rows = []
    for scenario in scenarios:
        regular = round(sum(scenario.regular_prices), 2)
        for segment, price in scenario.prices.items():
            figures = scenario.segment_figures.get(segment, scenario.figures if len(scenario.prices) == 1 else {})
            customers = figures.get("customers")
            small = customers is not None and customers < k
            rows.append(
                {
                    "bundle": scenario.name,
                    "items": " + ".join(scenario.item_names),
                    "segment": segment,
                    "customers": None if small else customers,
                    "regular_price_total": regular,
                    "bundle_price": round(price, 2),
                    "discount_pct": round(100 * (1 - price / regular), 1) if regular else None,
                    "take_rate": None if small else figures.get("take_rate"),
                    "margin": None if small else figures.get("margin"),
                    "note": "; ".join(
                        n
                        for n in (f"suppressed: fewer than {k} customers" if small else "", notice(scenario) or "")
                        if n
                    ),
                }
            )
    return pd.DataFrame(rows, columns=PRICE_LIST_COLUMNS)


def price_list_file(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario], fmt: str) -> bytes:
    """The price list as the bytes of a ``csv`` or ``xlsx`` file, text from data never a formula."""
    if fmt not in ("csv", "xlsx"):
        raise DataError(f"price list format must be csv or xlsx; found {fmt!r}")
    table = price_list(con, scenarios)
    if fmt == "csv":
        return spreadsheet_safety.csv_text(table).encode("utf-8")
    return spreadsheet_safety.xlsx_bytes(table, "Price list")


def write_price_list(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario], path: Path, fmt: str) -> Path:
    """Write the price list as ``csv`` or ``xlsx``."""
    content = price_list_file(con, scenarios, fmt)
    path = Path(path)
    path.write_bytes(content)
    return path


def _figure_rows(scenario: Scenario) -> str:
    band = scenario.figures.get("band", {})
    rows = []
    for key in FIGURES:
        if key not in scenario.figures:
            continue
        low_high = band.get(key)
        interval = f"{low_high[0]:,.2f} to {low_high[1]:,.2f}" if low_high else "-"
        rows.append(
            f"<tr><td>{html.escape(FIGURE_LABELS[key])}</td><td class='num'>{scenario.figures[key]:,.2f}</td>"
            f"<td class='num'>{html.escape(interval)}</td></tr>"
        )
    return "\n".join(rows)


def _charts(scenario: Scenario) -> list[go.Figure]:
    charts = []
    curve = scenario.curve
    if curve.get("price"):
        fig = go.Figure()
        for key in ("margin", "revenue"):
            if key in curve:
                fig.add_scatter(x=curve["price"], y=curve[key], mode="lines", name=FIGURE_LABELS.get(key, key))
        for segment, price in scenario.prices.items():
            fig.add_vline(x=price, line_dash="dash", annotation_text=f"chosen: {price:.2f} ({escape_plotly(segment)})")
        fig.update_layout(
            title="Projected figures over the bundle price",
            xaxis_title="Bundle price",
            yaxis_title="Currency over the horizon",
        )
        charts.append(fig)
    increments = {
        k: scenario.figures[k]
        for k in ("incremental_revenue", "incremental_margin", "cannibalized_revenue", "consumer_surplus_change")
        if k in scenario.figures
    }
    if increments:
        fig = go.Figure(
            go.Bar(x=[FIGURE_LABELS[k] for k in increments], y=list(increments.values()), marker_color="#2a6f97")
        )
        fig.update_layout(title="Effect of the bundle vs no bundle", yaxis_title="Currency over the horizon")
        charts.append(fig)
    return charts


def report_html(con: duckdb.DuckDBPyConnection, scenario: Scenario) -> str:
    """A self-contained HTML stakeholder report for one scenario."""
    info = store.get_dataset(con, scenario.dataset)
    with store.dataset_cursor(con, scenario.dataset) as cur:
        ratios = cur.execute(COST_RATIOS).fetchall()
        try:
            metrics = cur.execute(RUN_METRICS, {"run": scenario.run_id}).fetchall()
        except duckdb.CatalogException:
            metrics = []
    evaluation = json.loads(metrics[0][0]) if metrics else {}
    charts = _charts(scenario)
    chart_html = "".join(
        fig.to_html(
            full_html=False,
            include_plotlyjs="inline" if i == 0 else False,
            default_width="100%",
            default_height="420px",
        )
        for i, fig in enumerate(charts)
    )
    prices = "".join(
        f"<tr><td>{html.escape(seg)}</td><td class='num'>{p:,.2f}</td></tr>" for seg, p in scenario.prices.items()
    )
    guardrails = (
        "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in scenario.guardrails.items())
        or "<li>none</li>"
    )
    cost = "".join(f"<li>{html.escape(d)}: cost = {r:.0%} of shelf price (assumption)</li>" for d, r in ratios)
    model = html.escape(json.dumps(evaluation, indent=1)[:4000]) if evaluation else "No evaluation stored for this run."
    warning = notice(scenario)
    return REPORT_TEMPLATE.format(
        title=html.escape(scenario.name),
        dataset=html.escape(
            f"{info.name} ({info.source}, {info.customers:,} customers, {info.first_day} to {info.last_day})"
        ),
        items=html.escape(" + ".join(scenario.item_names)),
        regular=f"{sum(scenario.regular_prices):,.2f}",
        weeks=scenario.weeks,
        prices=prices,
        figures=_figure_rows(scenario),
        charts=chart_html,
        guardrails=guardrails,
        cost=cost,
        model=model,
        run=html.escape(str(scenario.run_id)),
        notes=html.escape(scenario.notes or "-"),
        notice=f"<p class='notice'>{html.escape(warning)}</p>" if warning else "",
    )


def write_report(con: duckdb.DuckDBPyConnection, scenario: Scenario, path: Path) -> Path:
    """Write ``report_html`` to ``path``."""
    path = Path(path)
    path.write_text(report_html(con, scenario), encoding="utf-8")
    return path


REPORT_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - bundle pricing report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #1d2433; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }} td, th {{ padding: 0.3rem 0.8rem; border-bottom: 1px solid #dde; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }} .notice {{ background: #fff4ce; padding: 0.8rem; border-left: 4px solid #e0a800; }}
</style></head><body>
<h1>{title}</h1>
{notice}
<p>Dataset: {dataset}. Model run: {run}. Horizon: {weeks} weeks.</p>
<h2>Bundle</h2><p>{items} - regular price together {regular}</p>
<table><tr><th>Segment</th><th>Bundle price</th></tr>{prices}</table>
<h2>Projected figures</h2>
<table><tr><th>Figure</th><th>Projected</th><th>Uncertainty band</th></tr>{figures}</table>
<h2>Charts</h2>{charts}
<h2>Assumptions</h2><h3>Guardrails</h3><ul>{guardrails}</ul><h3>Cost ratios</h3><ul>{cost}</ul>
<h2>Model evaluation</h2><pre>{model}</pre>
<h2>Notes</h2><p>{notes}</p>
<p><small>Aggregates only: no customer is identified; groups under the minimum size are suppressed.</small></p>
</body></html>
"""
