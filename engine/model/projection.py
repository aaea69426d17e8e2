"""The projection's utility on replayed trips, in torch: the model-side twin of ``engine.pricing.params``.

Pricing evaluates, for customer h on each replayed trip t (``engine.replay``), the exported
utility of item i with the rest of the trip's basket as context::

    u(h,i,t) = lambda_i + <sigma_i, mean season> + <eta, mean promo_i> + delta_i
             + <theta_h, alpha_i> + gamma_i * habit_end(h,i) - b(h,i) * regular_price_i
             + sum_{j in B_t \\ i} c_ij

``delta_i`` is the item's *recent level*: a one-year season curve cannot tell where an item's
level stands at the end of the window (staples drift; the annual average is not the recent
level), so each item gets the offset that makes the projection reproduce the purchases of the
replayed trips themselves, under a Gaussian prior N(0, ``recent_level_prior``^2) so that rarely
bought items keep their model level. It is folded into the exported lambda
(``engine.model.export``) and used by the held-out calibration (``engine.model.calibration``).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.model.baselines import trip_lines
from engine.model.batches import TripTensors
from engine.model.config import ModelConfig
from engine.model.network import ChoiceNetwork
from engine.model.prepared import PreparedData
from engine.model.replay import replayed_trip_indices

CHUNK = 1024  # replayed trips per block: (CHUNK x I) utilities
NEWTON_STEPS = 8


@torch.no_grad()
def trip_utilities(
    network: ChoiceNetwork, data: PreparedData, config: ModelConfig, customer: np.ndarray, trip: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """u (R, I) float32 without the recent level, and the baskets (R, I) bool, of rows
    (customer, trip) (R,) each; ``trip`` is a trip index, or -1 for an empty basket.

    Each item's utility leaves the item itself out of its basket context.
    """
    network = network.eval().cpu()
    tensors = TripTensors(data, config.habit_decay)
    I = data.n_items
    season = torch.from_numpy(data.season.mean(axis=0))  # (S,)
    promo = torch.from_numpy(data.promo.mean(axis=0))  # (I, P)
    price = torch.from_numpy(data.regular_price)  # (I,)
    end_number = torch.from_numpy(data.end_habit_number())  # (H,)
    own = 2.0 * (network.alpha * network.rho).sum(-1)  # (I,) c_ii
    basket = basket_rows(data, trip)  # (R, I)
    u = torch.empty(len(customer), I)
    for start in range(0, len(customer), CHUNK):
        rows = slice(start, min(start + CHUNK, len(customer)))
        cust = torch.from_numpy(customer[rows])  # (B,)
        B = len(cust)
        sums = basket[rows].float() @ torch.cat([network.alpha, network.rho], dim=1)  # (B, 2K)
        habit = tensors.catalog_habits(cust, end_number[cust])  # (B, I) at the end of the window
        u[rows] = (
            network.catalog_utility(
                cust, season.expand(B, -1), habit, price.expand(B, -1), promo.expand(B, -1, -1), sums
            )
            - basket[rows].float() * own
        )  # (B, I)
    return u, basket


def basket_rows(data: PreparedData, trip: np.ndarray) -> torch.Tensor:
    """(B, I) bool baskets of ``trip`` (B,) distinct trip indices, -1 for an empty basket."""
    basket = torch.zeros(len(trip), data.n_items, dtype=torch.bool)
    real = np.flatnonzero(trip >= 0)
    order = real[np.argsort(trip[real])]  # rows by trip index
    assert len(np.unique(trip[order])) == len(order), "each trip is replayed once"
    line_trip, line_item = trip_lines(data, trip[order])  # (L,), (L,)
    row = order[np.searchsorted(trip[order], line_trip)]  # (L,) the row of each line
    basket[torch.from_numpy(row), torch.from_numpy(line_item)] = True
    return basket


def recent_level(utilities: torch.Tensor, basket: torch.Tensor, prior: float) -> np.ndarray:
    """delta (I,): the MAP offset that makes the predicted purchases of each item over the replayed
    trips (``utilities``, ``basket``: (R, I) from ``trip_utilities``) match the observed ones, under
    the prior N(0, prior^2). Newton steps on a concave objective."""
    observed = basket.sum(dim=0).double()  # (I,)
    precision = 1.0 / prior**2
    delta = torch.zeros(basket.shape[1], dtype=torch.float64)
    for _ in range(NEWTON_STEPS):  # maximize sum_t log-lik(u + delta) - delta^2 / (2 prior^2)
        p = torch.sigmoid(utilities + delta.float())  # (R, I)
        gradient = observed - p.sum(dim=0).double() - precision * delta
        curvature = (p * (1.0 - p)).sum(dim=0).double() + precision
        delta += gradient / curvature
    return delta.numpy()


def replayed_recent_level(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> np.ndarray:
    """The recent level (I,) of ``network`` over the run's replayed trips (what export folds in)."""
    replayed = replayed_trip_indices(data, config.replay_trips)
    utilities, basket = trip_utilities(network, data, config, data.trip_customer[replayed], replayed)
    return recent_level(utilities, basket, config.recent_level_prior)


PAIR_PRIOR = 0.5  # prior sd of a within-bundle coupling's offset (utility units), as recent_level_prior


def anchor_couplings(utilities: np.ndarray, coupling: np.ndarray, observed: np.ndarray, prior: float) -> np.ndarray:
    """The bundle's couplings re-anchored to the joint purchases of the replayed trips.

    The recent level fixes each item's purchases on the replayed trips; the couplings of the
    bundle's pairs can still over- or under-state how often the items are bought *together*
    there (measured on The Complete Journey: 1.135x on the replayed trips themselves). Each pair
    (k, l) of the bundle gets the MAP offset e_kl, under the prior N(0, prior^2), that makes the
    subset model reproduce the replayed trips' joint purchases::

        sum_t P_t(k and l | c + e) = observed_kl        (P_t: the 2^n subset model of trip t)

    Parameters
    ----------
    utilities : (R, n) item utilities of the replayed trips (their basket, the bundle left out, as context).
    coupling : (n, n) symmetric couplings, zero diagonal.
    observed : (n, n) replayed trips holding both items (upper triangle read).

    Returns
    -------
    (n, n) the anchored symmetric couplings.
    """
    n = utilities.shape[1]
    assert coupling.shape == (n, n) and observed.shape == (n, n), (coupling.shape, observed.shape)
    bits = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)  # (2^n, n)
    pairs = [(k, m) for k in range(n) for m in range(k + 1, n)]
    offset = np.zeros((n, n))
    precision = 1.0 / prior**2
    for _ in range(NEWTON_STEPS):
        current = coupling + offset
        option_u = utilities @ bits.T + 0.5 * np.einsum("ak,kl,al->a", bits, current, bits)[None, :]  # (R, 2^n)
        option_u -= option_u.max(axis=1, keepdims=True)
        probs = np.exp(option_u)
        probs /= probs.sum(axis=1, keepdims=True)  # (R, 2^n)
        step = np.zeros((n, n))
        for k, m in pairs:
            both = probs @ (bits[:, k] * bits[:, m])  # (R,) P_t(k and m)
            gradient = observed[k, m] - both.sum() - precision * offset[k, m]
            step[k, m] = step[m, k] = gradient / ((both * (1.0 - both)).sum() + precision)
        offset += step
    return coupling + offset
