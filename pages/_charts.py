"""Plotly figures of the KPI pages: readable titles, axis labels with units, currency formatting."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from engine.kpi import KPI_DEFINITIONS


def _axis_title(kpi_name: str, currency: str) -> str:
    definition = KPI_DEFINITIONS[kpi_name]
    unit = {"currency": currency, "ratio": "%", "count": ""}[definition.unit]
    return f"{definition.label} ({unit})" if unit else definition.label


def _value_axis(fig: go.Figure, kpi_name: str, currency: str, axis: str) -> None:
    unit = KPI_DEFINITIONS[kpi_name].unit
    settings = {"title": _axis_title(kpi_name, currency), "rangemode": "tozero"}
    if unit == "ratio":
        settings["tickformat"] = ".0%"
    elif unit == "currency":
        settings["tickformat"] = ",.0f" if kpi_name == "revenue" else ",.2f"
        settings["tickprefix"] = "$" if currency == "USD" else ""
    else:
        settings["tickformat"] = ",.0f" if kpi_name != "items_per_basket" else ",.1f"
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(**settings)


def weekly_trend(weeks: pd.DataFrame, kpi_name: str, currency: str) -> go.Figure:
    """One KPI per week, x = the first day of the week in the filtered period; open markers: partial weeks."""
    label = KPI_DEFINITIONS[kpi_name].label
    fig = px.line(weeks, x="week_start", y=kpi_name, markers=True, title=f"{label} per week", hover_data=["week", "days"])
    fig.update_traces(marker={"size": 6, "symbol": ["circle" if days >= 7 else "circle-open" for days in weeks["days"]]})
    fig.update_xaxes(title="Week starting")
    _value_axis(fig, kpi_name, currency, "y")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def breakdown_bars(rows: pd.DataFrame, key: str, key_label: str, kpi_name: str, currency: str, top: int = 15) -> go.Figure:
    """One KPI per department (the ``top`` largest, largest first) or per segment, as horizontal bars."""
    label = KPI_DEFINITIONS[kpi_name].label
    ranked = key == "department"  # departments largest first; segments keep their natural order
    shown = rows.nlargest(top, kpi_name) if ranked else rows
    fig = px.bar(shown, x=kpi_name, y=key, orientation="h", title=f"{label} by {key_label.lower()}")
    if ranked:
        fig.update_yaxes(title=key_label, categoryorder="total ascending")
    else:
        fig.update_yaxes(title=key_label, autorange="reversed", type="category")
    _value_axis(fig, kpi_name, currency, "x")
    fig.update_layout(height=max(300, 28 * len(shown) + 90), margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
