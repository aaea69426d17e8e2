"""Bundle candidates: 2 and 3 items (4 through ``describe_bundle``), ranked, with their evidence.

The evidence of each candidate (support, confidences, lift, score, complementarity, shared
customers, incremental margin) is defined in ``engine.bundles.evidence``.

Privacy: a candidate is shown only when at least the studio's ``min_group_size`` customers
bought its items together (better-ranked ones below that are counted in ``suppressed``), and a
segment must hold at least that many customers.

Ranking ``default``: expected incremental margin when the pricing engine gives one, else the
model's complementarity when a run exists, else ``score``. The optimizer prices only the
``margin_pool`` best candidates of that fallback order (about 0.07 s each): they are re-ranked by
margin (equal margins keep the fallback order) and the rest follow unpriced; whatever the
ranking, only the first ``margin_pool`` candidates shown carry a margin.

Why this order: margin is what a merchandiser acts on; complementarity comes before co-purchase
because the model separates "bought together because they go together" from "bought together
because the same people buy both"; score comes last, as lift alone favours rare items.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from engine import store
from engine.bundles import complementarity, copurchase, itemsets, margin
from engine.bundles.complementarity import Complementarity, latest_run, load_complementarity
from engine.bundles.copurchase import BasketItems, Segment
from engine.bundles.evidence import BundleCandidate, build_candidate, enough_customers, evidence_of, item_columns
from engine.cache import LruCache
from engine.errors import DataError

log = logging.getLogger(__name__)

RANKINGS = ("default", "margin", "complementarity", "score", "lift", "support", "confidence")


@dataclass(frozen=True)
class BundleQuery:
    """What to look for. Department, category and search keep candidates with at least one
    matching item (a cross-department bundle still shows under each of its departments)."""

    level: str = "product"
    size: int = 2
    top: int = 20
    min_support: float = 0.001  # share of baskets; 0.001 of the Complete Journey is 141 baskets
    min_baskets: int = 10  # and never fewer baskets than this, however small the dataset
    segment: Segment | None = None
    department: str | None = None
    category: str | None = None
    search: str | None = None
    across_categories: bool = False  # only bundles whose items are all in different categories
    rank_by: str = "default"
    seed_pairs: int = 100  # triples extend this many strongest pairs (cost grows with it)
    margin_pool: int = 20  # candidates priced by the optimizer (~0.07 s each); 0: none

    def __post_init__(self) -> None:
        copurchase.check_level(self.level)
        if self.size not in (2, 3):
            raise DataError(f"candidate size must be 2 or 3 (4 items through the builder); found {self.size}")
        if self.top < 1:
            raise DataError(f"top must be at least 1; found {self.top}")
        if self.margin_pool < 0:
            raise DataError(f"margin pool must be 0 or more candidates; found {self.margin_pool}")
        if self.rank_by not in RANKINGS:
            raise DataError(f"rank by must be one of {', '.join(RANKINGS)}; found {self.rank_by!r}")
        copurchase.min_count(1, self.min_support, self.min_baskets)  # validates both


@dataclass(frozen=True)
class BundleResult:
    """Ranked candidates of one query, with what the ranking used."""

    dataset: str
    query: BundleQuery
    baskets: int  # N: baskets in the universe (the segment's, if any)
    min_count: int  # the basket count both minimum filters amount to
    ranked_by: str  # the ranking actually used (see the module docstring)
    complementarity_run: str | None  # model run the complementarity comes from
    considered: int  # candidates passing every filter, before the top-N cut
    suppressed: int  # better-ranked ones left out: too few customers bought them together
    candidates: tuple[BundleCandidate, ...]
    seconds: float

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "level": self.query.level,
            "size": self.query.size,
            "segment": self.query.segment.label if self.query.segment else None,
            "baskets": self.baskets,
            "min_count": self.min_count,
            "ranked_by": self.ranked_by,
            "complementarity_run": self.complementarity_run,
            "considered": self.considered,
            "suppressed": self.suppressed,
            "seconds": round(self.seconds, 3),
            "bundles": [c.to_json() for c in self.candidates],
        }


def find_bundles(con: duckdb.DuckDBPyConnection, dataset: str, query: BundleQuery = BundleQuery()) -> BundleResult:
    """Rank the bundle candidates of ``dataset`` for ``query``.

    Co-purchase counts are cached per dataset version, level, segment and minimum; a repeated
    query costs the ranking only (milliseconds).
    """
    start = time.perf_counter()
    encoded = copurchase.basket_items(con, dataset, query.level, query.segment)
    threshold = copurchase.min_count(encoded.baskets, query.min_support, query.min_baskets)
    pairs = copurchase.pair_counts(con, encoded, threshold)
    model = load_complementarity(con, dataset, query.level)
    table = _filtered(encoded, pairs.rename(columns={"a": "k1", "b": "k2"}), model, query)
    if query.size == 3:
        seeds = _rank(table, _fallback(query.rank_by, model, table)).head(query.seed_pairs)
        triples = copurchase.triple_counts(con, encoded, list(zip(seeds.k1, seeds.k2, strict=True)), threshold)
        table = _filtered(encoded, triples.rename(columns={"i": "k1", "j": "k2", "l": "k3"}), model, query)
    ranked_by = _fallback(query.rank_by, model, table)
    ranked = _rank(table, ranked_by)
    margins: dict[tuple[str, ...], float | None] = {}
    if _can_price(query) and query.rank_by in ("default", "margin"):
        pool = ranked.head(query.margin_pool)
        margins = {items: _margin(con, dataset, encoded, items) for items in pool["items"]}
        if any(value is not None for value in margins.values()):
            ranked_by = "margin"
            by_margin = _rank(pool.assign(margin=[margins[items] for items in pool["items"]]), "margin")
            ranked = pd.concat([by_margin.drop(columns="margin"), ranked.iloc[len(pool) :]])
    top, customers, suppressed = enough_customers(con, encoded, ranked, query.top)
    if _can_price(query):  # the optimizer prices the first margin_pool candidates shown; the rest show none
        for items in top["items"].head(query.margin_pool):
            if items not in margins:
                margins[items] = _margin(con, dataset, encoded, items)
    candidates = evidence_of(con, encoded, top, customers, pairs, model, margins)
    seconds = time.perf_counter() - start
    log.info("bundles %s %s: %d considered, ranked by %s in %.3f s", dataset, query, len(table), ranked_by, seconds)
    return BundleResult(
        dataset,
        query,
        encoded.baskets,
        threshold,
        ranked_by,
        model.run.run_id if model else None,
        len(table),
        suppressed,
        candidates,
        seconds,
    )


def describe_bundle(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    items: Sequence[str],
    level: str = "product",
    segment: Segment | None = None,
) -> BundleCandidate:
    """The same evidence for any bundle of 2 to 4 items (the builder), computed exactly."""
    items = list(dict.fromkeys(items))
    if not 2 <= len(items) <= 4:
        raise DataError(f"a bundle has 2 to 4 distinct items; found {len(items)}")
    encoded = copurchase.basket_items(con, dataset, level, segment)
    key_of = dict(zip(encoded.items["item"], encoded.items["k"], strict=True))
    unknown = [item for item in items if item not in key_of]
    if unknown:
        raise DataError(f"no {level} with id {unknown[0]!r} in dataset {dataset!r}")
    keys = [int(key_of[item]) for item in items]
    together = itemsets.together_customers(con, encoded, [keys])[0]
    smallest = copurchase.min_group_size(con)
    if together < smallest:
        raise DataError(
            f"{together} customers bought these items together, fewer than the studio's minimum group size of "
            f"{smallest}: the figures are suppressed"
        )
    counts = itemsets.itemset_counts(con, encoded, keys)
    model = load_complementarity(con, dataset, level)
    shared = itemsets.shared_customers(con, encoded, [keys])[0]
    value = _margin(con, dataset, encoded, tuple(items)) if level == "product" else None
    return build_candidate(encoded, item_columns(encoded), keys, counts, model, together, shared, value)


def _filtered(encoded: BasketItems, sets: pd.DataFrame, model: Complementarity | None, query: BundleQuery):
    """The item sets with their ranking metrics, restricted to those passing the query's filters."""
    table = _metrics(encoded, sets, model)
    return table[_matches(encoded, table, query)]


def _metrics(encoded: BasketItems, sets: pd.DataFrame, model: Complementarity | None) -> pd.DataFrame:
    """Add the ranking metrics to item sets given as key columns k1, k2[, k3] and ``together``."""
    columns = [c for c in ("k1", "k2", "k3") if c in sets.columns]
    n_item = encoded.item_baskets().astype(float)  # (I + 1,)
    n = float(encoded.baskets)
    together = sets["together"].to_numpy(dtype=float)  # (C,)
    item_counts = np.stack([n_item[sets[c].to_numpy()] for c in columns], 1)  # (C, s)
    ids = encoded.items["item"].to_numpy()
    out = sets.assign(
        support=together / n,
        lift=together * n ** (len(columns) - 1) / item_counts.prod(axis=1),
        confidence=(together[:, None] / item_counts).max(axis=1),
    )
    out["score"] = out["lift"] * np.log1p(together)
    id_columns = np.stack([ids[sets[c].to_numpy() - 1] for c in columns], 1)  # (C, s)
    out["items"] = [tuple(row) for row in id_columns] if len(sets) else []
    out["complementarity"] = [_nan_if_none(model.of_bundle(items)) if model else np.nan for items in out["items"]]
    return out


def _matches(encoded: BasketItems, table: pd.DataFrame, query: BundleQuery) -> np.ndarray:
    """(C,) True where at least one item passes each of the department, category and search filters
    (and, with ``across_categories``, no two items share a category)."""
    items = encoded.items
    keep = np.ones(len(table), dtype=bool)
    tests = []
    if query.department:
        tests.append(items["department"].to_numpy() == query.department)
    if query.category:
        tests.append(items["category"].to_numpy() == query.category)
    if query.search and query.search.strip():
        needle = query.search.strip().lower()
        tests.append(
            (
                items["name"].str.lower().str.contains(needle, regex=False)
                | items["item"].str.lower().str.contains(needle, regex=False)
            ).to_numpy()
        )
    columns = [c for c in ("k1", "k2", "k3") if c in table.columns]
    for by_item in tests:
        by_key = np.concatenate([[False], by_item])  # (I + 1,)
        keep &= np.any(np.stack([by_key[table[c].to_numpy()] for c in columns], 1), axis=1)
    if query.across_categories and len(table):
        category = encoded.column("category")  # (I + 1,)
        cats = [category[table[c].to_numpy()] for c in columns]  # s x (C,)
        for x, y in ((0, 1), (0, 2), (1, 2))[: 1 if len(columns) == 2 else 3]:
            keep &= cats[x] != cats[y]
    return keep


def _fallback(rank_by: str, model: Complementarity | None, table: pd.DataFrame) -> str:
    """The ranking to use before margins are known."""
    if rank_by in ("default", "margin"):
        has_model = model is not None and bool(np.isfinite(table["complementarity"]).any())
        return "complementarity" if has_model else "score"
    return rank_by


def _rank(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Best first; missing values last; ties broken by score, then by item ids (deterministic).

    By margin, ties keep the order ``table`` comes in (the fallback ranking): when the optimizer
    finds no discount that pays, every margin is 0 and the fallback decides.
    """
    primary = pd.to_numeric(table[by], errors="coerce").astype(float)
    ordered = table.assign(
        _missing=primary.isna(),
        _primary=primary.fillna(0.0),
        _ids=table["items"].map(str),
        _order=np.arange(len(table)),
    )
    if by == "margin":
        ordered = ordered.sort_values(["_missing", "_primary", "_order"], ascending=[True, False, True])
    else:
        ordered = ordered.sort_values(["_missing", "_primary", "score", "_ids"], ascending=[True, False, False, True])
    return ordered.drop(columns=["_missing", "_primary", "_ids", "_order"])


def _can_price(query: BundleQuery) -> bool:
    return query.level == "product"


_MARGINS = LruCache(4096)


def _margin(con, dataset: str, encoded: BasketItems, items: tuple[str, ...]) -> float | None:
    key = (dataset, encoded.version, items)
    return _MARGINS.get_or_compute(key, lambda: margin.incremental_margin(con, dataset, items))


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


def dataset_token(con: duckdb.DuckDBPyConnection, dataset: str) -> str:
    """Changes whenever a query's answer can: the dataset version plus the model run in use."""
    version = store.get_dataset(con, dataset).version
    runs = [latest_run(con, dataset, level) for level in copurchase.LEVELS]
    return version + "|" + "|".join(f"{r.run_id}@{r.created_at}" if r else "-" for r in runs)


def clear_caches() -> None:
    """Forget every cached encoding, count, model run and margin (benchmarks, tests, memory)."""
    copurchase.clear_caches()
    itemsets.clear_cache()
    complementarity.clear_cache()
    _MARGINS.clear()
