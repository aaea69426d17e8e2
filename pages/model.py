"""Model: train the choice model with one click, follow it, and read how well it predicts."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from engine.markup import escape_markdown, escape_plotly
from engine.model.config import ModelConfig
from engine.model.jobs import TrainingJob
from engine.model.report import METRIC_LABELS, ModelReport, model_report
from engine.model.runs import RunInfo, list_runs
from engine.model.train import describe_device
from engine.model.trust import TrustChart, trust_report
from pages._common import current_dataset, db_path, get_connection, run_or_error

SEEN_RUN_KEY = "model_seen_run"  # the finished training this session has already refreshed for


@st.cache_resource(show_spinner=False)
def training_jobs() -> dict[str, TrainingJob]:
    """Training jobs by dataset: one registry per app process, shared by every session."""
    return {}


def train_form(dataset: str, busy: bool) -> None:
    with st.form("train_form"):
        left, middle, right = st.columns(3)
        level = left.selectbox(
            "Level",
            ["product", "category"],
            key="train_level",
            help="Category level: each category is one item ('any pasta').",
        )
        catalog = middle.number_input(
            "Catalog size", 10, 20000, ModelConfig.catalog_size, step=100, key="train_catalog"
        )
        epochs = right.number_input("Max epochs", 1, 100, ModelConfig.max_epochs, key="train_epochs")
        submitted = st.form_submit_button("Train", type="primary", disabled=busy, key="train_submit")
    if submitted and not busy:
        config = ModelConfig(level=level, catalog_size=int(catalog), max_epochs=int(epochs))
        training_jobs()[dataset] = TrainingJob(get_connection(), db_path(), dataset, config).start()
        st.rerun()


def training_status(dataset: str) -> None:
    job = training_jobs().get(dataset)
    if job is None:
        return
    state = job.state()
    if state.active:
        eta = f"{state.eta_s / 60:.1f} min left" if state.eta_s is not None else ""
        text = (
            f"{state.status.capitalize()} · epoch {state.epoch}/{state.max_epochs} · loss {state.loss or 0:.3f} · "
            f"{state.examples_per_s:,.0f} examples/s · {eta}"
        )
        st.progress(min(max(state.fraction, 0.0), 1.0), text=text)
        if st.button("Cancel training", key="cancel_training"):
            job.cancel()
    elif state.status == "done":
        st.success(f"Training finished: {escape_markdown(state.message)}.")
        if st.session_state.get(SEEN_RUN_KEY) != state.run_id:
            st.session_state[SEEN_RUN_KEY] = state.run_id
            st.rerun()  # the whole page: the new run appears
    elif state.status == "failed":
        st.error(f"Training failed: {escape_markdown(state.message)}")
    else:
        st.warning(escape_markdown(state.message or "Training cancelled."))


def pick_run(dataset: str) -> RunInfo | None:
    runs = [r for r in run_or_error(lambda: list_runs(get_connection(), dataset)) or [] if r.kind == "trained"]
    if not runs:
        st.info("No trained model for this dataset yet: press Train.")
        return None
    labels = [f"{r.run_id} · {r.level} level · {r.created_at:%Y-%m-%d %H:%M}" for r in runs]
    return runs[labels.index(st.selectbox("Run (latest first)", labels, key="model_run"))]


def show_metrics(report: ModelReport) -> None:
    st.subheader("Held-out weeks: model vs baselines")
    t = report.training
    st.caption(
        f"Trained on {report.device} in {report.seconds or 0:.0f} s · {t.get('epochs', '?')} epochs · "
        f"{t.get('train_examples_per_s', 0):,.0f} examples/s · best validation loss {t.get('val_loss') or 0:.3f}"
    )
    left, right = st.columns([3, 1])
    left.dataframe(report.metrics.rename(columns=METRIC_LABELS), hide_index=True)
    if not report.validation.empty:
        right.plotly_chart(
            px.line(report.validation, x="epoch", y="val_loss", markers=True, height=220, title="Validation loss"),
            width="stretch",
        )
    long = report.metrics.melt(id_vars="scorer", var_name="metric", value_name="value")
    st.plotly_chart(
        px.bar(long, x="metric", y="value", color="scorer", barmode="group", facet_col="metric", facet_col_spacing=0.06)
        .update_xaxes(matches=None, showticklabels=False)
        .update_yaxes(matches=None, showticklabels=True),
        width="stretch",
    )
    if not report.slices.empty:
        st.caption("Slices")
        st.dataframe(report.slices, hide_index=True)


def show_behaviour(report: ModelReport) -> None:
    left, right = st.columns(2)
    left.subheader("Calibration by discount depth")
    left.plotly_chart(
        px.line(
            report.calibration,
            x="discount",
            y="purchase_rate",
            color="scorer",
            markers=True,
            labels={"purchase_rate": "purchase rate per trip and item"},
        ),
        width="stretch",
    )
    right.subheader("Own-price elasticity by segment")
    box = go.Figure()
    for row in report.elasticities.itertuples():
        segment = escape_plotly(row.segment)  # a name from data: text, not Plotly HTML
        box.add_trace(
            go.Box(
                x=[segment],
                name=segment,
                q1=[row.p25],
                median=[row.p50],
                q3=[row.p75],
                lowerfence=[row.p5],
                upperfence=[row.p95],
                mean=[row.mean],
            )
        )
    right.caption("Boxes: 25-75% of the demand-weighted customer x item elasticities; whiskers 5-95%.")
    right.plotly_chart(box.update_layout(showlegend=False, yaxis_title="own-price elasticity"), width="stretch")
    st.subheader("Learned complements and substitutes")
    for column, title, frame in zip(
        st.columns(2),
        ("Complements (coupling > 0)", "Substitutes (coupling < 0)"),
        (report.complements, report.substitutes),
        strict=True,
    ):
        column.caption(title)
        column.dataframe(frame, hide_index=True)


def show_trust(metrics: dict, dataset: str) -> None:
    st.header("Can I trust the projections?")
    trust = trust_report(metrics)
    if trust.empty:
        st.info(f"This run has no held-out checks yet: `python -m engine evaluate --dataset {dataset} --recompute`.")
        return
    st.table(trust.summary, hide_index=True)
    show_charts(trust.held_out)
    if trust.truth_tiles or trust.truth:
        st.subheader("Recovery of the known truth (synthetic market)")
        for column, tile in zip(st.columns(3), trust.truth_tiles, strict=False):
            column.metric(tile.label, tile.value, tile.verdict, tile.color, delta_arrow="off", help=tile.note)
        st.markdown(trust.truth_sentence)
        show_charts(trust.truth)


def show_charts(charts: tuple[TrustChart, ...]) -> None:
    for start in range(0, len(charts), 2):
        for column, chart in zip(st.columns(2, gap="large"), charts[start : start + 2], strict=False):
            column.plotly_chart(chart.figure, width="stretch")
            column.markdown(chart.sentence)
            if chart.table is not None:
                column.table(chart.table, hide_index=True)


st.title("Model")
dataset = current_dataset()
if dataset is None:
    st.info("No dataset yet: ingest one on the Data page or with `python -m engine ingest`.")
    st.stop()
st.caption(f"Training device: {describe_device()} · dataset {escape_markdown(dataset)}")
job = training_jobs().get(dataset)
busy = job is not None and job.state().active
train_form(dataset, busy)
st.fragment(training_status, run_every=1.0 if busy else None)(dataset)
run = pick_run(dataset)
if run is not None:
    report = model_report(run)
    show_metrics(report)
    show_trust(run.metrics, dataset)
    show_behaviour(report)
