"""The two baselines known to be hard to beat in grocery, fitted on the training trips.

- global popularity: p_i = share of training trips whose basket holds item i;
- personal purchase frequency: share of the customer's own training trips holding i, shrunk
  toward p_i with a prior worth ``strength`` trips, so a customer with no history falls back to
  the global figure: p_hi = (n_hi + strength * p_i) / (n_h + strength). ``strength`` is chosen
  on the validation trips (the baseline gets the same tuning budget the model gets).

Both return logits, so every metric treats them exactly like the model's utilities.
"""

from __future__ import annotations

import numpy as np

from engine.model.prepared import SPLIT_TRAIN, SPLIT_VAL, PreparedData

STRENGTHS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def trip_lines(data: PreparedData, trips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line_trip, line_item) of every basket item of ``trips``."""
    lengths = data.basket_offsets[trips + 1] - data.basket_offsets[trips]
    line_trip = np.repeat(trips, lengths)
    starts = np.repeat(data.basket_offsets[trips], lengths)
    within = np.arange(len(line_trip)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return line_trip, data.basket_items[starts + within]


class PopularityBaseline:
    """Global popularity: the same purchase probability for every customer."""

    name = "global_popularity"

    def __init__(self, data: PreparedData) -> None:
        fit_trips = np.flatnonzero(data.trip_split == SPLIT_TRAIN)
        _, items = trip_lines(data, fit_trips)
        self.rate_ = (np.bincount(items, minlength=data.n_items) + 0.5) / (len(fit_trips) + 1.0)  # (I,)
        self.logit_ = _logit(self.rate_)

    def row_logits(self, customer: np.ndarray, item: np.ndarray) -> np.ndarray:
        """(N,) logits of (customer, item) rows."""
        return self.logit_[item]

    def catalog_logits(self, customer: np.ndarray) -> np.ndarray:
        """(B, I) logits of every catalog item for each customer."""
        return np.broadcast_to(self.logit_, (len(customer), len(self.logit_)))


class PersonalFrequencyBaseline:
    """Each customer's own purchase frequency, falling back to global popularity."""

    name = "personal_frequency"

    def __init__(self, data: PreparedData, popularity: PopularityBaseline) -> None:
        self.n_items = data.n_items
        self.global_rate_ = popularity.rate_
        fit_trips = np.flatnonzero(data.trip_split == SPLIT_TRAIN)
        line_trip, line_item = trip_lines(data, fit_trips)
        self.trips_ = np.bincount(data.trip_customer[fit_trips], minlength=data.n_customers).astype(np.float64)  # (H,)
        codes = data.trip_customer[line_trip] * data.n_items + line_item
        self.codes_, self.counts_ = np.unique(codes, return_counts=True)  # sparse n_hi
        self.strength_ = STRENGTHS[0]
        val_trips = np.flatnonzero(data.trip_split == SPLIT_VAL)
        if len(val_trips):
            self.strength_ = min(STRENGTHS, key=lambda s: self._validation_nll(data, val_trips, s))

    def _counts(self, customer: np.ndarray, item: np.ndarray) -> np.ndarray:
        code = customer * self.n_items + item
        position = np.clip(np.searchsorted(self.codes_, code), 0, len(self.codes_) - 1)
        return np.where(self.codes_[position] == code, self.counts_[position], 0)

    def _rate(self, customer: np.ndarray, item: np.ndarray, strength: float) -> np.ndarray:
        prior = self.global_rate_[item]
        return (self._counts(customer, item) + strength * prior) / (self.trips_[customer] + strength)

    def _validation_nll(self, data: PreparedData, trips: np.ndarray, strength: float) -> float:
        # full-catalog binary NLL of the validation trips (a few hundred trips suffice)
        trips = trips[:2000]
        customer = np.repeat(data.trip_customer[trips], self.n_items)
        item = np.tile(np.arange(self.n_items), len(trips))
        line_trip, line_item = trip_lines(data, trips)
        bought = np.zeros((len(trips), self.n_items), bool)
        bought[np.searchsorted(trips, line_trip), line_item] = True
        p = np.clip(self._rate(customer, item, strength), 1e-7, 1 - 1e-7)
        y = bought.ravel()
        return float(-(np.log(p[y]).sum() + np.log1p(-p[~y]).sum()) / len(y))

    def row_logits(self, customer: np.ndarray, item: np.ndarray) -> np.ndarray:
        """(N,) logits of (customer, item) rows."""
        return _logit(self._rate(customer, item, self.strength_))

    def catalog_logits(self, customer: np.ndarray) -> np.ndarray:
        """(B, I) logits of every catalog item for each customer."""
        B = len(customer)
        rows = self.row_logits(np.repeat(customer, self.n_items), np.tile(np.arange(self.n_items), B))
        return rows.reshape(B, self.n_items)
