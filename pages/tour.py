"""Stakeholder tour: KPIs, the model's evaluation, a bundle found, its optimized price and effect."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import kpi
from engine.markup import escape_markdown
from engine.pricing import charts
from pages import _common as common
from pages import _display as display

STEP_KEY = "tour_step"
STEPS = ["The business", "The model", "A bundle worth offering", "Its best price", "What it does"]
DEFAULT_DATASET = "completejourney"


def step_business(story) -> None:
    st.markdown(f"**{escape_markdown(story.dataset)}**: what customers bought, at a glance.")
    shown = ["revenue", "baskets", "aov", "customers", "discount_rate", "gross_margin"]
    for row in (shown[:3], shown[3:]):
        for column, name in zip(st.columns(len(row)), row, strict=True):
            d = kpi.KPI_DEFINITIONS[name]
            column.metric(d.label, display.format_kpi(story.kpis[name], d.unit), help=d.formula, border=True)
    st.caption("Full KPI charts, trends and breakdowns: the KPI overview page.")


def step_model(story) -> None:
    if story.evaluation is None:
        st.info(
            f"The choice model has not been trained on {escape_markdown(story.dataset)} yet (Model page, one "
            "click). It learns each customer's preferences, price sensitivity and which products complement "
            "each other."
        )
        return
    rows = []
    for name, metrics in [
        ("Choice model", story.evaluation.get("model", {})),
        *story.evaluation.get("baselines", {}).items(),
    ]:
        rows.append(
            {
                "model": name.replace("_", " ").capitalize(),
                **{k: metrics.get(k) for k in ("nll", "loo_nll", "auc", "recall_at_10")},
            }
        )
    st.markdown(
        f"Model run `{story.model_run}`, evaluated on held-out weeks against the baselines that are hard to beat "
        "in grocery. Lower log-loss is better; higher AUC and recall are better."
    )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def step_bundle(story) -> None:
    if story.bundle is None:
        st.info("No bundle candidate could be found.")
        return
    b = story.bundle
    st.markdown(f"### {' + '.join(map(escape_markdown, b.names))}")
    cols = st.columns(4)
    cols[0].metric("Bought together", f"{b.together_baskets:,} baskets")
    cols[1].metric("Lift", f"{b.lift:.1f}x", help="How much more often they are bought together than by chance.")
    cols[2].metric("Learned complementarity", "n/a" if b.complementarity is None else f"{b.complementarity:+.2f}")
    cols[3].metric("Shared customers", f"{b.shared_customers:,}")
    st.caption(
        f"From {escape_markdown(story.pricing_dataset)}. More candidates, filters and the pair heatmap: "
        "the Bundles page."
    )


def step_price(story) -> None:
    decision = story.decision
    if decision is None:
        st.info("No price recommendation available.")
        return
    (st.success if decision.discount_pays else st.warning)(escape_markdown(decision.recommendation))
    st.dataframe(
        decision.strategy_table()[["strategy", "prices", "objective_gain", "take_rate", "incremental_margin"]],
        hide_index=True,
        width="stretch",
    )


def step_effect(story) -> None:
    decision = story.decision
    if decision is None:
        return
    figures = decision.projection.total.figures
    shown = [
        ("take_rate", "Take rate", "percent"),
        ("incremental_margin", "Incremental margin", "money"),
        ("incremental_revenue", "Incremental revenue", "money"),
        ("cannibalized_revenue", "Cannibalized", "money"),
        ("consumer_surplus_change", "Customer surplus", "money"),
        ("share_better_off", "Better off", "percent"),
    ]
    for row in (shown[:3], shown[3:]):
        for column, (name, label, kind) in zip(st.columns(len(row)), row, strict=True):
            f = figures[name]
            fmt = charts.percent if kind == "percent" else charts.money
            column.metric(label, fmt(f.value), border=True)
            column.caption(f"band {fmt(f.low)} – {fmt(f.high)}")
    st.caption(f"Over {decision.weeks:g} weeks at the recommended price. Explore other prices: the Pricing studio.")


st.title("Guided tour")
names = [d.name for d in common.datasets()]
dataset = DEFAULT_DATASET if DEFAULT_DATASET in names else common.require_dataset()
story = common.run_or_error(lambda: common.tour_story(dataset))
if story is None:
    st.stop()
for note in story.notes:
    st.info(escape_markdown(note), icon=":material/info:")
step = min(st.session_state.get(STEP_KEY, 0), len(STEPS) - 1)
st.progress((step + 1) / len(STEPS), text=f"Step {step + 1} of {len(STEPS)}: {STEPS[step]}")
[step_business, step_model, step_bundle, step_price, step_effect][step](story)
back, _, forward = st.columns([1, 4, 1])
if back.button("Back", disabled=step == 0, key="tour_back", width="stretch"):
    st.session_state[STEP_KEY] = step - 1
    st.rerun()
if forward.button("Next", disabled=step == len(STEPS) - 1, type="primary", key="tour_next", width="stretch"):
    st.session_state[STEP_KEY] = step + 1
    st.rerun()
