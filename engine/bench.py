"""Performance figures for ``python -m engine bench``.

Each figure is a median over repeated runs, measured on this machine in one process, so
ratios between figures (for example ingest vs raw Parquet load) compare like with like.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


BENCHES: list[Callable[[], dict[str, float]]] = [bench_ingest, bench_training]


def run_all() -> dict[str, float]:
    """Every benchmark figure, in one run."""
    figures: dict[str, float] = {}
    for bench in BENCHES:
        figures.update(bench())
    return figures
