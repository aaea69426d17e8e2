"""Scenarios: saved pricing decisions - open, duplicate, rename, delete, compare, export, fairness."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from engine import exports, fairness, scenarios
from engine.markup import escape_markdown, escape_plotly
from pages import _common as common

FIGURE_LABELS = exports.FIGURE_LABELS


def scenario_table(saved: list[scenarios.Scenario]) -> None:
    con = common.get_connection()
    rows = [
        {
            "name": s.name,
            "dataset": s.dataset,
            "bundle": " + ".join(s.item_names),
            "prices": ", ".join(f"{k}: {v:.2f}" for k, v in s.prices.items()),
            "take_rate": s.figures.get("take_rate"),
            "incremental_margin": s.figures.get("incremental_margin"),
            "status": scenarios.staleness(con, s) or "current",
            "updated": s.updated_at[:16].replace("T", " "),
        }
        for s in saved
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "take_rate": st.column_config.NumberColumn("Take rate", format="percent"),
            "incremental_margin": st.column_config.NumberColumn("Incremental margin", format="dollar"),
        },
    )


def details(scenario: scenarios.Scenario) -> None:
    con = common.get_connection()
    stale = scenarios.staleness(con, scenario)
    if stale:
        st.warning(
            f"Stale: {escape_markdown(stale)}. The figures below are those at save time.", icon=":material/history:"
        )
        if st.button("Re-project on the current data and model", key="sc_reproject"):
            if common.run_or_error(lambda: scenarios.reproject(con, scenario)):
                st.rerun()
    notice = exports.notice(scenario)
    if notice:
        st.info(escape_markdown(notice), icon=":material/privacy_tip:")
    st.caption(
        f"{' + '.join(map(escape_markdown, scenario.item_names))} · "
        f"regular {sum(scenario.regular_prices):.2f} · {scenario.weeks} weeks · "
        f"run {escape_markdown(scenario.run_id)} · notes: {escape_markdown(scenario.notes or '-')}"
    )
    band = scenario.figures.get("band", {})
    rows = [
        {
            "figure": FIGURE_LABELS[k],
            "projected": scenario.figures[k],
            "low": band.get(k, [None, None])[0],
            "high": band.get(k, [None, None])[1],
        }
        for k in scenarios.FIGURES
        if k in scenario.figures
    ]
    left, right = st.columns([3, 2])
    left.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "projected": st.column_config.NumberColumn("Projected", format="%,.2f"),
            "low": st.column_config.NumberColumn("Band low", format="%,.2f"),
            "high": st.column_config.NumberColumn("Band high", format="%,.2f"),
        },
    )
    right.dataframe(
        pd.DataFrame({"segment": list(scenario.prices), "bundle price": list(scenario.prices.values())}),
        hide_index=True,
        width="stretch",
    )
    if right.button("Open in the Pricing studio", type="primary", key="sc_open"):
        common.open_in_studio(scenario)


def manage(scenario: scenarios.Scenario) -> None:
    con = common.get_connection()
    left, middle, right = st.columns(3)
    with left.form("sc_duplicate"):
        name = st.text_input("Duplicate as", f"{scenario.name} (copy)", key="sc_dup_name")
        if st.form_submit_button("Duplicate") and common.run_or_error(
            lambda: scenarios.duplicate(con, scenario.name, name)
        ):
            st.rerun()
    with middle.form("sc_rename"):
        name = st.text_input("Rename to", scenario.name, key="sc_new_name")
        if st.form_submit_button("Rename") and common.run_or_error(lambda: scenarios.rename(con, scenario.name, name)):
            st.session_state["sc_selected"] = name
            st.rerun()
    with right.form("sc_delete"):
        sure = st.checkbox(f"Yes, delete '{escape_markdown(scenario.name)}'", key="sc_confirm")
        if st.form_submit_button("Delete"):
            if not sure:
                st.error("Tick the confirmation box to delete.")
            elif common.run_or_error(lambda: scenarios.delete(con, scenario.name)) is None:
                st.session_state.pop("sc_selected", None)
                st.rerun()


def downloads(scenario: scenarios.Scenario) -> None:
    con = common.get_connection()
    left, middle, right = st.columns(3)
    left.download_button(
        "Price list (CSV)",
        exports.price_list_file(con, [scenario], "csv"),
        f"{scenario.name}.csv",
        "text/csv",
        key="sc_csv",
    )
    middle.download_button(
        "Price list (Excel)",
        exports.price_list_file(con, [scenario], "xlsx"),
        f"{scenario.name}.xlsx",
        key="sc_xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    right.download_button(
        "Stakeholder report (HTML)",
        exports.report_html(con, scenario),
        f"{scenario.name}.html",
        "text/html",
        key="sc_html",
    )


def fairness_section(scenario: scenarios.Scenario) -> None:
    con = common.get_connection()
    view = common.run_or_error(
        lambda: fairness.fairness_view(con, scenario.dataset, fairness.scenario_outcomes(con, scenario))
    )
    if view is None:
        return
    if len(scenario.prices) == 1:
        st.caption("One price for everyone: price and discount are equal across groups by construction.")
    gaps = view.gaps.copy()
    st.dataframe(
        gaps.style.apply(lambda row: ["background-color: #ffe8a3" if row.largest else "" for _ in row], axis=1),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"Group means across sensitive attributes; the largest gap per measure is highlighted. Groups under "
        f"{view.min_group_size} customers are suppressed. Surplus per customer is their pricing segment's average."
    )


def comparison(saved: list[scenarios.Scenario]) -> None:
    names = [s.name for s in saved]
    chosen = st.multiselect(
        "Scenarios to compare (2 to 4)", names, default=names[:2], max_selections=4, key="sc_compare"
    )
    if len(chosen) < 2:
        st.info("Choose at least two scenarios.")
        return
    baseline = st.selectbox("Baseline", [scenarios.STATUS_QUO, *chosen], key="sc_baseline")
    picked = [next(s for s in saved if s.name == n) for n in chosen]
    table = common.run_or_error(lambda: scenarios.compare(picked, baseline))
    if table is None:
        return
    table["figure"] = table.figure.map(FIGURE_LABELS)
    st.dataframe(table, hide_index=True, width="stretch")
    deltas = table.melt(
        id_vars="figure",
        value_vars=[c for c in table.columns if c.startswith("delta: ")],
        var_name="scenario",
        value_name="delta",
    )
    money = deltas[
        deltas.figure.isin(
            [
                FIGURE_LABELS[k]
                for k in (
                    "incremental_revenue",
                    "incremental_margin",
                    "cannibalized_revenue",
                    "consumer_surplus_change",
                )
            ]
        )
    ]
    money = money.assign(scenario=money.scenario.map(escape_plotly))  # legend entries are Plotly text
    fig = px.bar(
        money,
        x="figure",
        y="delta",
        color="scenario",
        barmode="group",
        title=f"Change vs {escape_plotly(baseline)}, over each scenario's horizon",
    )
    fig.update_layout(yaxis_title="Currency", xaxis_title="", height=380, yaxis_tickformat=",.0f")
    st.plotly_chart(fig, width="stretch")


st.title("Scenarios")
con = common.get_connection()
saved = scenarios.list_all(con)
if not saved:
    st.info("No scenario saved yet: price a bundle in the Pricing studio and save it as a scenario.")
    st.stop()
scenario_table(saved)
names = [s.name for s in saved]
if st.session_state.get("sc_selected") not in names:
    st.session_state["sc_selected"] = names[0]
selected = st.selectbox("Scenario", names, key="sc_selected")
scenario = next(s for s in saved if s.name == selected)
details(scenario)
manage(scenario)
st.subheader("Exports")
downloads(scenario)
st.subheader("Fair pricing")
fairness_section(scenario)
st.header("Compare scenarios")
comparison(saved)
