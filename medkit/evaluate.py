"""Test-set metrics shared by the notebooks and the benchmark.

The two numbers MedMNIST v2 reports, so results compare with the paper:

- **AUC**, the area under the ROC curve: the probability that a random
  positive image scores above a random negative one. It does not depend on
  a threshold or on prevalence. For multi-label tasks, the mean over labels.
- **ACC**, accuracy at a threshold of 0.5 on the predicted probability. For
  multi-label tasks, the mean over labels.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["auc", "accuracy"]


def _check(y_true, y_score):
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_score.ndim == 1:
        y_score = y_score[:, None]
    if y_true.shape != y_score.shape:
        raise ValueError(
            f"labels {y_true.shape} and scores {y_score.shape} must have the same shape (N, K); "
            "pass the model's probabilities for the same images, one column per class."
        )
    return y_true, y_score


def auc(y_true, y_score) -> float:
    """ROC AUC; the mean over label columns for multi-label tasks.

    Parameters
    ----------
    y_true : array (N,) or (N, K) of 0/1
    y_score : array of the same shape; probabilities or any scores

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    y_true, y_score = _check(y_true, y_score)
    return float(np.mean([roc_auc_score(y_true[:, k], y_score[:, k]) for k in range(y_true.shape[1])]))


def accuracy(y_true, y_prob, threshold: float = 0.5) -> float:
    """Accuracy at ``threshold``; the mean over label columns for multi-label tasks.

    Examples
    --------
    >>> accuracy([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.8])
    0.75
    """
    y_true, y_prob = _check(y_true, y_prob)
    return float(np.mean((y_prob >= threshold) == (y_true == 1)))
