"""The "Can I trust the projections?" section: figures, sentences and tables of engine.model.trust,
from hand-made metrics blocks, and the Model page rendering it for a trained sample run."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import streamlit as st
from model_fixtures import sample_run
from streamlit.testing.v1 import AppTest

from engine.model import trust
from engine.model.runs import latest_run, update_metrics

ITEMS = [
    {"item_id": "1", "name": "Bananas", "observed": 2364.0, "model": 3076.6},
    {"item_id": "2", "name": "Milk", "observed": 40.0, "model": 38.5},
    {"item_id": "3", "name": "Bread", "observed": 125.0, "model": 131.0},
]
PAIRS = [
    {
        "item_a": "1",
        "item_b": "2",
        "name_a": "Bananas",
        "name_b": "Milk",
        "observed": 187.0,
        "model": 304.8,
        "personal_frequency": 287.8,
    },
    {
        "item_a": "2",
        "item_b": "3",
        "name_a": "Milk",
        "name_b": "Bread",
        "observed": 0.0,
        "model": 1.5,
        "personal_frequency": 0.7,
    },  # not bought together in the held-out weeks: off the log axes
    {
        "item_a": "1",
        "item_b": "3",
        "name_a": "Bananas",
        "name_b": "Bread",
        "observed": 20.0,
        "model": 30.0,
        "personal_frequency": 18.0,
    },
]
WEEKS = [
    {"week": 45, "observed": 1000.0, "model": 1100.0, "personal_frequency": 1050.0},
    {"week": 46, "observed": 1200.0, "model": 1300.0, "personal_frequency": 1190.0},
]
BACKTEST_ROWS = [
    {
        "item_id": "1",
        "name": "Bananas",
        "week": 46,
        "discount": 0.30,
        "observed_lift": 1.8,
        "model_lift": 1.6,
        "no_price_effect_lift": 1.05,
    },
    {
        "item_id": "2",
        "name": "Milk",
        "week": 45,
        "discount": -0.15,
        "observed_lift": 0.7,
        "model_lift": 0.8,
        "no_price_effect_lift": 1.0,
    },
]


def ratio(median: float, p25: float, p75: float, n: int = 3) -> dict:
    return {"median": median, "p25": p25, "p75": p75, "n": n}


def metrics(pair_median: float = 1.49) -> dict:
    """A run's metrics with every block the section reads."""
    summary = {
        "total_ratio": 1.0925094,
        "item_rate_ratio": ratio(1.03, 0.84, 1.25),
        "pair_rate_ratio": ratio(pair_median, 1.40, 1.76, 2),
        "wape_item_week": 0.4955691,
    }
    baseline = {
        "total_ratio": 1.0675,
        "item_rate_ratio": ratio(0.98, 0.81, 1.22),
        "pair_rate_ratio": ratio(1.19, 0.94, 1.67, 2),
        "wape_item_week": 0.5435,
    }
    return {
        "calibration": {
            "holdout_trips": 500,
            "items_compared": 3,
            "pairs_compared": 3,
            "model": summary,
            "personal_frequency": baseline,
            "weeks": WEEKS,
            "items": ITEMS,
            "pairs": PAIRS,
        },
        "backtest": {
            "item_weeks": 2,
            "model": {"promo_lift_corr": 0.902, "promo_lift_wape": 0.0725},
            "no_price_effect": {"promo_lift_corr": 0.6725, "promo_lift_wape": 0.2847},
            "rows": BACKTEST_ROWS,
        },
        "truth": {
            "price_sensitivity_spearman": 0.896,
            "price_sensitivity_ratio": 0.971,
            "complement_auc": 1.0,
            "complement_strength_ratio": 1.6,
            "complements": [
                {"item_a": "P1", "item_b": "P2", "true": 1.9, "learned": 2.0},
                {"item_a": "P3", "item_b": "P4", "true": 0.5, "learned": 1.2},
            ],
            "decision_capture": {
                "mean": 0.7,
                "min": 0.4,
                "losing_pairs": 1,
                "pairs": [
                    {
                        "items": ["P1", "P2"],
                        "capture": 1.0,
                        "true_gain_at_learned_price": 5.0,
                        "true_optimal_gain": 5.0,
                    },
                    {
                        "items": ["P3", "P4"],
                        "capture": 0.4,
                        "true_gain_at_learned_price": -1.0,
                        "true_optimal_gain": 3.0,
                    },
                ],
            },
        },
    }


def trace(fig, name: str):
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def test_item_scatter_plots_exactly_the_observed_and_projected_purchases_on_log_axes():
    fig = trust.item_scatter(metrics())
    model = trace(fig, "Choice model")
    assert list(model.x) == [r["observed"] for r in ITEMS]
    assert list(model.y) == [r["model"] for r in ITEMS]
    assert list(model.hovertext) == ["Bananas", "Milk", "Bread"]  # hover names the product
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "purchases" in fig.layout.xaxis.title.text.lower() and "purchases" in fig.layout.yaxis.title.text.lower()


def test_pair_scatter_shows_the_model_and_the_baseline_as_separate_series():
    fig = trust.pair_scatter(metrics())
    model, baseline = trace(fig, "Choice model"), trace(fig, "Personal-frequency baseline")
    assert list(model.x) == list(baseline.x) == [r["observed"] for r in PAIRS]
    assert list(model.y) == [r["model"] for r in PAIRS]
    assert list(baseline.y) == [r["personal_frequency"] for r in PAIRS]
    assert model.hovertext[0] == "Bananas + Milk"


@pytest.mark.parametrize(
    "build, columns",
    [
        (trust.item_scatter, ("observed", "model")),
        (trust.pair_scatter, ("observed", "model", "personal_frequency")),
    ],
)
def test_the_diagonal_is_y_equals_x_over_the_positive_data_range(build, columns):
    block = "items" if build is trust.item_scatter else "pairs"
    values = np.array([row[c] for row in metrics()["calibration"][block] for c in columns])
    diagonal = trace(build(metrics()), trust.DIAGONAL)
    assert list(diagonal.x) == list(diagonal.y)
    assert diagonal.x[0] == values[values > 0].min()  # log axes: the zero is not plotted, the line starts above it
    assert diagonal.x[-1] == values.max()


def test_backtest_scatter_holds_the_lifts_of_the_model_and_of_the_no_price_effect_baseline():
    fig = trust.backtest_scatter(metrics())
    model, baseline = trace(fig, "Choice model"), trace(fig, "No-price-effect baseline")
    assert list(model.x) == list(baseline.x) == [1.8, 0.7]
    assert list(model.y) == [1.6, 0.8] and list(baseline.y) == [1.05, 1.0]
    diagonal = trace(fig, trust.DIAGONAL)
    assert diagonal.x[0] == 0.7 and diagonal.x[-1] == 1.8  # linear axes: the whole range
    table = trust.backtest_table(metrics())
    assert table.iloc[0].tolist() == ["Choice model", "0.90", "7%"]
    assert table.iloc[1].tolist() == ["No-price-effect baseline", "0.67", "28%"]


def test_weekly_totals_draw_observed_model_and_baseline_over_the_week_number():
    fig = trust.weekly_totals(metrics())
    for name, column in (
        ("Observed", "observed"),
        ("Choice model", "model"),
        ("Personal-frequency baseline", "personal_frequency"),
    ):
        line = trace(fig, name)
        assert list(line.x) == [45, 46] and list(line.y) == [w[column] for w in WEEKS]
    assert "week" in fig.layout.xaxis.title.text.lower()


def test_truth_charts_hold_learned_vs_true_and_the_capture_per_bundle():
    fig = trust.complement_scatter(metrics())
    points = trace(fig, "True complement pair")
    assert list(points.x) == [1.9, 0.5] and list(points.y) == [2.0, 1.2]
    bars = trust.decision_capture_bars(metrics())
    assert {t.name: list(zip(t.y, t.x, strict=True)) for t in bars.data} == {  # a bundle that loses money stands out
        trust.GAINS: [("P1 + P2", 1.0)],
        trust.LOSES: [("P3 + P4", 0.4)],
    }
    tiles = {t.label: (t.value, t.verdict) for t in trust.truth_tiles(metrics())}
    assert tiles == {
        "Price sensitivity, learned / true (median)": ("0.97x", "in line"),
        "Complement strength, learned / true (median)": ("1.60x", "overstated"),
    }


@pytest.mark.parametrize(
    "median, word, absent",
    [
        (1.5, "overstated", "in line"),
        (1.02, "in line", "overstated"),
        (0.6, "understated", "in line"),
    ],
)
def test_the_pair_sentence_reads_the_ratio_against_the_in_line_band(median, word, absent):
    sentence = trust.pair_sentence(metrics(pair_median=median))
    assert f"{median:.2f}x" in sentence and "middle half 1.40-1.76x" in sentence
    assert word in sentence and absent not in sentence


def test_sentences_computed_from_the_rows_when_the_stored_figures_are_missing():
    m = metrics()
    for scorer in ("model", "personal_frequency"):
        del m["calibration"][scorer]
    m["calibration"]["items"] = [
        {"item_id": "1", "name": "A", "observed": 100.0, "model": 150.0},
        {"item_id": "2", "name": "B", "observed": 10.0, "model": 15.0},
    ]
    assert "1.50x" in trust.item_sentence(m) and "overstated" in trust.item_sentence(m)
    assert "1.09x" in trust.weeks_sentence(m) and "in line" in trust.weeks_sentence(m)  # 2400 / 2200


@pytest.mark.parametrize(
    "corr, wape, words",
    [
        (0.902, 0.0725, "grounded"),  # far better than ignoring price
        (0.70, 0.27, "only somewhat better"),  # better on both figures, but hardly on the error
        (0.10, 0.50, "no better"),
        (0.90, 0.50, "mixed"),
    ],
)
def test_backtest_sentence_says_whether_the_model_beats_ignoring_price(corr, wape, words):
    m = metrics()
    m["backtest"]["model"] = {"promo_lift_corr": corr, "promo_lift_wape": wape}
    assert words in trust.backtest_sentence(m)


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (1.0, 3100.0, [1, 10, 100, 1000]),
        (3.0, 2400.0, [5, 10, 20, 50, 100, 200, 500, 1000, 2000]),
        (40.0, 3100.0, [50, 100, 200, 500, 1000, 2000]),
        (800.0, 3000.0, [1000, 1500, 2000, 3000]),
    ],
)
def test_log_axes_get_round_ticks_inside_the_data_range(low, high, expected):
    assert trust.log_ticks(low, high) == expected


def test_the_summary_table_is_in_plain_words():
    table = trust.summary_table(metrics())
    assert list(table.columns) == ["Check", "Choice model", "Simple baseline", "Reading"]
    assert len(table) == 6
    text = " ".join(table.astype(str).to_numpy().ravel())
    assert "_" not in text, text  # no raw keys such as total_ratio
    assert not re.search(r"\d\.\d{3,}", text), text  # no raw decimals such as 1.0925094
    assert "1.09x" in text and "50%" in text and "overstated" in text


@pytest.mark.parametrize("drop", [None, "calibration", "backtest", "truth"])
def test_a_missing_block_gives_no_figure_and_no_error(drop):
    m = {} if drop is None else {k: v for k, v in metrics().items() if k != drop}
    figures = {
        "calibration": (trust.item_scatter, trust.pair_scatter, trust.weekly_totals),
        "backtest": (trust.backtest_scatter,),
        "truth": (trust.complement_scatter, trust.decision_capture_bars),
    }
    for block, builders in figures.items():
        for build in builders:
            assert (build(m) is None) == (drop is None or drop == block), (block, build.__name__)
    report = trust.trust_report(m)
    assert report.empty == (drop is None)
    assert len(report.held_out) == {None: 0, "calibration": 1, "backtest": 3, "truth": 4}[drop]


def test_older_or_empty_blocks_give_nothing():
    m = {"calibration": {}, "backtest": {"item_weeks": 0}, "truth": {"price_sensitivity_spearman": 0.9}}
    report = trust.trust_report(m)
    assert report.empty and report.summary.empty
    assert trust.backtest_sentence(m) is None and trust.capture_sentence(m) is None


# ---- the Model page


@pytest.fixture
def trained_sample_app(monkeypatch):
    """The shared tiny trained sample run as the app's database; fresh st caches."""
    shared = sample_run()
    monkeypatch.setenv("STUDIO_DB", str(shared.db_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield shared
    st.cache_data.clear()
    st.cache_resource.clear()


def model_page() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    return at.switch_page("pages/model.py").run()


def test_model_page_shows_the_trust_section_for_a_trained_run(trained_sample_app):
    at = model_page()
    assert not at.exception, [e.value for e in at.exception]
    assert "Can I trust the projections?" in [h.value for h in at.header]
    assert "Purchases per item, projected / observed (median item)" in at.table[0].value["Check"].tolist()
    assert any("what customers bought" in m.value for m in at.markdown)
    assert any(m.label == "Price sensitivity, learned / true (median)" for m in at.metric)  # the sample is synthetic


def test_model_page_renders_every_block_of_a_complete_evaluation(trained_sample_app):
    con = trained_sample_app.con
    run = latest_run(con, "sample")
    original = copy.deepcopy(run.metrics)
    update_metrics(con, "sample", run.run_id, {**run.metrics, **metrics()})
    try:
        at = model_page()
        assert not at.exception, [e.value for e in at.exception]
        sentences = " ".join(m.value for m in at.markdown)
        assert "overstated" in sentences and "grounded" in sentences and "capture 70%" in sentences
        assert len(at.get("plotly_chart")) >= 6 + 3  # six trust charts besides the page's own three
    finally:
        update_metrics(con, "sample", run.run_id, original)
