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


def bench_pricing() -> dict[str, float | str]:
    """What-if and optimizer speed (default market and 1M customers): see engine.pricing.benchmark."""
    from engine.pricing.benchmark import bench_pricing as run

    return run()


BENCHES: list[Callable[[], dict[str, float]]] = [bench_ingest, bench_pricing]


def run_all() -> dict[str, float]:
    """Every benchmark figure, in one run."""
    figures: dict[str, float] = {}
    for bench in BENCHES:
        figures.update(bench())
    return figures
