"""Pricing figures for ``python -m engine bench``: what-if and optimizer speed.

What is measured (wall time, this machine, one process):

- ``whatif_ms_p50_default``: ``project_bundle`` for a 2-item bundle (the market's most
  complementary true pair) on the default synthetic market (``ingest synthetic`` defaults:
  2,000 customers), median over price changes with the per-customer cache warm: one DuckDB
  aggregation plus the bootstrap bands, i.e. what moving the slider costs.
  ``whatif_ms_cold_default``: the first call (cache build included).
- ``whatif_ms_p50_1m`` / ``whatif_s_cold_1m``: the same on 1,000,000 customers resampled from
  that market (``engine.pricing.population``).
- ``optimize_s_1m``: ``optimize_price`` for that bundle on the 1M population, median of 3,
  parameters read from DuckDB every time (the vectorized path keeps no arrays this large),
  strategies and bands included. ``optimize_s_default``: the same on the default market.
- ``whatif_ms_p50_cj``: the warm what-if on a trained Complete Journey run (default model
  settings, one epoch: the fit's quality does not change the cost) for its most co-purchased
  pair, over every customer's replayed trips (``whatif_cj_rows`` of them).
- ``*_cpu_*``: the same medians in process CPU time (all threads). On a shared machine wall time
  grows with other people's load; CPU time barely does, so it tells what an idle 2-core machine
  would show (about the wall time when one core does the work, less when DuckDB uses both).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from engine import store
from engine.pricing import bundle as B
from engine.pricing.optimize import optimize_price
from engine.pricing.population import resample_population
from engine.pricing.whatif import project_bundle

log = logging.getLogger(__name__)

MEASURED = (
    "warm what-if = one price change with the per-customer cache built (DuckDB aggregation + bands); "
    "cold = first call incl. cache build; optimize = full optimize_price incl. reading parameters"
)


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _cpu(action) -> float:
    """Process CPU seconds (every thread) of ``action``: comparable across busy and idle machines."""
    start = time.process_time()
    action()
    return time.process_time() - start


def _whatif(con, dataset: str, items: list[str], parts: float, repeat: int) -> tuple[float, float, float]:
    """(cold s, warm median s, warm median CPU s) over ``repeat`` prices from 60% to 95% of the parts."""
    cold = _timed(lambda: project_bundle(con, dataset, items, round(0.9 * parts, 2)))
    prices = [round(parts * (0.6 + 0.35 * k / max(repeat - 1, 1)), 2) for k in range(repeat)]
    warm = [_timed(lambda p=p: project_bundle(con, dataset, items, p)) for p in prices]
    cpu = [_cpu(lambda p=p: project_bundle(con, dataset, items, p)) for p in prices]
    return cold, statistics.median(warm), statistics.median(cpu)


def bench_pricing(customers: int = 1_000_000, repeat: int = 25) -> dict[str, float | str]:
    """What-if and optimizer speed on the default synthetic market and a 1M-customer population."""
    from engine.sources import synthetic

    with tempfile.TemporaryDirectory() as folder:
        con = store.connect(Path(folder) / "bench.duckdb")
        synthetic.ingest(con, "synthetic")
        items = B.suggested_items(con, "synthetic")
        parts = B.open_bundle(con, "synthetic", items).sum_of_parts
        cold, warm, warm_cpu = _whatif(con, "synthetic", items, parts, repeat)
        optimize_default = statistics.median(_timed(lambda: optimize_price(con, "synthetic", items)) for _ in range(5))
        build = _timed(lambda: resample_population(con, "synthetic", "million", customers))
        cold_1m, warm_1m, warm_cpu_1m = _whatif(con, "million", items, parts, max(repeat // 2, 5))
        optimize_1m = [
            (_timed(lambda: optimize_price(con, "million", items)), _cpu(lambda: optimize_price(con, "million", items)))
            for _ in range(2)
        ]
        con.close()
    return {
        "whatif_ms_p50_default": round(1000 * warm, 1),
        "whatif_cpu_ms_p50_default": round(1000 * warm_cpu, 1),
        "whatif_ms_cold_default": round(1000 * cold, 1),
        "optimize_s_default": round(optimize_default, 3),
        "whatif_ms_p50_1m": round(1000 * warm_1m, 1),
        "whatif_cpu_ms_p50_1m": round(1000 * warm_cpu_1m, 1),
        "whatif_s_cold_1m": round(cold_1m, 3),
        "optimize_s_1m": round(statistics.median(wall for wall, _ in optimize_1m), 3),
        "optimize_cpu_s_1m": round(statistics.median(cpu for _, cpu in optimize_1m), 3),
        "population_1m_build_s": round(build, 2),
        "pricing_measured": MEASURED,
    }


def bench_pricing_completejourney(repeat: int = 25) -> dict[str, float]:
    """The warm what-if on a trained Complete Journey run (see the module docstring)."""
    from engine.bundles import BundleQuery, find_bundles
    from engine.model.config import ModelConfig
    from engine.model.runs import prepare_run, register_run
    from engine.model.train import fit_run
    from engine.sources import completejourney

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.duckdb"
        con = store.connect(db)
        completejourney.ingest(con, "bench_cj")
        run_dir = prepare_run(con, "bench_cj", ModelConfig(max_epochs=1), db)
        fit_run(run_dir, accelerator="cpu")
        register_run(con, "bench_cj", run_dir)
        pair = find_bundles(con, "bench_cj", BundleQuery(rank_by="support", margin_pool=0)).candidates[0].items
        bundle = B.open_bundle(con, "bench_cj", list(pair))
        _, warm, warm_cpu = _whatif(con, "bench_cj", list(pair), bundle.sum_of_parts, repeat)
        with B.model_cursor(con, "bench_cj") as (cur, _):
            rows = cur.execute("SELECT count(*) FROM model_trips").fetchall()[0][0]
        con.close()
    return {
        "whatif_ms_p50_cj": round(1000 * warm, 1),
        "whatif_cpu_ms_p50_cj": round(1000 * warm_cpu, 1),
        "whatif_cj_rows": int(rows),
    }
