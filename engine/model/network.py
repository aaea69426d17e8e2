"""The choice network: a pure ``nn.Module`` (no Lightning, no data loading).

SHOPPER-family basket choice model (Ruiz, Athey & Blei, 2020, "SHOPPER: A probabilistic model
of consumer choice with substitutes and complements", Annals of Applied Statistics). The
probability that customer h buys item i on trip t, given the price and the rest B\\i of the basket:

    u(h,i,t) = lambda_i + <theta_h, alpha_i> + gamma_i * habit(h,i,t)
             + sum_{j in B\\i} c_ij + <sigma_i, season_t> + <eta, promo_it> - b(h,i) * price_it
    P(buy i | h, t, B\\i) = sigmoid(u(h,i,t))

    theta_h         = g(d_h) + e_h                      preferences; g: small network over demographics
    beta_customer_h = g_b(d_h) + f_h                    e_h, f_h free, shrunk to 0 (cold start -> g)
    b(h,i)          = softplus(beta_customer_h + beta_item_i) > 0     price sensitivity, 1/currency
    c_ij            = <rho_i, alpha_j> + <rho_j, alpha_i>             symmetric coupling
    gamma_i         = gamma + gamma_item_i                            habit (Guadagni & Little 1983)

The coupling is *summed* over the rest of the basket, so these item conditionals are those of
one auto-logistic model of the whole basket (training them is Besag's pseudo-likelihood), the
model the pricing code evaluates exactly for bundles (DESIGN.md section 4).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class ChoiceBatch(NamedTuple):
    """A batch of B trips and the N (trip, item) rows scored in them.

    ``row`` maps every scored item to its trip in the batch; items of the basket itself
    (``in_basket``) are scored against the rest of the basket, sampled items against all of it.
    """

    customer: torch.Tensor  # (B,) int64 customer index of each trip
    season: torch.Tensor  # (B, S) float32 season features of the trip's week
    basket_item: torch.Tensor  # (L,) int64 items in the baskets
    basket_row: torch.Tensor  # (L,) int64 trip row of each basket item
    basket_offsets: torch.Tensor  # (B,) int64 position of each trip's first basket item
    item: torch.Tensor  # (N,) int64 scored items
    row: torch.Tensor  # (N,) int64 trip row of each scored item
    in_basket: torch.Tensor  # (N,) float32 1 if the item is in that trip's basket
    habit: torch.Tensor  # (N,) float32 habit feature
    price: torch.Tensor  # (N,) float32 unit price that week
    promo: torch.Tensor  # (N, P) float32 promotion flags that week
    label: torch.Tensor  # (N,) float32 1 = bought
    weight: torch.Tensor  # (N,) float32 importance weight (sampled non-purchases stand for many)


class ChoiceNetwork(nn.Module):
    """Utilities of (customer, item, trip) rows; see the module docstring for the equation.

    Parameters
    ----------
    n_items, n_customers, n_demographics, n_season, n_promo : table sizes (I, H, D, S, P).
    latent_dim : K, the size of theta, alpha and rho.
    demo_hidden : hidden units of g.
    """

    demographics: torch.Tensor  # (H, D) registered buffer

    def __init__(
        self,
        n_items: int,
        n_customers: int,
        n_demographics: int,
        n_season: int,
        n_promo: int,
        latent_dim: int,
        demo_hidden: int,
    ) -> None:
        super().__init__()
        I, H, D, K = n_items, n_customers, n_demographics, latent_dim
        self.latent_dim = K
        self.register_buffer("demographics", torch.zeros(H, D))  # (H, D) data, saved with the model
        self.popularity = nn.Parameter(torch.zeros(I))  # lambda (I,)
        self.alpha = nn.Parameter(0.05 * torch.randn(I, K))  # (I, K) item attributes
        self.rho = nn.Parameter(0.05 * torch.randn(I, K))  # (I, K) interaction vectors
        self.habit_shared = nn.Parameter(torch.tensor(1.0))  # gamma
        self.habit_item = nn.Parameter(torch.zeros(I))  # gamma_item (I,)
        self.season_item = nn.Parameter(torch.zeros(I, n_season))  # sigma (I, S)
        self.promo_effect = nn.Parameter(torch.zeros(n_promo))  # eta (P,)
        self.beta_item = nn.Parameter(torch.zeros(I))  # (I,)
        self.preference_free = nn.Parameter(0.05 * torch.randn(H, K))  # e_h (H, K)
        self.beta_customer_free = nn.Parameter(torch.zeros(H))  # f_h (H,)
        # locals, created in this order (seeded init); attributes would add state_dict keys
        g_in, g_out = nn.Linear(D, demo_hidden), nn.Linear(demo_hidden, K + 1)
        self.demographic_net = nn.Sequential(g_in, nn.Tanh(), g_out)  # g and g_b: (D,) -> (K + 1,)
        with torch.no_grad():  # start with b ~ softplus(-1.5) = 0.2 per currency unit
            g_out.bias[K] = -1.5

    @torch.no_grad()
    def initialize_from_data(self, demographics: torch.Tensor, item_log_odds: torch.Tensor) -> None:
        """Copy the customers' demographics in and start lambda at each item's base log-odds."""
        assert demographics.shape == self.demographics.shape, (demographics.shape, self.demographics.shape)
        assert item_log_odds.shape == self.popularity.shape, (item_log_odds.shape, self.popularity.shape)
        self.demographics.copy_(demographics)
        self.popularity.copy_(item_log_odds)

    def customer_parameters(self, customer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta_h (B, K) and beta_customer_h (B,) of the customers (B,)."""
        from_demographics = self.demographic_net(self.demographics.index_select(0, customer))  # (B, K + 1)
        theta = from_demographics[:, : self.latent_dim] + F.embedding(customer, self.preference_free)  # (B, K)
        beta_customer = from_demographics[:, self.latent_dim] + self.beta_customer_free.index_select(
            0, customer
        )  # (B,)
        return theta, beta_customer

    def price_sensitivity(self, beta_customer: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """b(h,i) = softplus(beta_customer_h + beta_item_i) > 0, for rows (N,)."""
        return F.softplus(beta_customer + self.beta_item.index_select(0, item))  # (N,)

    def habit_weight(self, item: torch.Tensor) -> torch.Tensor:
        """gamma_i for items (N,)."""
        return self.habit_shared + self.habit_item.index_select(0, item)  # (N,)

    def coupling(self, item_a: torch.Tensor, item_b: torch.Tensor) -> torch.Tensor:
        """c_ab = <rho_a, alpha_b> + <rho_b, alpha_a> for item pairs (N,)."""
        return (self.rho[item_a] * self.alpha[item_b]).sum(-1) + (self.rho[item_b] * self.alpha[item_a]).sum(-1)

    def forward(self, batch: ChoiceBatch) -> torch.Tensor:
        """Utility u(h,i,t) of every scored row, (N,)."""
        B, N = batch.customer.shape[0], batch.item.shape[0]
        assert batch.row.shape == (N,) and batch.price.shape == (N,), "scored rows must be aligned"
        assert batch.season.shape[0] == B, "one season row per trip"
        theta, beta_customer = self.customer_parameters(batch.customer)  # (B, K), (B,)
        item_vectors = torch.cat([self.alpha, self.rho], dim=1)  # (I, 2K)
        basket_sums = F.embedding_bag(
            batch.basket_item, item_vectors, batch.basket_offsets, mode="sum"
        )  # (B, 2K) sums of alpha_j and rho_j over each basket
        basket_alpha, basket_rho = basket_sums[:, : self.latent_dim], basket_sums[:, self.latent_dim :]
        # alpha_i meets theta_h and sum_j rho_j; rho_i meets sum_j alpha_j: one gather each.
        # (F.embedding: its backward is much faster on CPU than that of tensor[index].)
        context = F.embedding(batch.row, torch.cat([theta + basket_rho, basket_alpha], dim=1))  # (N, 2K)
        vectors = F.embedding(batch.item, item_vectors)  # (N, 2K)
        # an item of the basket is not its own context: drop j = i from both basket sums
        own_coupling = 2.0 * (self.alpha * self.rho).sum(-1)  # (I,) <alpha_i, rho_i> twice
        own = batch.in_basket * own_coupling.index_select(0, batch.item)  # (N,)
        preference_and_coupling = (vectors * context).sum(-1) - own  # (N,)
        season = (F.embedding(batch.item, self.season_item) * batch.season.index_select(0, batch.row)).sum(-1)  # (N,)
        promo = batch.promo @ self.promo_effect  # (N,)
        b = self.price_sensitivity(beta_customer.index_select(0, batch.row), batch.item)  # (N,) > 0
        return (
            self.popularity.index_select(0, batch.item)
            + preference_and_coupling
            + self.habit_weight(batch.item) * batch.habit
            + season
            + promo
            - b * batch.price
        )  # (N,)

    def catalog_utility(
        self,
        customer: torch.Tensor,
        season: torch.Tensor,
        habit: torch.Tensor,
        price: torch.Tensor,
        promo: torch.Tensor,
        basket_sums: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Utility of every catalog item for B trips, (B, I): the same equation as ``forward``.

        Parameters
        ----------
        customer : (B,); season : (B, S); habit, price : (B, I); promo : (B, I, P).
        basket_sums : (B, 2K) sums of [alpha_j, rho_j] over each basket, or None for no basket
            context. An item already in the basket is then scored against the whole basket,
            itself included; subtract ``coupling_rows`` to leave an item out.
        """
        theta, beta_customer = self.customer_parameters(customer)  # (B, K), (B,)
        context_alpha, context_rho = theta, torch.zeros_like(theta)  # (B, K) each
        if basket_sums is not None:
            context_alpha = theta + basket_sums[:, self.latent_dim :]
            context_rho = basket_sums[:, : self.latent_dim]
        b = F.softplus(beta_customer[:, None] + self.beta_item[None, :])  # (B, I) > 0
        return (
            self.popularity[None, :]
            + context_alpha @ self.alpha.T
            + context_rho @ self.rho.T
            + self.habit_weight(torch.arange(len(self.popularity), device=customer.device))[None, :] * habit
            + season @ self.season_item.T
            + promo @ self.promo_effect
            - b * price
        )  # (B, I)

    def basket_sums(self, basket_item: torch.Tensor, basket_offsets: torch.Tensor) -> torch.Tensor:
        """(B, 2K) sums of [alpha_j, rho_j] over each trip's basket (items (L,), offsets (B,))."""
        return F.embedding_bag(basket_item, torch.cat([self.alpha, self.rho], dim=1), basket_offsets, mode="sum")

    def coupling_rows(self, item: torch.Tensor) -> torch.Tensor:
        """(L, I) couplings c_ij of each item i in ``item`` (L,) with every catalog item j."""
        return self.rho[item] @ self.alpha.T + self.alpha[item] @ self.rho.T

    def prior_penalty(self, l2_customer: float, l2_item: float, l2_season: float) -> torch.Tensor:
        """Gaussian-prior penalty (sums of squares) that shrinks the free parameters to 0."""
        customer = self.preference_free.square().sum() + self.beta_customer_free.square().sum()
        item = (
            self.alpha.square().sum()
            + self.rho.square().sum()
            + self.habit_item.square().sum()
            + self.beta_item.square().sum()
        )
        return l2_customer * customer + l2_item * item + l2_season * self.season_item.square().sum()


def weighted_nll(utility: torch.Tensor, label: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Sum over rows of weight * binary cross-entropy of sigmoid(utility) against label, (scalar)."""
    return (weight * F.binary_cross_entropy_with_logits(utility, label, reduction="none")).sum()
