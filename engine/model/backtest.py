"""Held-out promotion backtest: does the model predict how much an item sells in a price-move week?

Held-out weeks are the weeks after ``data.last_train_week``. An item-week (i, w) of the held-out
weeks is a *price move* when |price_wi / regular_i - 1| >= ``MIN_CHANGE``; the item's *regular
weeks* are its held-out weeks with |price_wi / regular_i - 1| < ``MIN_CHANGE``. A price move is
kept when its item has at least ``MIN_REGULAR_PURCHASES`` purchases over its regular weeks
(stable denominators) and week w has at least one held-out trip. With n_w held-out trips in
week w, T_w those trips and R_i the item's regular weeks:

    observed rate_i(w)   = #{t in T_w : i in B_t} / n_w
    observed regular_i   = sum_{v in R_i} #{t in T_v : i in B_t} / sum_{v in R_i} n_v
    model rate_i(w)      = mean_{t in T_w} sigmoid(u(h_t, i, w))
    model regular_i      = sum_{v in R_i} sum_{t in T_v} sigmoid(u(h_t, i, v)) / sum_{v in R_i} n_v
    lift_i(w)            = rate_i(w) / regular_i                  (observed and model alike)

where u is the network's utility with week w's price, promotion flags and season, habits frozen
at the end of the training window (as in ``engine.model.evaluate``) and no basket context. The
``no_price_effect`` baseline is the same network with every price held at the item's regular
price (promotion flags and season kept), so the gap between the two isolates the price term.

Figures, for ``model`` and ``no_price_effect``, over the kept item-weeks:

- ``promo_lift_corr``: Pearson correlation of predicted and observed lift (None when undefined);
- ``promo_lift_wape``: sum |predicted - observed units| / sum observed units, where the units of
  (i, w) are lift x observed regular_i x n_w (so the observed units are the observed purchases).

Caveat: the weekly price is the median price *paid* (``engine.model.features``); a week without
a sale takes the regular price, so a price move is only seen in weeks where the item sold.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.model.batches import TripTensors
from engine.model.calibration import basket_matrix, wape
from engine.model.config import ModelConfig
from engine.model.network import ChoiceNetwork
from engine.model.prepared import SPLIT_HOLDOUT, PreparedData

MIN_CHANGE = 0.10  # a price move: at least 10% off (or above) the regular price
MIN_REGULAR_PURCHASES = 5  # held-out purchases at regular price an item needs to be kept
MAX_ROWS = 400  # item-weeks listed in ``rows``
CHUNK_TRIPS = 512  # held-out trips per block: (CHUNK_TRIPS x I) utilities
SCORERS = ("model", "no_price_effect")


@torch.no_grad()
def backtest(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> dict:
    """The ``backtest`` block of ``evaluate`` (see the module docstring), JSON-ready.

    Returns ``{"item_weeks": 0}`` when there is no held-out trip or no kept price move.
    """
    network = network.eval().cpu()
    holdout = data.trips_in(SPLIT_HOLDOUT)  # (T_h,)
    if len(holdout) == 0:
        return {"item_weeks": 0}
    weeks = np.flatnonzero(data.weeks > data.last_train_week)  # (W_h,) week indices
    assert np.isin(data.trip_week[holdout], weeks).all(), "held-out trips must fall in the held-out weeks"
    observed, predicted, trips = _week_item_sums(network, data, config, holdout, weeks)  # (W_h, I) x3, (W_h,)

    change = data.price[weeks] / data.regular_price[None, :] - 1.0  # (W_h, I)
    regular = np.abs(change) < MIN_CHANGE  # (W_h, I) the item's regular weeks
    regular_trips = trips @ regular  # (I,)
    regular_purchases = (observed * regular).sum(axis=0)  # (I,)
    kept = ~regular & (regular_purchases >= MIN_REGULAR_PURCHASES)[None, :] & (trips > 0)[:, None]  # (W_h, I)
    if not kept.any():
        return {"item_weeks": 0}
    week_k, item_k = np.nonzero(kept)  # (N,) each

    observed_regular = regular_purchases / np.maximum(regular_trips, 1.0)  # (I,) > 0 where kept
    observed_lift = observed[week_k, item_k] / trips[week_k] / observed_regular[item_k]  # (N,)
    observed_units = observed[week_k, item_k]  # (N,) = lift x regular rate x n_w
    lifts = {"observed": observed_lift}
    out: dict = {"item_weeks": int(len(week_k)), "items": int(len(np.unique(item_k))), "min_change": MIN_CHANGE}
    for name in SCORERS:
        model_regular = (predicted[name] * regular).sum(axis=0) / np.maximum(regular_trips, 1.0)  # (I,)
        lift = predicted[name][week_k, item_k] / trips[week_k] / model_regular[item_k]  # (N,)
        units = lift * observed_regular[item_k] * trips[week_k]  # (N,)
        lifts[name] = lift
        out[name] = {"promo_lift_corr": _pearson(lift, observed_lift), "promo_lift_wape": wape(units, observed_units)}
    out["rows"] = _rows(data, weeks, trips, observed, week_k, item_k, change, lifts)
    return out


def _week_item_sums(
    network: ChoiceNetwork, data: PreparedData, config: ModelConfig, holdout: np.ndarray, weeks: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Per held-out (week, item): purchases (W_h, I), summed P(buy) of each scorer (W_h, I), and
    held-out trips per week (W_h,). Each chunk of trips adds its rows into their weeks with one
    (W_h, B) one-hot matmul per sum."""
    tensors = TripTensors(data, config.habit_decay)
    W, I = len(weeks), data.n_items
    local = torch.from_numpy(np.searchsorted(weeks, np.arange(len(data.weeks))))  # (W,) week index -> row
    regular_price = torch.from_numpy(data.regular_price)  # (I,)
    observed = torch.zeros(W, I, dtype=torch.float64)
    predicted = {name: torch.zeros(W, I, dtype=torch.float64) for name in SCORERS}
    # trips grouped by customer: a chunk then holds few customers, whose frozen habits are looked up once
    by_customer = holdout[np.argsort(data.trip_customer[holdout], kind="stable")]  # (T_h,)
    for start in range(0, len(by_customer), CHUNK_TRIPS):
        chunk = np.sort(by_customer[start : start + CHUNK_TRIPS])  # (B,) sorted for basket_matrix
        trips = torch.from_numpy(chunk)  # (B,)
        week = tensors.trip_week[trips]  # (B,)
        row = local[week]  # (B,) row among the held-out weeks
        customer = tensors.trip_customer[trips]  # (B,)
        habit = tensors.catalog_habits(customer, tensors.trip_habit_number[trips])  # (B, I) frozen per customer
        price = tensors.price[week]  # (B, I)
        utility = network.catalog_utility(
            customer, tensors.season[week], habit, price, tensors.promo[week]
        )  # (B, I) no basket context
        _, beta_customer = network.customer_parameters(customer)  # (B,)
        b = network.price_sensitivity(beta_customer[:, None], torch.arange(I))  # (B, I) > 0
        at_regular = utility + b * (price - regular_price)  # (B, I) the same utility, price at regular
        in_week = F.one_hot(row, W).T.float()  # (W_h, B)
        predicted["model"] += (in_week @ torch.sigmoid(utility)).double()
        predicted["no_price_effect"] += (in_week @ torch.sigmoid(at_regular)).double()
        observed += (in_week @ torch.from_numpy(basket_matrix(data, chunk)).float()).double()
    trips_per_week = np.bincount(local[torch.from_numpy(data.trip_week[holdout])].numpy(), minlength=W)  # (W_h,)
    return observed.numpy(), {k: v.numpy() for k, v in predicted.items()}, trips_per_week.astype(np.float64)


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of x and y (N,), or None when undefined (N < 2 or a constant input)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    return r if np.isfinite(r) else None


def _rows(data, weeks, trips, observed, week_k, item_k, change, lifts) -> list[dict]:
    """At most ``MAX_ROWS`` kept item-weeks: most held-out trips in the week first, then most
    observed purchases, then week and item order."""
    order = np.lexsort((item_k, week_k, -observed[week_k, item_k], -trips[week_k]))[:MAX_ROWS]
    ids, names = data.items["item_id"].to_numpy(), data.items["name"].to_numpy()
    return [
        {
            "item_id": str(ids[item_k[k]]),
            "name": str(names[item_k[k]]),
            "week": int(data.weeks[weeks[week_k[k]]]),
            "discount": float(-change[week_k[k], item_k[k]]),
            "observed_lift": float(lifts["observed"][k]),
            "model_lift": float(lifts["model"][k]),
            "no_price_effect_lift": float(lifts["no_price_effect"][k]),
        }
        for k in order
    ]
