"""Metric functions on plain arrays (no model, no data loading): easy to test on known cases."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score


def binary_nll(logit: np.ndarray, label: np.ndarray) -> float:
    """Mean binary negative log-likelihood of ``label`` (N,) under sigmoid(``logit``) (N,)."""
    logit = np.asarray(logit, np.float64)
    # -log sigmoid(z) = softplus(-z); -log(1 - sigmoid(z)) = softplus(z)
    loss = np.where(label > 0, np.logaddexp(0.0, -logit), np.logaddexp(0.0, logit))
    return float(loss.mean())


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half)."""
    label = np.asarray(label) > 0
    if label.all() or not label.any():
        return float("nan")
    return float(roc_auc_score(label, score))


def leave_one_out_nll(
    utilities: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, blocked: np.ndarray | torch.Tensor
) -> np.ndarray:
    """-log softmax of the target item's utility over the catalog, one value per row.

    Parameters
    ----------
    utilities : (L, I) utility of every catalog item given the rest of the basket.
    target : (L,) index of the held-out item.
    blocked : (L, I) bool, True for the other items of the basket (not choosable again).
    """
    u = torch.as_tensor(utilities, dtype=torch.float32)  # torch: multi-threaded
    chosen = u.gather(1, torch.as_tensor(target, dtype=torch.int64)[:, None])[:, 0]  # (L,)
    log_normalizer = torch.logsumexp(u.masked_fill(torch.as_tensor(blocked), -torch.inf), dim=1)  # (L,)
    return (log_normalizer - chosen).double().numpy()


def recall_at_k(scores: np.ndarray | torch.Tensor, bought: np.ndarray | torch.Tensor, k: int = 10) -> np.ndarray:
    """Share of each basket's items among its top ``k`` scored items, (B,).

    scores : (B, I); bought : (B, I) bool, every row with at least one item.
    """
    bought_t = torch.as_tensor(bought)
    assert bool(bought_t.any(dim=1).all()), "every basket needs an item"
    top = torch.topk(torch.as_tensor(scores), k=min(k, bought_t.shape[1]), dim=1).indices  # (B, k)
    hits = bought_t.gather(1, top).sum(dim=1)  # (B,)
    return (hits / bought_t.sum(dim=1)).numpy()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (N,) arrays."""
    return float(spearmanr(a, b).statistic)
