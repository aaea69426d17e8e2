"""The evidence that puts a bundle on the list, and how it is computed from basket counts.

For a candidate S with n(S) baskets holding all its items out of N (see ``copurchase``):

- ``support`` = n(S) / N, ``together_baskets`` = n(S);
- ``confidences[k]`` = confidence(item_k -> the rest of S) = n(S) / n(item_k). For a pair these
  are the two directions: ``confidence_ab`` = confidence(a -> b), ``confidence_ba`` =
  confidence(b -> a); for a triple ``confidence_ab``/``confidence_ba`` are those of its first
  and second item;
- ``completion_confidences[k]`` = confidence(the rest of S -> item_k) = n(S) / n(S minus item_k),
  how often shoppers who already have the others add item k;
- ``lift`` = support(S) / prod_k support(item_k), the ratio to independent purchases (for a
  pair exactly confidence(a -> b) / support(b));
- ``score`` = lift x ln(1 + n(S)): lift weighted by how many baskets show it, so a lift of 30 in
  12 baskets does not outrank a lift of 5 in 3,000;
- ``complementarity``: the model's coupling summed over the pairs of S (``complementarity``);
- ``together_customers``: customers who bought all of S in one basket (at least the studio's
  minimum group size, or the candidate is not shown);
- ``shared_customers``: customers who bought every item of S, in any baskets;
- ``expected_incremental_margin``: from the pricing optimizer (``margin``), None without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from engine.bundles import copurchase, itemsets
from engine.bundles.complementarity import Complementarity
from engine.bundles.copurchase import BasketItems


@dataclass(frozen=True)
class BundleCandidate:
    """One candidate bundle and the evidence for it (definitions in the module docstring)."""

    items: tuple[str, ...]
    names: tuple[str, ...]
    departments: tuple[str, ...]
    support: float
    together_baskets: int
    item_support: tuple[float, ...]
    confidence_ab: float
    confidence_ba: float
    confidences: tuple[float, ...]
    completion_confidences: tuple[float, ...]
    lift: float
    score: float
    complementarity: float | None
    together_customers: int
    shared_customers: int
    expected_incremental_margin: float | None

    def to_json(self) -> dict:
        return {
            "items": list(self.items),
            "names": list(self.names),
            "support": finite(self.support),
            "together_baskets": self.together_baskets,
            "confidence": [finite(c) for c in self.confidences],
            "confidence_ab": finite(self.confidence_ab),
            "confidence_ba": finite(self.confidence_ba),
            "completion_confidence": [finite(c) for c in self.completion_confidences],
            "lift": finite(self.lift),
            "score": finite(self.score),
            "complementarity": finite(self.complementarity),
            "together_customers": self.together_customers,
            "shared_customers": self.shared_customers,
            "expected_incremental_margin": finite(self.expected_incremental_margin),
        }


def subset_counts(n_item: np.ndarray, keys: list[int], together: int, pairs: dict) -> dict[frozenset[int], int]:
    """n(T) for the subsets of a candidate that its evidence needs (single items, sub-pairs, itself)."""
    counts = {frozenset([k]): int(n_item[k]) for k in keys}
    if len(keys) == 3:
        for pair in ((keys[0], keys[1]), (keys[0], keys[2]), (keys[1], keys[2])):
            counts[frozenset(pair)] = pairs[frozenset(pair)]
    counts[frozenset(keys)] = together
    return counts


def item_columns(encoded: BasketItems) -> dict[str, np.ndarray]:
    """(I + 1,) item id, name and department by key."""
    return {name: encoded.column(name) for name in ("item", "name", "department")}


def build_candidate(
    encoded: BasketItems,
    meta: dict[str, np.ndarray],
    keys: list[int],
    counts: dict[frozenset[int], int],
    model: Complementarity | None,
    together_customers: int,
    shared: int,
    expected_margin: float | None,
) -> BundleCandidate:
    items = tuple(str(meta["item"][k]) for k in keys)
    n = encoded.baskets
    together = counts[frozenset(keys)]
    singles = [counts[frozenset([k])] for k in keys]
    rest = [counts[frozenset(keys) - {k}] for k in keys]
    confidences = tuple(ratio(together, s) for s in singles)
    lift = ratio(together * float(n) ** (len(keys) - 1), float(np.prod(np.array(singles, dtype=float))))
    return BundleCandidate(
        items=items,
        names=tuple(str(meta["name"][k]) for k in keys),
        departments=tuple(str(meta["department"][k]) for k in keys),
        support=ratio(together, n),
        together_baskets=together,
        item_support=tuple(ratio(s, n) for s in singles),
        confidence_ab=confidences[0],
        confidence_ba=confidences[1],
        confidences=confidences,
        completion_confidences=tuple(ratio(together, r) for r in rest),
        lift=lift,
        score=lift * math.log1p(together),
        complementarity=model.of_bundle(items) if model else None,
        together_customers=int(together_customers),
        shared_customers=int(shared),
        expected_incremental_margin=expected_margin,
    )


def ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def key_lists(rows: pd.DataFrame) -> list[list[int]]:
    return [[int(getattr(row, c)) for c in ("k1", "k2", "k3") if hasattr(row, c)] for row in rows.itertuples()]


def enough_customers(
    con: duckdb.DuckDBPyConnection, encoded: BasketItems, ranked: pd.DataFrame, top: int
) -> tuple[pd.DataFrame, list[int], int]:
    """The first ``top`` rows bought together by at least the studio's minimum group size of
    customers, their customer counts, and how many better-ranked rows were suppressed."""
    smallest = copurchase.min_group_size(con)
    chunk = max(3 * top, 50)
    kept: list[int] = []
    customers: list[int] = []
    start = 0
    while len(kept) < top and start < len(ranked):
        rows = ranked.iloc[start : start + chunk]
        for position, n in enumerate(itemsets.together_customers(con, encoded, key_lists(rows)), start=start):
            if n >= smallest and len(kept) < top:
                kept.append(position)
                customers.append(n)
        start += chunk
    examined = kept[-1] + 1 if len(kept) == top else len(ranked)
    return ranked.iloc[kept], customers, examined - len(kept)


def evidence_of(
    con: duckdb.DuckDBPyConnection,
    encoded: BasketItems,
    top: pd.DataFrame,
    together_customers: list[int],
    pairs: pd.DataFrame,
    model: Complementarity | None,
    margins: dict[tuple[str, ...], float | None],
) -> tuple[BundleCandidate, ...]:
    """The full evidence of the few candidates shown."""
    keys = key_lists(top)
    shared = itemsets.shared_customers(con, encoded, keys)
    pair_lookup = {frozenset((a, b)): int(t) for a, b, t in zip(pairs["a"], pairs["b"], pairs["together"], strict=True)}
    n_item, meta = encoded.item_baskets(), item_columns(encoded)
    rows = zip(keys, top["together"], top["items"], together_customers, shared, strict=True)
    return tuple(
        build_candidate(
            encoded,
            meta,
            k,
            subset_counts(n_item, k, int(together), pair_lookup),
            model,
            buyers,
            customers,
            margins.get(items),
        )
        for k, together, items, buyers, customers in rows
    )
