"""Replayed trips over a prepared run (numpy): the twin of ``engine.replay``'s SQL.

``engine.replay`` explains what a replayed trip is and fills ``model_trips`` in the database;
``replayed_trip_indices`` picks the same trips from a prepared run, for the held-out calibration
(``engine.model.calibration``) and the items' recent level (``engine.model.projection``).
"""

from __future__ import annotations

import numpy as np

from engine.model.prepared import SPLIT_HOLDOUT, PreparedData


def replayed_trip_indices(data: PreparedData, replay_trips: int) -> np.ndarray:
    """(R,) indices of each customer's last ``replay_trips`` trips of the training window.

    The numpy twin of ``REPLAY_TRIPS``: training-window trips (train and validation splits) in
    the order of ``trip_number`` within each customer, sorted by (customer, trip number).
    """
    window = np.flatnonzero(data.trip_split != SPLIT_HOLDOUT)  # (T_w,)
    order = window[np.lexsort((-data.trip_number[window], data.trip_customer[window]))]  # customer, newest first
    customer = data.trip_customer[order]
    first = np.searchsorted(customer, customer, side="left")  # (T_w,) position of the customer's newest trip
    rank = np.arange(len(order)) - first  # 0 = newest
    keep = order[rank < replay_trips]
    return keep[np.lexsort((data.trip_number[keep], data.trip_customer[keep]))]
