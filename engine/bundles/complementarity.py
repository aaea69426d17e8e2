"""The choice model's learned complementarity between items, from the exported parameters.

The model (``engine.schema.MODEL_DDL``, DESIGN.md section 4) couples two items of a basket by

    c_ij = <rho_i, alpha_j> + <rho_j, alpha_i> + pair_ij          (pair_ij from model_pairs, else 0)

in utility units: c_ij > 0 makes buying one raise the chance of buying the other (complements),
c_ij < 0 lowers it (substitutes). A bundle's complementarity is the sum of its pairs' couplings,
the term the bundle adds to the joint utility of buying all its items.

The run used is the latest trained run at the requested level (``model_runs.kind = 'trained'``,
latest ``created_at``), else the ``truth`` run a synthetic dataset ships with, else none.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np

from engine import store
from engine.cache import LruCache

log = logging.getLogger(__name__)

MODEL_TABLES_PRESENT = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name IN ('model_runs', 'model_items', 'model_pairs')
"""
LATEST_RUN = """
SELECT run_id, kind, created_at FROM model_runs
WHERE level = $level AND kind IN ('trained', 'truth')
ORDER BY kind = 'trained' DESC, created_at DESC, run_id
LIMIT 1
"""
RUN_ITEMS = "SELECT item_id, alpha, rho FROM model_items WHERE run_id = $run_id ORDER BY item_id"
RUN_PAIRS = "SELECT item_a, item_b, avg(coupling) FROM model_pairs WHERE run_id = $run_id GROUP BY ALL"


@dataclass(frozen=True)
class ModelRun:
    """Which run complementarity comes from."""

    run_id: str
    kind: str  # 'trained' | 'truth'
    created_at: str


@dataclass(frozen=True, eq=False)
class Complementarity:
    """Coupling c_ij between the items of one model run.

    ``alpha`` and ``rho`` are (I, K) in the order of ``item_ids``; ``pairs`` maps an unordered
    pair to its explicit coupling (the mean when both orientations are stored).
    """

    run: ModelRun
    item_ids: tuple[str, ...]
    alpha: np.ndarray  # (I, K)
    rho: np.ndarray  # (I, K)
    pairs: dict[frozenset[str], float]
    _row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        assert self.alpha.shape == self.rho.shape == (len(self.item_ids), self.alpha.shape[1]), "alpha/rho shape"
        object.__setattr__(self, "_row", {item: r for r, item in enumerate(self.item_ids)})

    def knows(self, item: str) -> bool:
        return item in self._row

    def coupling(self, a: str, b: str) -> float | None:
        """c_ab, or None when either item is not in the run."""
        row = self._row
        if a not in row or b not in row:
            return None
        i, j = row[a], row[b]
        vector_part = float(self.rho[i] @ self.alpha[j] + self.rho[j] @ self.alpha[i])
        return vector_part + self.pairs.get(frozenset((a, b)), 0.0)

    def of_bundle(self, items: Sequence[str]) -> float | None:
        """Sum of the couplings of every pair in ``items``; None when an item is not in the run."""
        total = 0.0
        for a, b in itertools.combinations(items, 2):
            c = self.coupling(a, b)
            if c is None:
                return None
            total += c
        return total


_LOADED = LruCache(8)


def latest_run(con: duckdb.DuckDBPyConnection, dataset: str, level: str) -> ModelRun | None:
    """The run complementarity comes from at ``level``, or None when no model has been exported."""
    with store.dataset_cursor(con, dataset) as cur:
        if cur.execute(MODEL_TABLES_PRESENT).fetchall()[0][0] < 3:
            return None
        rows = cur.execute(LATEST_RUN, {"level": level}).fetchall()
    if not rows:
        return None
    run_id, kind, created_at = rows[0]
    return ModelRun(run_id, kind, str(created_at))


def load_complementarity(con: duckdb.DuckDBPyConnection, dataset: str, level: str) -> Complementarity | None:
    """The couplings of the latest usable run (cached per dataset version and run)."""
    run = latest_run(con, dataset, level)
    if run is None:
        return None
    version = store.get_dataset(con, dataset).version
    return _LOADED.get_or_compute((dataset, version, run), lambda: _load(con, dataset, run))


def _load(con: duckdb.DuckDBPyConnection, dataset: str, run: ModelRun) -> Complementarity:
    with store.dataset_cursor(con, dataset) as cur:
        items = cur.execute(RUN_ITEMS, {"run_id": run.run_id}).fetchall()
        pair_rows = cur.execute(RUN_PAIRS, {"run_id": run.run_id}).fetchall()
    dim = len(items[0][1]) if items else 0
    alpha = np.array([row[1] for row in items], dtype=np.float64).reshape(len(items), dim)  # (I, K)
    rho = np.array([row[2] for row in items], dtype=np.float64).reshape(len(items), dim)  # (I, K)
    pairs: dict[frozenset[str], list[float]] = {}
    for a, b, coupling in pair_rows:
        pairs.setdefault(frozenset((a, b)), []).append(float(coupling))
    log.info("loaded complementarity of run %s: %d items, %d explicit pairs", run.run_id, len(items), len(pairs))
    return Complementarity(
        run=run,
        item_ids=tuple(row[0] for row in items),
        alpha=alpha,
        rho=rho,
        pairs={key: float(np.mean(values)) for key, values in pairs.items()},
    )


def clear_cache() -> None:
    _LOADED.clear()
