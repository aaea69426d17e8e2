"""How KPI pages look: plotly figures (titles, axis labels with units, currency formatting),
number formats for headline tiles and tables, CSV downloads."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from engine import kpi, spreadsheet_safety, store
from engine.kpi import KPI_DEFINITIONS
from engine.markup import escape_plotly


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
    fig = px.line(
        weeks, x="week_start", y=kpi_name, markers=True, title=f"{label} per week", hover_data=["week", "days"]
    )
    fig.update_traces(
        marker={"size": 6, "symbol": ["circle" if days >= 7 else "circle-open" for days in weeks["days"]]}
    )
    fig.update_xaxes(title="Week starting")
    _value_axis(fig, kpi_name, currency, "y")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def breakdown_bars(
    rows: pd.DataFrame, key: str, key_label: str, kpi_name: str, currency: str, top: int = 15
) -> go.Figure:
    """One KPI per department (the ``top`` largest, largest first) or per segment, as horizontal bars."""
    label = KPI_DEFINITIONS[kpi_name].label
    ranked = key == "department"  # departments largest first; segments keep their natural order
    shown = rows.nlargest(top, kpi_name) if ranked else rows
    shown = shown.assign(**{key: shown[key].map(escape_plotly)})  # names from data: text, not Plotly HTML
    fig = px.bar(shown, x=kpi_name, y=key, orientation="h", title=f"{label} by {key_label.lower()}")
    if ranked:
        fig.update_yaxes(title=key_label, categoryorder="total ascending")
    else:
        fig.update_yaxes(title=key_label, autorange="reversed", type="category")
    _value_axis(fig, kpi_name, currency, "x")
    fig.update_layout(height=max(300, 28 * len(shown) + 90), margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


# ---- numbers and tables


def currency_of(info: store.DatasetInfo) -> str:
    return str(info.details.get("currency", "USD"))


def format_kpi(value: float | None, unit: str, currency: str = "USD") -> str:
    """A KPI value for a headline tile: $4.18M / $29.70 / 1,894,283 / 10.22 / 15.6%."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "currency":
        text = _compact(value) if abs(value) >= 1e6 else f"{value:,.{2 if abs(value) < 1000 else 0}f}"
        return f"${text}" if currency == "USD" else f"{text} {currency}"
    if abs(value) >= 1e7:
        return _compact(value)
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 1000 else f"{value:,.2f}"


def _compact(value: float) -> str:
    """4183884.68 -> '4.18M' (a headline tile has room for about nine characters)."""
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(value) >= threshold:
            return f"{value / threshold:,.2f}{suffix}"
    return f"{value:,.0f}"


def format_change(change: float | None, unit: str) -> str | None:
    """Change vs the previous period: relative for money and counts, percentage points for ratios."""
    if change is None:
        return None
    return f"{change * 100:+.1f} pp" if unit == "ratio" else f"{change:+.1%}"


def kpi_column_config(currency: str) -> dict:
    """``st.dataframe`` column settings that show every KPI column with its unit and definition."""
    config = {}
    for name, d in kpi.KPI_DEFINITIONS.items():
        if d.unit == "ratio":
            number_format = "percent"
        elif d.unit == "currency":
            number_format = "dollar" if currency == "USD" else "localized"
        else:
            number_format = "%.2f" if name == "items_per_basket" else "localized"
        label = d.label if d.unit != "currency" or currency == "USD" else f"{d.label} ({currency})"
        config[name] = st.column_config.NumberColumn(label, format=number_format, help=d.formula)
    return config


COST_RATIO_COLUMNS = {
    "department": "Department",
    "cost_ratio": st.column_config.NumberColumn("Cost ratio", format="%.2f"),
    "products": st.column_config.NumberColumn("Products", format="localized"),
    "products_without_unit_cost": st.column_config.NumberColumn("Products without unit cost", format="localized"),
}


def kpi_definitions_table(currency: str) -> pd.DataFrame:
    """Every KPI's label, definition in words and unit, for the page's definitions table."""
    units = {"currency": currency, "count": "count", "ratio": "% (a share)"}
    return pd.DataFrame(
        [{"KPI": d.label, "Definition": d.formula, "Unit": units[d.unit]} for d in kpi.KPI_DEFINITIONS.values()]
    )


def attribute_title(attribute: str) -> str:
    """``income_band`` -> ``Income band``."""
    return attribute.replace("_", " ").capitalize()


def download_csv(frame: pd.DataFrame, file_name: str, label: str) -> None:
    """A download button for exactly the table shown."""
    st.download_button(
        label,
        spreadsheet_safety.csv_text(frame).encode(),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
