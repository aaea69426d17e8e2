"""Performance figures for ``python -m engine bench``.

Each figure is a median over repeated runs, measured on this machine in one process, so
ratios between figures (for example ingest vs raw Parquet load) compare like with like.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import duckdb

from engine import store


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``action`` over ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_ingest(repeat: int = 3) -> dict[str, float]:
    """Full Complete Journey ingest vs DuckDB reading the same Parquet files with no cleaning."""
    from engine.sources import completejourney

    with tempfile.TemporaryDirectory() as folder:
        con = store.connect(Path(folder) / "bench.duckdb")
        raw = median_seconds(lambda: completejourney.raw_parquet_load(con), repeat)
        ingest = median_seconds(lambda: completejourney.ingest(con, "bench_cj"), repeat)
        con.close()
    return {
        "ingest_completejourney_s": round(ingest, 3),
        "raw_parquet_load_s": round(raw, 3),
        "ingest_vs_raw_ratio": round(ingest / raw, 2),
    }


def bench_kpi(repeat: int = 7) -> dict[str, float]:
    """Warm median of every KPI overview query on the full Complete Journey, in milliseconds.

    ``kpi_ms_p50_max`` is the slowest query's median (the issue's budget: 300 ms);
    ``kpi_facts_build_s`` is the one-off preparation after each ingest.
    """
    from datetime import date

    from engine import kpi
    from engine.sources import completejourney

    unfiltered = kpi.KpiFilter()
    filtered = kpi.KpiFilter(date(2017, 7, 1), date(2017, 12, 31), ("GROCERY", "PRODUCE"), ("age_band", "45-54"))
    queries: dict[str, Callable[[duckdb.DuckDBPyConnection], object]] = {
        "headline": lambda con: kpi.headline(con, "bench_cj", unfiltered),
        "headline_filtered": lambda con: kpi.headline(con, "bench_cj", filtered),
        "by_week": lambda con: kpi.breakdown(con, "bench_cj", unfiltered, "week"),
        "by_department": lambda con: kpi.breakdown(con, "bench_cj", unfiltered, "department"),
        "by_segment": lambda con: kpi.breakdown(con, "bench_cj", unfiltered, "segment", "income_band"),
        "by_week_filtered": lambda con: kpi.breakdown(con, "bench_cj", filtered, "week"),
    }
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        con = store.connect(Path(folder) / "bench.duckdb")
        completejourney.ingest(con, "bench_cj")
        start = time.perf_counter()
        kpi.ensure_facts(con, "bench_cj")
        figures["kpi_facts_build_s"] = round(time.perf_counter() - start, 3)
        for name, query in queries.items():
            query(con)  # warm-up
            figures[f"kpi_{name}_ms_p50"] = round(1000 * median_seconds(partial(query, con), repeat), 1)
        con.close()
    figures["kpi_ms_p50_max"] = max(v for k, v in figures.items() if k.endswith("_ms_p50"))
    return figures


def bench_pricing() -> dict[str, float | str]:
    """What-if and optimizer speed (default market, 1M customers, a trained Complete Journey run):
    see engine.bench.pricing."""
    from engine.bench.pricing import bench_pricing as run
    from engine.bench.pricing import bench_pricing_completejourney

    return run() | bench_pricing_completejourney()


def bench_bundles(repeat: int = 3) -> dict[str, float]:
    """Bundle candidates on the full Complete Journey: cold (encode and count) and warm (cached)."""
    from engine.bundles import BundleQuery, clear_caches, find_bundles
    from engine.sources import completejourney

    def cold(query: BundleQuery) -> None:
        clear_caches()
        find_bundles(con, "bench_cj", query)

    with tempfile.TemporaryDirectory() as folder:
        con = store.connect(Path(folder) / "bench.duckdb")
        completejourney.ingest(con, "bench_cj")
        figures = {
            "bundles_s_default": median_seconds(lambda: cold(BundleQuery()), repeat),
            "bundles_s_category_triples": median_seconds(lambda: cold(BundleQuery(level="category", size=3)), repeat),
            "bundles_s_warm": median_seconds(lambda: find_bundles(con, "bench_cj", BundleQuery(search="milk")), repeat),
        }
        con.close()
    return {name: round(value, 3) for name, value in figures.items()}


def bench_training() -> dict[str, float]:
    """Choice-model training throughput on the Complete Journey at the default model size:
    the Lightning loop vs a plain PyTorch loop over the same model and tensors."""
    from engine.model.config import ModelConfig
    from engine.model.features import build_features
    from engine.model.speed import training_throughput
    from engine.sources import completejourney

    with tempfile.TemporaryDirectory() as folder:
        con = store.connect(Path(folder) / "bench.duckdb")
        completejourney.ingest(con, "bench_cj")
        with store.dataset_cursor(con, "bench_cj") as cur:
            data = build_features(cur, ModelConfig())
        con.close()
    return training_throughput(data, ModelConfig())


BENCHES: list[Callable[[], Mapping[str, float | str]]] = [
    bench_ingest,
    bench_kpi,
    bench_training,
    bench_bundles,
    bench_pricing,
]


def run_all() -> dict[str, float | str]:
    """Every benchmark figure, in one run."""
    figures: dict[str, float | str] = {}
    for bench in BENCHES:
        figures.update(bench())
    return figures
