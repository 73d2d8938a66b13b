"""Test-set metrics shared by the notebooks and the benchmark.

The two numbers MedMNIST v2 reports, so results compare with the paper:

- **AUC**, the area under the ROC curve: the probability that a random
  positive image scores above a random negative one. It does not depend on
  a threshold or on prevalence. For multi-label tasks, the mean over labels.
- **ACC**, accuracy at a threshold of 0.5 on the predicted probability. For
  multi-label tasks, the mean over labels.

For a binary task at a chosen threshold, :func:`binary_metrics` adds what a
clinician asks for: sensitivity (recall: the share of diseased films
flagged), specificity (the share of normal films passed), precision
(positive predictive value), F1 and the confusion matrix.

How far a test AUC can be trusted depends on how many films it was
measured on: :func:`auc_ci` gives a bootstrap confidence interval (the
films resampled with replacement, the AUC recomputed each time).

Introduced in ``01_chest_xray_data.ipynb``; ``binary_metrics`` in
``02_hog_lbp_random_forest.ipynb``; ``auc_ci`` in ``06_resnet.ipynb``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["auc", "auc_ci", "Interval", "accuracy", "binary_metrics", "format_metrics"]


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
    single = [k for k in range(y_true.shape[1]) if len(np.unique(y_true[:, k])) < 2]
    if single:
        raise ValueError(
            f"label column(s) {single} hold only one class, so their AUC is undefined; "
            "evaluate on a split with positive and negative examples of every class (a larger test split)."
        )
    return float(np.mean([roc_auc_score(y_true[:, k], y_score[:, k]) for k in range(y_true.shape[1])]))


class Interval(NamedTuple):
    """An estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def auc_ci(y_true, y_score, *, level: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> Interval:
    """ROC AUC with a percentile bootstrap confidence interval.

    The films are resampled with replacement ``n_resamples`` times (labels
    and scores together, :func:`scipy.stats.bootstrap` with
    ``paired=True``) and the AUC recomputed; the interval holds the middle
    ``level`` of those AUCs. It reflects the sampling of the test films,
    not the randomness of training.

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of 0/1
    y_score : array of the same shape
    level : float, default 0.95
    n_resamples : int, default 1000
    seed : int, default 0

    Returns
    -------
    Interval
        ``(value, low, high)``; ``str()`` prints ``0.950 [0.930, 0.968]``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> est = auc_ci(y, y + rng.normal(0, 1, 400))
    >>> round(est.value, 3), est.low < est.value < est.high
    (0.788, True)
    """
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    y_true, y_score = _check(y_true, y_score)
    if y_true.shape[1] != 1:
        raise ValueError(f"auc_ci needs one label column; got {y_true.shape[1]}. Pass one class at a time.")
    value = auc(y_true, y_score)
    t, s = y_true[:, 0], y_score[:, 0]

    def statistic(t, s):
        return roc_auc_score(t, s) if 0 < t.sum() < len(t) else np.nan

    result = stats.bootstrap((t, s), statistic, paired=True, vectorized=False, n_resamples=n_resamples,
                             confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Interval(value, float(low), float(high))


def accuracy(y_true, y_prob, threshold: float = 0.5) -> float:
    """Accuracy at ``threshold``; the mean over label columns for multi-label tasks.

    Examples
    --------
    >>> accuracy([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.8])
    0.75
    """
    y_true, y_prob = _check(y_true, y_prob)
    return float(np.mean((y_prob >= threshold) == (y_true == 1)))


def binary_metrics(y_true, y_prob, threshold: float = 0.5) -> dict:
    """Threshold metrics and AUC for a binary task.

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of 0/1
    y_prob : array of the same shape
        Predicted probability (or score) of the positive class.
    threshold : float, default 0.5
        A film is called positive when ``y_prob >= threshold``.

    Returns
    -------
    dict
        ``auc``, ``accuracy``, ``sensitivity`` (recall), ``specificity``,
        ``precision``, ``f1``, and the counts ``tn, fp, fn, tp``.
        ``precision`` is ``nan`` when nothing is called positive.

    Examples
    --------
    >>> m = binary_metrics([0, 0, 0, 1, 1], [0.1, 0.2, 0.7, 0.6, 0.9])
    >>> m["tp"], m["fp"], m["sensitivity"], round(m["specificity"], 3), round(m["precision"], 3)
    (2, 1, 1.0, 0.667, 0.667)
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    y_true, y_prob = _check(y_true, y_prob)
    if y_true.shape[1] != 1:
        raise ValueError(f"binary_metrics needs one label column; got {y_true.shape[1]}. Pass one class at a time.")
    t, p = y_true[:, 0].astype(int), y_prob[:, 0]
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(t, p >= threshold, labels=[0, 1]).ravel())
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {
        "auc": float(roc_auc_score(t, p)),
        "accuracy": (tp + tn) / len(t),
        "sensitivity": sensitivity,
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "precision": precision,
        "f1": f1,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def format_metrics(rows: dict[str, dict], keys=("auc", "accuracy", "sensitivity", "specificity", "precision", "f1")) -> str:
    """A table with one row per model, from ``{name: binary_metrics(...)}``.

    Examples
    --------
    >>> print(format_metrics({"model": binary_metrics([0, 1], [0.2, 0.8])}, keys=("auc", "accuracy")))
    model      auc  accuracy
    model    1.000     1.000
    """
    width = max([len(n) for n in rows] + [5]) + 2
    lines = [f"{'model':<{width}}" + "".join(f"{k:>{max(len(k), 5) + 2}}" for k in keys)]
    for name, m in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{m[k]:>{max(len(k), 5) + 2}.3f}" for k in keys))
    return "\n".join(lines)
