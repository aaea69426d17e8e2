"""The habit feature: a customer's own earlier purchases of an item (state dependence).

Guadagni & Little's (1983) brand loyalty, updated on every trip of the customer:

    L(h,i,n) = a * L(h,i,n-1) + (1 - a) * bought(h,i,n),     L = 0 before the first trip
    habit(h,i) on trip n = L(h,i,n-1)                         (only earlier trips: no leakage)

so L is an exponentially weighted purchase frequency in [0, 1] with memory ~ 1/(1-a) trips. The
feature the network sees is on the log scale of the utility, relative to the item's base rate
r_i (share of training trips that buy it):

    habit(h,i) = log(1 + L(h,i) / r_i)        0 without history; ~ log(L / r_i) with it

so that gamma_i ~ 1 reproduces "this customer buys i L/r_i times as often as the average
customer" (a plain gamma_i * L would need a huge gamma for rarely bought items).

Storage is sparse: one *event* per (customer, item, trip) purchase, sorted by the code
``(customer * n_items + item) * stride + trip_number``, holding ``E = L / (1-a)`` right after
that trip. The feature for any (customer, item, trip n) is then one binary search for the last
event of that pair before trip n, and ``(1-a) * a^(n - 1 - n_event) * E_event``; no Python per
example, so it serves sampled negatives as well as the basket items.
"""

from __future__ import annotations

import numpy as np
import torch


def habit_events(
    line_customer: np.ndarray,
    line_item: np.ndarray,
    line_trip_number: np.ndarray,
    n_items: int,
    max_trip_number: int,
    decay: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted purchase events and their loyalty values.

    Parameters
    ----------
    line_customer, line_item, line_trip_number : (L,) int arrays, one row per basket item
        (a pair appears at most once per trip).
    n_items : catalog size; max_trip_number : the largest trip number of any customer.
    decay : ``a`` in the recursion above.

    Returns
    -------
    code : (E,) int64, sorted ascending; trip_number : (E,) int64; value : (E,) float32 (``E``).
    """
    stride = max_trip_number + 2
    key = line_customer.astype(np.int64) * n_items + line_item.astype(np.int64)  # (L,)
    code = key * stride + line_trip_number.astype(np.int64)  # (L,)
    order = np.argsort(code, kind="stable")
    code, key, number = code[order], key[order], line_trip_number.astype(np.int64)[order]
    assert np.all(np.diff(code) > 0), "a customer-item pair appears twice in one trip"
    value = np.ones(len(code), np.float64)
    if len(code) == 0:
        return code, number, value.astype(np.float32)
    # rank of each event within its pair; run the recursion E_r = 1 + a^gap * E_{r-1} one rank
    # at a time, vectorized over all pairs that have an r-th event (loop length = max rank).
    starts = np.r_[True, key[1:] != key[:-1]]
    first_of_pair = np.maximum.accumulate(np.where(starts, np.arange(len(key)), 0))
    rank = np.arange(len(key)) - first_of_pair  # (E,)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
    for r in range(1, rank.max() + 1):
        at = by_rank[bounds[r] : bounds[r + 1]]
        gap = number[at] - number[at - 1]
        value[at] = 1.0 + np.power(decay, gap) * value[at - 1]
    return code, number, value.astype(np.float32)


def habit_lookup(
    code: torch.Tensor,
    event_trip: torch.Tensor,
    event_value: torch.Tensor,
    stride: int,
    base_rate: torch.Tensor,
    decay: float,
    customer: torch.Tensor,
    item: torch.Tensor,
    trip_number: torch.Tensor,
) -> torch.Tensor:
    """habit(h, i) on trip ``trip_number`` for each row; all inputs (N,) except the event store.

    ``base_rate`` is (I,) r_i. Returns (N,) float32 >= 0.
    """
    n_items = len(base_rate)
    query = (customer * n_items + item) * stride + trip_number  # (N,)
    position = torch.searchsorted(code, query) - 1  # (N,) last event strictly before the trip
    safe = position.clamp(min=0)
    same_pair = (position >= 0) & (code[safe] // stride == query // stride)  # (N,)
    gap = (trip_number - 1 - event_trip[safe]).to(torch.float32)  # (N,) trips since that event
    loyalty = (1.0 - decay) * torch.pow(decay, gap) * event_value[safe]  # (N,) L(h,i)
    habit = torch.log1p(loyalty / base_rate[item])  # (N,)
    return torch.where(same_pair, habit, torch.zeros_like(habit))
