"""Uncertainty bands on every projected figure: the one place bands are made.

Two sources, in order of preference:

1. **Model ensemble.** Runs whose config JSON shares an ``"ensemble"`` value (several fits with
   different seeds or bootstrap resamples of customers) are projected one by one; the band is the
   range of a figure across members (quantiles at ``LEVEL`` from ``QUANTILE_MEMBERS`` members on).
   This is parameter uncertainty.
2. **Bootstrap of customers** over the chosen run, while no ensemble exists. Customers are hashed
   into ``BUCKETS`` buckets (``engine.pricing.params``); raw sums per bucket are resampled with
   replacement, which approximates resampling customers at a tiny cost (a replicate is a
   (resamples x buckets) matrix product, not a pass over customers). This is sampling
   uncertainty only, and is labelled as such.

The point value is always the chosen run's figure; bands are widened, if needed, to contain it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LEVEL = 0.90  # two-sided band: 5% and 95% quantiles
BOOTSTRAP_RESAMPLES = 200  # bucket resamples (cheap: no pass over customers)
SEED = 20240107
QUANTILE_MEMBERS = 10  # smaller ensembles: the band is the members' full range


@dataclass(frozen=True)
class BandSource:
    """Where a projection's bands come from, in plain words for the page and the CLI."""

    method: str  # 'ensemble' | 'bootstrap'
    size: int  # ensemble members, or bootstrap resamples
    level: float

    @property
    def label(self) -> str:
        pct = round(self.level * 100)
        if self.method == "ensemble":
            spread = f"{pct}% band" if self.size >= QUANTILE_MEMBERS else "range"
            return f"{spread} across an ensemble of {self.size} model runs"
        return f"{pct}% band from {self.size} bootstrap resamples of customers (one model run; no ensemble yet)"


@lru_cache(maxsize=8)
def bootstrap_counts(buckets: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, buckets) multinomial counts: how often each bucket is drawn in a resample."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(buckets, np.full(buckets, 1.0 / buckets), size=resamples).astype(np.float64)
    counts.flags.writeable = False  # shared by every caller (memoized)
    return counts


def resample_buckets(bucket_sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Bootstrap replicates of group sums.

    Parameters
    ----------
    bucket_sums : (G, B, F) raw sums per group and bucket.
    counts : (R, B) from ``bootstrap_counts``.

    Returns
    -------
    (R, G, F) replicate sums.
    """
    return np.einsum("rb,gbf->rgf", counts, bucket_sums)


def quantile_band(
    point: dict[str, np.ndarray], replicates: dict[str, np.ndarray], level: float = LEVEL
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Low/high of each figure from its replicates (axis 0), widened to contain the point value."""
    tail = (1.0 - level) / 2.0
    names = list(point)
    flat = np.concatenate([replicates[n].reshape(len(replicates[n]), -1) for n in names], axis=1)  # (R, all)
    low_flat, high_flat = np.quantile(flat, [tail, 1.0 - tail], axis=0)
    bands, start = {}, 0
    for name in names:
        value = np.asarray(point[name])
        stop = start + value.size
        low = low_flat[start:stop].reshape(value.shape)
        high = high_flat[start:stop].reshape(value.shape)
        bands[name] = (np.minimum(low, value), np.maximum(high, value))
        start = stop
    return bands


def bands_from_buckets(
    after: np.ndarray,
    before: np.ndarray,
    derive: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = LEVEL,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]], BandSource]:
    """Point figures and bootstrap bands for groups (and their total, appended last).

    Parameters
    ----------
    after, before : (G, B, F) raw sums per group and bucket, with and without the bundle.
    derive : raw sums (..., F) x2 -> figures (engine.pricing.figures.derive with its other args bound).

    Returns
    -------
    point figures (G + 1, ...), bands name -> (low, high), the band source.
    """
    after = np.concatenate([after, after.sum(axis=0, keepdims=True)])  # (G+1, B, F) total last
    before = np.concatenate([before, before.sum(axis=0, keepdims=True)])
    counts = bootstrap_counts(after.shape[1], resamples)
    point = derive(after.sum(axis=1), before.sum(axis=1))
    replicates = derive(resample_buckets(after, counts), resample_buckets(before, counts))
    return point, quantile_band(point, replicates, level), BandSource("bootstrap", resamples, level)


def bands_from_members(
    point: dict[str, np.ndarray], member_figures: list[dict[str, np.ndarray]], level: float = LEVEL
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], BandSource]:
    """Bands across ensemble members' figures (each shaped like ``point``)."""
    replicates = {name: np.stack([m[name] for m in member_figures]) for name in point}
    if len(member_figures) < QUANTILE_MEMBERS:
        level = 1.0  # the full range of the members
    return quantile_band(point, replicates, level), BandSource("ensemble", len(member_figures), level)
