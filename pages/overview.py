"""KPI overview for managers: headline KPIs vs the previous period, weekly trends, breakdowns."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import kpi
from engine.markup import escape_markdown
from engine.schema import DEFAULT_COST_RATIO
from pages import _common as common
from pages import _display as display

DEFAULT_TRENDS = ["revenue", "baskets", "aov", "gross_margin"]
NEUTRAL_CHANGE = {"discount_rate", "promo_share"}  # neither up nor down is good news by itself


def filters(dataset: str, info) -> kpi.KpiFilter:
    """Sidebar filters: period, departments, customer segment."""
    choices = common.filter_choices(dataset)
    st.sidebar.subheader("Filters")
    period = st.sidebar.date_input(
        "Period",
        value=kpi.default_period(info.first_day, info.last_day),
        help="Default: the latest half of the data, so the change is measured against the half before.",
        min_value=info.first_day,
        max_value=info.last_day,
        key=f"kpi_period_{dataset}",
    )
    start, end = (tuple(period) + (None, None))[:2]
    departments = st.sidebar.multiselect(
        "Departments", choices["departments"], placeholder="All departments", key=f"kpi_departments_{dataset}"
    )
    attributes = [a for a in choices if a != "departments"]
    attribute = st.sidebar.selectbox(
        "Customer segment",
        [None, *attributes],
        format_func=lambda a: "All customers" if a is None else display.attribute_title(a),
        key=f"kpi_segment_attribute_{dataset}",
    )
    segment = None
    if attribute is not None:
        label = display.attribute_title(attribute)
        segment = (
            attribute,
            st.sidebar.selectbox(escape_markdown(label), choices[attribute], key=f"kpi_segment_value_{dataset}"),
        )
    return kpi.KpiFilter(start=start, end=end, departments=tuple(departments), segment=segment)


def headline_metrics(result: dict, currency: str) -> None:
    """The nine KPIs with their change vs the previous period of equal length."""
    names = list(kpi.KPI_DEFINITIONS)
    for row in (names[:5], names[5:]):
        for column, name in zip(st.columns(5), row, strict=False):
            d = kpi.KPI_DEFINITIONS[name]
            column.metric(
                d.label,
                display.format_kpi(result[name], d.unit, currency),
                delta=display.format_change(result["change"][name], d.unit),
                delta_color="off" if name in NEUTRAL_CHANGE else "normal",
                help=d.formula,
                border=True,
            )
    previous = f"{result['previous_start']} to {result['previous_end']}"
    note = "" if result["previous"]["revenue"] is not None else " (no data there, so no change is shown)"
    st.caption(
        f"{result['start']} to {result['end']}, compared with the previous period of equal length, {previous}{note}. "
        "Changes: relative for money and counts, percentage points (pp) for rates."
    )
    if result["unit_cost_share"] is not None and result["unit_cost_share"] < 1:
        st.warning(
            f"Gross margin is an estimate: {1 - result['unit_cost_share']:.0%} of revenue comes from products "
            "without a unit cost, costed at shelf price x the department's cost ratio (an assumption, editable below).",
            icon=":material/info:",
        )
    display.download_csv(kpi.headline_table(result), "kpi_headline.csv", "Download headline KPIs (CSV)")


def weekly_trends(weeks: pd.DataFrame, currency: str) -> None:
    """One line per chosen KPI over calendar weeks (Monday to Sunday).

    A week that the period or the data cuts (``partial``: fewer than 7 days) would show as a
    false cliff, so the lines leave it out and the caption names it; the CSV keeps every week.
    """
    st.subheader("Weekly trends")
    chosen = st.multiselect(
        "KPIs to chart",
        list(kpi.KPI_DEFINITIONS),
        default=DEFAULT_TRENDS,
        format_func=lambda n: kpi.KPI_DEFINITIONS[n].label,
        key="kpi_trend_kpis",
    )
    whole = weeks[~weeks["partial"]]
    charted = whole if not whole.empty else weeks  # a period shorter than a week: chart what there is
    columns = st.columns(2)
    for i, name in enumerate(chosen):
        columns[i % 2].plotly_chart(display.weekly_trend(charted, name, currency), width="stretch")
    cut = weeks[weeks["partial"]].itertuples()
    partial = ", ".join(f"week of {row.week_start} ({row.days} of 7 days)" for row in cut)
    if whole.empty:
        note = "No whole week in this period: every point is a partial week."
    elif partial:
        note = f"Partial weeks, cut by the period or the data, are left out of the lines (kept in the CSV): {partial}."
    else:
        note = "Every week is whole."
    st.caption(f"Calendar weeks, Monday to Sunday. {note}")
    display.download_csv(weeks, "kpi_by_week.csv", "Download weekly KPIs (CSV)")


def breakdown(rows: pd.DataFrame, key: str, key_label: str, currency: str, widget: str) -> None:
    """A bar chart of one KPI per group, the full table, and its CSV."""
    shown = st.selectbox(
        "KPI to chart", list(kpi.KPI_DEFINITIONS), format_func=lambda n: kpi.KPI_DEFINITIONS[n].label, key=widget
    )
    st.plotly_chart(display.breakdown_bars(rows, key, key_label, shown, currency), width="stretch")
    config = display.kpi_column_config(currency) | {key: st.column_config.TextColumn(key_label)}
    config["suppressed"] = st.column_config.TextColumn("Suppressed (privacy)") if rows["suppressed"].any() else None
    st.dataframe(rows, hide_index=True, column_config=config, width="stretch")
    st.caption(
        f"Baskets and customers per {escape_markdown(key_label.lower())}: those with at least one line in it. "
        f"Customer groups smaller than the studio's minimum group size show no figures."
    )
    display.download_csv(rows, f"kpi_by_{key}.csv", f"Download KPIs by {escape_markdown(key_label.lower())} (CSV)")


def cost_ratio_assumption(dataset: str) -> None:
    """Assumption: the cost ratio (cost / shelf price) per department, used where no unit cost is known."""
    st.subheader("Assumption: cost ratios by department")
    st.caption(
        "Where a product has no unit cost, cost = shelf amount x its department's cost ratio. "
        "These ratios are an analyst's assumption, not data: edit them to match your margins."
    )
    ratios = common.cost_ratios(dataset)
    left, right = st.columns([2, 1])
    left.dataframe(ratios, hide_index=True, width="stretch", column_config=display.COST_RATIO_COLUMNS)
    with right.form("cost_ratio_form"):
        department = st.selectbox("Department", ratios["department"].tolist(), key="cost_department")
        ratio = st.number_input(
            "Cost ratio (cost / shelf price)", 0.01, 1.49, DEFAULT_COST_RATIO, 0.01, key="cost_ratio"
        )
        if st.form_submit_button("Save cost ratio") and common.run_or_error(
            lambda: common.set_cost_ratio(dataset, department, ratio)
        ):
            st.rerun()


def definitions(currency: str) -> None:
    st.subheader("KPI definitions")
    st.table(display.kpi_definitions_table(currency), hide_index=True)


st.title("KPI overview")
dataset = common.require_dataset()
info = common.dataset_info(dataset)
currency = display.currency_of(info)
flt = filters(dataset, info)
result = common.run_or_error(lambda: common.kpi_headline(dataset, flt))
if result is None:
    st.stop()
if result["suppressed"]:  # no figure over fewer customers than the minimum group size, not even the headline
    st.info(
        f"KPIs suppressed for privacy: {escape_markdown(result['suppressed'])}. Widen the period or choose a "
        "larger segment; the minimum group size is under Customers > Privacy and fair-pricing settings."
    )
    st.stop()
if result["baskets"] == 0:
    st.info("No baskets match these filters: widen the period, departments or segment.")
    st.stop()
headline_metrics(result, currency)
weekly_trends(common.kpi_breakdown(dataset, flt, "week"), currency)
st.subheader("By department")
breakdown(
    common.kpi_breakdown(dataset, flt, "department"), "department", "Department", currency, "kpi_department_chart"
)
st.subheader("By customer segment")
attributes = [a for a in common.filter_choices(dataset) if a != "departments"]
if attributes:
    attribute = st.selectbox("Segment by", attributes, format_func=display.attribute_title, key="kpi_segment_breakdown")
    breakdown(
        common.kpi_breakdown(dataset, flt, "segment", attribute),
        "segment",
        display.attribute_title(attribute),
        currency,
        "kpi_segment_chart",
    )
else:
    st.info("This dataset has no customer demographics to segment by.")
cost_ratio_assumption(dataset)
definitions(currency)
