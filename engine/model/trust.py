"""Can I trust the projections? A run's held-out evidence as charts and plain-word sentences.

Reads the blocks ``evaluate`` stores with a run (``RunInfo.metrics``); older runs may lack any of
them, and a missing block gives no chart and no sentence:

- ``calibration`` (``engine.model.calibration``): projected vs observed purchases over the
  held-out weeks, per item, per top pair and per week, for the model and the personal-frequency
  baseline;
- ``backtest`` (``engine.model.backtest``): projected vs observed sales lift in the held-out
  weeks where an item's price moved, for the model and the same network without its price term;
- ``truth`` (synthetic markets only, ``engine.model.insights.truth_recovery``): learned vs true
  parameters and, once the pricing engine added it, ``decision_capture``: the share of the best
  achievable gain that prices set from the learned model capture.

A ratio projected / observed (or learned / true) within ``IN_LINE`` reads "in line"; above it,
"overstated"; below it, "understated". Every function here is pure (metrics dict in, plotly
figure, sentence or table out), so the Model page only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

IN_LINE = (0.85, 1.15)  # a ratio in this band reads "in line"
CLEAR_CORRELATION = 0.6  # the backtest clearly supports the price response: lifts correlate at least this well
CLEAR_WAPE_GAIN = 0.8  # ... and the model's WAPE is at most this share of the no-price-effect baseline's
GOOD_CAPTURE = 0.85  # prices from the learned model that capture this share of the best gain are "close to the best"
SCORER_NAMES = {
    "model": "Choice model",
    "personal_frequency": "Personal-frequency baseline",
    "no_price_effect": "No-price-effect baseline",
}
COLORS = {
    "Observed": "#1f2937",
    "Choice model": "#2563eb",
    "Personal-frequency baseline": "#f59e0b",
    "No-price-effect baseline": "#f59e0b",
    "True complement pair": "#2563eb",
}
DIAGONAL = "Projection = observed (y = x)"
GAINS, LOSES = "Gains at the learned price", "Loses money at the learned price"
HEIGHT = 420


@dataclass(frozen=True)
class TrustChart:
    """One chart and the sentence that says what it means for a pricing decision."""

    figure: go.Figure
    sentence: str
    table: pd.DataFrame | None = None  # a few figures in words shown under the sentence


@dataclass(frozen=True)
class TruthTile:
    """A learned / true magnitude ratio of a synthetic market, as a labelled metric."""

    label: str
    value: str  # "0.97x"
    verdict: str  # "in line" / "overstated" / "understated"
    note: str  # what the ratio means, for the tile's help

    @property
    def color(self) -> str:
        return "green" if self.verdict == "in line" else "orange"


@dataclass(frozen=True)
class TrustReport:
    """The Model page's "Can I trust the projections?" section for one run."""

    summary: pd.DataFrame  # Check, Choice model, Simple baseline, Reading (plain words)
    held_out: tuple[TrustChart, ...]  # per item, per pair, per week, promotion backtest
    truth_tiles: tuple[TruthTile, ...]
    truth_sentence: str  # what the tiles mean ("" without them)
    truth: tuple[TrustChart, ...]  # learned vs true complements, decision capture

    @property
    def empty(self) -> bool:
        return self.summary.empty and not self.held_out and not self.truth_tiles and not self.truth


def trust_report(metrics: dict) -> TrustReport:
    """Every chart, sentence and table of the section, from a run's stored metrics."""
    held_out = [
        (item_scatter(metrics), item_sentence(metrics), None),
        (pair_scatter(metrics), pair_sentence(metrics), None),
        (weekly_totals(metrics), weeks_sentence(metrics), None),
        (backtest_scatter(metrics), backtest_sentence(metrics), backtest_table(metrics)),
    ]
    truth = [
        (complement_scatter(metrics), complement_sentence(metrics), None),
        (decision_capture_bars(metrics), capture_sentence(metrics), None),
    ]
    return TrustReport(
        summary=summary_table(metrics),
        held_out=tuple(TrustChart(f, s or "", t) for f, s, t in held_out if f is not None),
        truth_tiles=truth_tiles(metrics),
        truth_sentence=truth_sentence(metrics) or "",
        truth=tuple(TrustChart(f, s or "", t) for f, s, t in truth if f is not None),
    )


# ---- words and numbers


def verdict(ratio: float) -> str:
    """``"in line"`` within ``IN_LINE``, else ``"overstated"`` or ``"understated"``."""
    low, high = IN_LINE
    return "overstated" if ratio > high else "understated" if ratio < low else "in line"


def format_ratio(value: float | None) -> str:
    """1.0925 -> '1.09x'."""
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2f}x"


def format_share(value: float | None) -> str:
    """0.1234 -> '12%'."""
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.0%}"


def format_correlation(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2f}"


def _ratio_range(summary: dict) -> str:
    """'1.49x (middle half 1.40-1.76x)'."""
    return f"{format_ratio(summary['median'])} (middle half {summary['p25']:.2f}-{summary['p75']:.2f}x)"


def ratio_summary(predicted: np.ndarray, observed: np.ndarray) -> dict[str, float] | None:
    """Median and quartiles of predicted / observed over rows with observed > 0 (None: no row)."""
    keep = (observed > 0) & np.isfinite(predicted)
    if not keep.any():
        return None
    p25, median, p75 = np.percentile(predicted[keep] / observed[keep], [25, 50, 75])
    return {"median": float(median), "p25": float(p25), "p75": float(p75), "n": int(keep.sum())}


def _rows(metrics: dict, block: str, key: str) -> pd.DataFrame:
    """The list ``metrics[block][key]`` as a frame (empty when either is missing)."""
    return pd.DataFrame((metrics.get(block) or {}).get(key) or [])


def _stored_ratio(metrics: dict, scorer: str, figure: str, rows: pd.DataFrame) -> dict[str, float] | None:
    """The calibration block's ratio summary of ``scorer``, or the same computed from ``rows``."""
    stored = ((metrics.get("calibration") or {}).get(scorer) or {}).get(figure)
    if stored and np.isfinite(stored.get("median", np.nan)):
        return stored
    if rows.empty or scorer not in rows:
        return None
    return ratio_summary(rows[scorer].to_numpy(float), rows["observed"].to_numpy(float))


# ---- charts


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    """Title on top, legend in one row under the plot (never over the title or the points)."""
    return (
        fig.update_layout(
            title={"text": title, "x": 0, "xanchor": "left"},
            height=HEIGHT,
            legend_title_text="",
            legend={
                "orientation": "h",
                "yanchor": "top",
                "y": -0.22,
                "xanchor": "left",
                "x": 0,
                "traceorder": "normal",
            },
            margin={"l": 10, "r": 10, "t": 50, "b": 10},
        )
        .update_xaxes(title=x_title)
        .update_yaxes(title=y_title)
    )


HOVER_LABELS = {
    "observed": "Observed",
    "predicted": "Projected",
    "series": "Series",
    "week": "Week",
    "discount": "Price cut (negative: a rise)",
}


def _scatter(long: pd.DataFrame, hover: dict, log: bool, diagonal: str = DIAGONAL) -> go.Figure:
    """Points of ``long`` (observed, predicted, series, label) by series, and the y = x line over
    the range of every plotted value (positive values only on log axes)."""
    fig = px.scatter(
        long,
        x="observed",
        y="predicted",
        color="series",
        hover_name="label",
        hover_data=hover,
        log_x=log,
        log_y=log,
        color_discrete_map=COLORS,
        opacity=0.75,
        labels=HOVER_LABELS,
    )
    values = np.concatenate([long["observed"].to_numpy(float), long["predicted"].to_numpy(float)])
    values = values[np.isfinite(values) & ((values > 0) if log else True)]
    if len(values):
        ends = [float(values.min()), float(values.max())]
        fig.add_trace(
            go.Scatter(
                x=ends,
                y=ends,
                mode="lines",
                name=diagonal,
                hoverinfo="skip",
                line={"color": "#9ca3af", "dash": "dash", "width": 1.5},
            )
        )
        if log:
            ticks = log_ticks(*ends)
            labels = [f"{v:,.0f}" if v >= 10 else f"{v:g}" for v in ticks]
            fig.update_xaxes(tickvals=ticks, ticktext=labels).update_yaxes(tickvals=ticks, ticktext=labels)
    return fig


def log_ticks(low: float, high: float) -> list[float]:
    """Round tick values for a log axis over [low, high]: powers of ten over three decades or more,
    1-2-5 steps over one to three, finer steps below one (never the crowded minor labels)."""
    assert 0 < low <= high, f"log ticks need 0 < low <= high, got {low}, {high}"
    decades = np.log10(high / low)
    steps = (1,) if decades >= 3 else (1, 2, 5) if decades >= 1 else (1, 1.5, 2, 3, 5, 7)
    powers = 10.0 ** np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
    ticks = sorted(float(f"{p * s:.6g}") for p in powers for s in steps)
    inside = [t for t in ticks if low <= t <= high]
    return inside if len(inside) >= 2 else ticks


def _long(rows: pd.DataFrame, scorers: list[str], observed: str = "observed") -> pd.DataFrame:
    """One row per (row, scorer): observed, predicted, series (in words) and the other columns."""
    parts = [
        rows.assign(observed=rows[observed], predicted=rows[s], series=SCORER_NAMES[s]) for s in scorers if s in rows
    ]
    return pd.concat(parts, ignore_index=True)


def item_scatter(metrics: dict) -> go.Figure | None:
    """Per item: purchases projected by the model vs bought over the held-out weeks (log-log)."""
    rows = _rows(metrics, "calibration", "items")
    if rows.empty:
        return None
    long = _long(rows.assign(label=rows["name"]), ["model"])
    fig = _scatter(long, {"series": False, "observed": ":,.0f", "predicted": ":,.0f"}, log=True)
    return _layout(
        fig,
        f"Per item: projected vs observed ({len(rows):,} items)",
        "Observed purchases, held-out weeks (log scale)",
        "Projected purchases (log scale)",
    )


def pair_scatter(metrics: dict) -> go.Figure | None:
    """Per top pair: trips buying both items, projected vs observed (log-log), model and baseline."""
    rows = _rows(metrics, "calibration", "pairs")
    if rows.empty:
        return None
    long = _long(rows.assign(label=rows["name_a"] + " + " + rows["name_b"]), ["model", "personal_frequency"])
    fig = _scatter(long, {"series": True, "observed": ":,.0f", "predicted": ":,.0f"}, log=True)
    return _layout(
        fig,
        f"Per pair: joint purchases of the top {len(rows)} pairs",
        "Observed trips buying both, held-out weeks (log scale)",
        "Projected trips buying both (log scale)",
    )


def weekly_totals(metrics: dict) -> go.Figure | None:
    """Purchases of the whole catalog per held-out week: observed, model and baseline."""
    rows = _rows(metrics, "calibration", "weeks")
    if rows.empty:
        return None
    fig = go.Figure()
    for column, name, dash in (
        ("observed", "Observed", "solid"),
        ("model", "Choice model", "solid"),
        ("personal_frequency", "Personal-frequency baseline", "dash"),
    ):
        if column in rows:
            fig.add_trace(
                go.Scatter(
                    x=rows["week"],
                    y=rows[column],
                    name=name,
                    mode="lines+markers",
                    line={"color": COLORS[name], "dash": dash},
                    hovertemplate="week %{x}: %{y:,.0f} purchases<extra>" + name + "</extra>",
                )
            )
    fig.update_yaxes(rangemode="tozero", tickformat=",.0f")
    fig.update_xaxes(dtick=1)
    return _layout(fig, "Per week: purchases of all items", "Week number (held-out weeks)", "Purchases in the week")


def backtest_scatter(metrics: dict) -> go.Figure | None:
    """Per item-week with a price move: projected vs observed sales lift, model and baseline."""
    rows = _rows(metrics, "backtest", "rows")
    if rows.empty:
        return None
    rows = rows.assign(label=rows["name"], model=rows["model_lift"], no_price_effect=rows["no_price_effect_lift"])
    long = _long(rows, ["model", "no_price_effect"], observed="observed_lift")
    hover = {"series": True, "week": True, "discount": ":.0%", "observed": ":.2f", "predicted": ":.2f"}
    fig = _scatter(long, hover, log=False)
    total = (metrics.get("backtest") or {}).get("item_weeks") or len(rows)
    shown = f"{len(rows):,} of {total:,}" if total > len(rows) else f"{total:,}"
    return _layout(
        fig,
        f"Per price move: sales lift ({shown} item-weeks)",
        "Observed lift (sales in the week / regular-week sales, x)",
        "Projected lift (x)",
    )


def complement_scatter(metrics: dict) -> go.Figure | None:
    """Synthetic market: learned vs true coupling of every true complement pair."""
    rows = _rows(metrics, "truth", "complements")
    if rows.empty:
        return None
    long = rows.assign(
        observed=rows["true"],
        predicted=rows["learned"],
        series="True complement pair",
        label=rows["item_a"] + " + " + rows["item_b"],
    )
    fig = _scatter(
        long, {"series": False, "observed": ":.2f", "predicted": ":.2f"}, log=False, diagonal="Learned = true (y = x)"
    )
    return _layout(
        fig,
        f"Complement strength: learned vs true ({len(rows)} pairs)",
        "True coupling (utility units)",
        "Learned coupling (utility units)",
    )


def decision_capture_bars(metrics: dict) -> go.Figure | None:
    """Synthetic market: per bundle, share of the best achievable gain captured at the learned price."""
    capture = ((metrics.get("truth") or {}).get("decision_capture") or {}).get("pairs") or []
    if not capture:
        return None
    rows = pd.DataFrame(capture)
    rows["bundle"] = [" + ".join(map(str, items)) for items in rows["items"]]
    losing = rows["true_gain_at_learned_price"] < 0 if "true_gain_at_learned_price" in rows else rows["capture"] < 0
    rows["outcome"] = np.where(losing, LOSES, GAINS)
    rows = rows.sort_values("capture")
    hover = {"bundle": False, "outcome": False, "capture": ":.0%"}
    hover.update({k: ":,.2f" for k in ("true_gain_at_learned_price", "true_optimal_gain") if k in rows})
    fig = px.bar(
        rows,
        x="capture",
        y="bundle",
        orientation="h",
        color="outcome",
        hover_name="bundle",
        hover_data=hover,
        color_discrete_map={GAINS: COLORS["Choice model"], LOSES: "#dc2626"},
        category_orders={"outcome": [GAINS, LOSES]},
        labels={
            "true_gain_at_learned_price": "True gain at the learned price",
            "true_optimal_gain": "Best achievable gain",
            "capture": "Captured",
        },
    )
    fig.update_yaxes(categoryorder="array", categoryarray=rows["bundle"].tolist())
    fig.add_vline(x=1.0, line={"color": "#9ca3af", "dash": "dash"})
    fig.update_xaxes(tickformat=".0%")
    _layout(
        fig, "Per bundle: share of the best gain captured", "True gain at the learned price / best gain (%)", "Bundle"
    )
    return fig.update_layout(height=max(HEIGHT, 26 * len(rows) + 120))


# ---- sentences (one per chart) and tables


def _reading(ratio: float, subject: str) -> str:
    """What a ratio's verdict means for ``subject`` (a plural noun phrase)."""
    v = verdict(ratio)
    return f"in line, so {subject} can be taken at face value." if v == "in line" else f"{subject} are {v}."


def item_sentence(metrics: dict) -> str | None:
    ratio = _stored_ratio(metrics, "model", "item_rate_ratio", _rows(metrics, "calibration", "items"))
    if ratio is None:
        return None
    return f"Projected purchases per item are {_ratio_range(ratio)} what customers bought: " + _reading(
        ratio["median"], "projected volumes and revenue of single items"
    )


def pair_sentence(metrics: dict) -> str | None:
    rows = _rows(metrics, "calibration", "pairs")
    ratio = _stored_ratio(metrics, "model", "pair_rate_ratio", rows)
    if ratio is None:
        return None
    return (
        f"Projected joint purchases of the top {len(rows) or ratio['n']} pairs are {_ratio_range(ratio)} what "
        "customers bought: " + _reading(ratio["median"], "incremental margins of bundles built on these pairs")
    )


def _total_ratio(metrics: dict, scorer: str) -> float | None:
    stored = ((metrics.get("calibration") or {}).get(scorer) or {}).get("total_ratio")
    if stored is not None:
        return stored
    rows = _rows(metrics, "calibration", "weeks")
    if rows.empty or scorer not in rows or rows["observed"].sum() <= 0:
        return None
    return float(rows[scorer].sum() / rows["observed"].sum())


def weeks_sentence(metrics: dict) -> str | None:
    model, baseline = _total_ratio(metrics, "model"), _total_ratio(metrics, "personal_frequency")
    if model is None:
        return None
    weeks = len(_rows(metrics, "calibration", "weeks"))
    compared = f" (personal-frequency baseline {format_ratio(baseline)})" if baseline is not None else ""
    return (
        f"Over the {weeks} held-out weeks the model projects {format_ratio(model)} the purchases customers "
        f"made{compared}: " + _reading(model, "total volumes of projections")
    )


def _backtest_figures(metrics: dict) -> tuple[dict, dict] | None:
    """The model's and the no-price-effect baseline's backtest figures (None: no backtest)."""
    block = metrics.get("backtest") or {}
    if not block.get("item_weeks") or "model" not in block:
        return None
    return block["model"], block.get("no_price_effect") or {}


def backtest_sentence(metrics: dict) -> str | None:
    figures = _backtest_figures(metrics)
    if figures is None:
        return None
    model, base = figures
    m_corr, m_wape = model.get("promo_lift_corr"), model.get("promo_lift_wape")
    b_corr, b_wape = base.get("promo_lift_corr"), base.get("promo_lift_wape")
    # the model beats the baseline on a figure: lower WAPE, higher correlation
    better = [low < high for low, high in ((m_wape, b_wape), (b_corr, m_corr)) if low is not None and high is not None]
    clearly = (
        better
        and all(better)
        and (m_corr or 0) >= CLEAR_CORRELATION
        and m_wape is not None
        and b_wape is not None
        and m_wape <= CLEAR_WAPE_GAIN * b_wape
    )
    if clearly:
        meaning = "the projected response to a price change is grounded in what price moves actually did."
    elif better and all(better):
        meaning = (
            "the model reads price moves only somewhat better than a model without prices: take the projected "
            "response to a discount as a rough guide."
        )
    elif better and not any(better):
        meaning = (
            "the model reads price moves no better than a model without prices, so a recommended discount "
            "rests on an untested price response."
        )
    else:
        meaning = "the evidence is mixed: test a recommended discount on a few stores before rolling it out."
    return (
        f"In {metrics['backtest']['item_weeks']:,} held-out item-weeks with a price move, the model's lifts follow "
        f"the observed ones with correlation {format_correlation(m_corr)} and miss {format_share(m_wape)} of the "
        f"purchases (with no price effect: {format_correlation(b_corr)} and {format_share(b_wape)}): {meaning}"
    )


def backtest_table(metrics: dict) -> pd.DataFrame | None:
    """The two backtest figures of the model and the baseline, in words."""
    figures = _backtest_figures(metrics)
    if figures is None:
        return None
    return pd.DataFrame(
        [
            {
                "Projection": name,
                "Follows the observed lifts (correlation, 1 = perfectly)": format_correlation(f.get("promo_lift_corr")),
                "Purchases missed or added (WAPE, 0% = exact)": format_share(f.get("promo_lift_wape")),
            }
            for name, f in zip(("Choice model", "No-price-effect baseline"), figures, strict=True)
        ]
    )


def complement_sentence(metrics: dict) -> str | None:
    ratio = (metrics.get("truth") or {}).get("complement_strength_ratio")
    rows = _rows(metrics, "truth", "complements")
    if ratio is None and not rows.empty:
        ratio = (ratio_summary(rows["learned"].to_numpy(float), rows["true"].to_numpy(float)) or {}).get("median")
    if ratio is None:
        return None
    return (
        f"Learned complement strengths are {format_ratio(ratio)} the true ones (median over {len(rows)} true "
        "pairs): " + _reading(ratio, "the extra purchases that bundles of complements draw")
    )


def capture_sentence(metrics: dict) -> str | None:
    capture = (metrics.get("truth") or {}).get("decision_capture") or {}
    pairs = capture.get("pairs") or []
    if not pairs:
        return None
    mean = capture.get("mean", float(np.mean([p["capture"] for p in pairs])))
    worst = capture.get("min", float(np.min([p["capture"] for p in pairs])))
    losing = capture.get("losing_pairs", sum(p.get("true_gain_at_learned_price", 0) < 0 for p in pairs))
    meaning = (
        "price recommendations come close to the best the true market allows."
        if mean >= GOOD_CAPTURE
        else "price recommendations leave money on the table: check a bundle's price in a scenario first."
    )
    return (
        f"Prices set from the learned model capture {format_share(mean)} of the best achievable gain on average "
        f"(worst bundle {format_share(worst)}; {losing} of {len(pairs)} bundles {'loses' if losing == 1 else 'lose'} "
        f"money): {meaning}"
    )


def truth_sentence(metrics: dict) -> str | None:
    """What the learned price sensitivity's magnitude means (synthetic markets)."""
    ratio = (metrics.get("truth") or {}).get("price_sensitivity_ratio")
    if ratio is None or not np.isfinite(ratio):
        return None
    return (
        f"The learned price sensitivity is {format_ratio(ratio)} the true one (median customer and item): "
        + _reading(ratio, "projected volume changes after a price change")
    )


TRUTH_RATIOS = (  # key, label, note
    (
        "price_sensitivity_ratio",
        "Price sensitivity, learned / true (median)",
        "How strongly customers react to a price change, learned vs the synthetic market's truth.",
    ),
    (
        "complement_strength_ratio",
        "Complement strength, learned / true (median)",
        "How much buying one item of a true complement pair raises the other's purchase, learned vs truth.",
    ),
    (
        "pair_rate_ratio",
        "Joint purchases, projected / true (median)",
        "Projected purchases of both items of a pair vs what the true market implies.",
    ),
)


def truth_tiles(metrics: dict) -> tuple[TruthTile, ...]:
    """The learned / true magnitude ratios a synthetic run has."""
    truth = metrics.get("truth") or {}
    tiles = []
    for key, label, note in TRUTH_RATIOS:
        value = truth.get(key)
        value = value.get("median") if isinstance(value, dict) else value
        if value is not None and np.isfinite(value):
            tiles.append(TruthTile(label, format_ratio(value), verdict(value), note))
    return tuple(tiles)


def summary_table(metrics: dict) -> pd.DataFrame:
    """The held-out checks in plain words: Check, Choice model, Simple baseline, Reading."""
    calibration = metrics.get("calibration") or {}
    model, base = calibration.get("model") or {}, calibration.get("personal_frequency") or {}
    pairs = calibration.get("pairs_compared") or len(calibration.get("pairs") or [])
    weeks = len(calibration.get("weeks") or [])
    rows = []
    for figure, check in (
        ("item_rate_ratio", "Purchases per item, projected / observed (median item)"),
        ("pair_rate_ratio", f"Joint purchases of the top {pairs} pairs, projected / observed (median pair)"),
    ):
        if figure in model and np.isfinite(model[figure]["median"]):
            baseline = format_ratio((base.get(figure) or {}).get("median"))
            rows.append(
                (
                    check,
                    _ratio_range(model[figure]),
                    _with_name(baseline, "personal frequency"),
                    verdict(model[figure]["median"]),
                )
            )
    if "total_ratio" in model:
        rows.append(
            (
                f"All purchases over the {weeks} held-out weeks, projected / observed",
                format_ratio(model["total_ratio"]),
                _with_name(format_ratio(base.get("total_ratio")), "personal frequency"),
                verdict(model["total_ratio"]),
            )
        )
    if "wape_item_week" in model:
        rows.append(
            (
                "Weekly purchases per item, share missed or added (WAPE)",
                format_share(model["wape_item_week"]),
                _with_name(format_share(base.get("wape_item_week")), "personal frequency"),
                _against(model["wape_item_week"], base.get("wape_item_week"), lower_is_better=True),
            )
        )
    figures = _backtest_figures(metrics)
    if figures is not None:
        m, b = figures
        rows.append(
            (
                "Sales lift in price-move weeks, correlation with observed (1 = perfect)",
                format_correlation(m.get("promo_lift_corr")),
                _with_name(format_correlation(b.get("promo_lift_corr")), "no price effect"),
                _against(m.get("promo_lift_corr"), b.get("promo_lift_corr"), lower_is_better=False),
            )
        )
        rows.append(
            (
                "Purchases in price-move weeks, share missed or added (WAPE)",
                format_share(m.get("promo_lift_wape")),
                _with_name(format_share(b.get("promo_lift_wape")), "no price effect"),
                _against(m.get("promo_lift_wape"), b.get("promo_lift_wape"), lower_is_better=True),
            )
        )
    return pd.DataFrame(rows, columns=["Check", "Choice model", "Simple baseline", "Reading"])


def _with_name(value: str, baseline: str) -> str:
    return value if value == "n/a" else f"{value} ({baseline})"


def _against(model: float | None, baseline: float | None, lower_is_better: bool) -> str:
    if model is None or baseline is None:
        return "no comparison"
    if model == baseline:
        return "same as the baseline"
    return "better than the baseline" if (model < baseline) == lower_is_better else "worse than the baseline"
