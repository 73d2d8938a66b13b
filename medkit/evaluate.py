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
films resampled with replacement, the AUC recomputed each time), and
:func:`bootstrap_ci` does the same for any metric.

Before a model is used, its threshold is chosen on the validation split
(:func:`threshold_for_sensitivity`), and its probabilities are checked for
calibration (:func:`calibration_error`) and, if need be, rescaled with one
temperature fitted on validation (:func:`fit_temperature`).

Introduced in ``01_chest_xray_data.ipynb``; ``binary_metrics`` in
``02_hog_lbp_random_forest.ipynb``; ``auc_ci`` in ``06_resnet.ipynb``;
the rest in ``08_evaluation_explainability.ipynb``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["auc", "auc_ci", "bootstrap_ci", "Interval", "accuracy", "binary_metrics", "format_metrics",
           "threshold_for_sensitivity", "calibration_error", "fit_temperature", "apply_temperature"]


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
    from sklearn.metrics import roc_auc_score

    return bootstrap_ci(roc_auc_score, y_true, y_score, level=level, n_resamples=n_resamples, seed=seed)


def bootstrap_ci(metric, y_true, y_score, *, level: float = 0.95, n_resamples: int = 1000,
                 seed: int = 0) -> Interval:
    """Any metric of (labels, scores) with a percentile bootstrap confidence interval.

    As :func:`auc_ci`, for a metric such as
    :func:`sklearn.metrics.average_precision_score` (the area under the
    precision-recall curve). Resamples that hold only one class are left
    out, since most metrics are undefined on them.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_score) -> float`` on 1-D arrays.
    y_true : array (N,) or (N, 1) of 0/1
    y_score : array of the same shape
    level, n_resamples, seed
        As in :func:`auc_ci`.

    Examples
    --------
    >>> from sklearn.metrics import average_precision_score
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> est = bootstrap_ci(average_precision_score, y, y + rng.normal(0, 1, 400))
    >>> est.low < est.value < est.high
    True
    """
    from scipy import stats

    y_true, y_score = _check(y_true, y_score)
    if y_true.shape[1] != 1:
        raise ValueError(f"a confidence interval needs one label column; got {y_true.shape[1]}. "
                         "Pass one class at a time.")
    t, s = y_true[:, 0], y_score[:, 0]
    if len(np.unique(t)) < 2:
        raise ValueError("the labels hold only one class, so the metric is undefined; "
                         "evaluate on a split with positive and negative examples.")

    def statistic(t, s):
        return metric(t, s) if 0 < t.sum() < len(t) else np.nan

    result = stats.bootstrap((t, s), statistic, paired=True, vectorized=False, n_resamples=n_resamples,
                             confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Interval(float(metric(t, s)), float(low), float(high))


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


def threshold_for_sensitivity(y_true, y_prob, sensitivity: float) -> float:
    """The highest threshold that still flags ``sensitivity`` of the positive films.

    Choose it on the validation split, then report the test split's
    sensitivity and specificity at it (:func:`binary_metrics`): the test
    sensitivity will scatter around the target, since the threshold was not
    fitted on those films.

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of 0/1
    y_prob : array of the same shape
    sensitivity : float in (0, 1]
        The share of positive films to flag.

    Returns
    -------
    float
        A film is called positive when ``y_prob >= threshold``.

    Examples
    --------
    >>> threshold_for_sensitivity([0, 0, 1, 1, 1, 1], [0.1, 0.5, 0.3, 0.6, 0.8, 0.9], 0.75)
    0.6
    """
    from sklearn.metrics import roc_curve

    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1], a share of the positive films; got {sensitivity!r}.")
    y_true, y_prob = _check(y_true, y_prob)
    if y_true.shape[1] != 1 or not 0 < y_true.sum() < len(y_true):
        raise ValueError("threshold_for_sensitivity needs one label column with positive and negative films.")
    tpr, thresholds = roc_curve(y_true[:, 0], y_prob[:, 0], drop_intermediate=False)[1:]
    return float(thresholds[np.argmax(tpr >= sensitivity - 1e-12)])


def calibration_error(y_true, y_prob, *, n_bins: int = 10) -> float:
    """Expected calibration error: how far predicted probabilities are from observed frequencies.

    The films are put in ``n_bins`` equal-width bins of predicted
    probability; in each bin ``b`` the mean prediction ``conf_b`` is compared
    with the share of positives ``freq_b``, and the gaps are averaged,
    weighted by the bins' sizes: ``ECE = sum_b (n_b / N) |freq_b - conf_b|``
    (Naeini et al. 2015; Guo et al. 2017). 0 is perfect calibration. The
    points of a reliability diagram are the ``(conf_b, freq_b)`` pairs, as
    :func:`sklearn.calibration.calibration_curve` returns them.

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of 0/1
    y_prob : array of the same shape, probabilities in [0, 1]
    n_bins : int, default 10

    Examples
    --------
    >>> calibration_error([0, 1, 0, 1], [0.25, 0.25, 0.75, 0.75], n_bins=2)
    0.25
    """
    y_true, y_prob = _check(y_true, y_prob)
    t, p = y_true.ravel().astype(float), y_prob.ravel()
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"y_prob must be probabilities in [0, 1]; got values from {p.min():.3g} to {p.max():.3g}.")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins!r}.")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)  # a probability of 1 goes to the last bin
    counts = np.bincount(bins, minlength=n_bins)
    gaps = np.abs(np.bincount(bins, t, n_bins) - np.bincount(bins, p, n_bins))  # n_b * |freq_b - conf_b|
    return float(gaps.sum() / counts.sum())


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def apply_temperature(y_prob, temperature: float) -> np.ndarray:
    """Rescale probabilities by a temperature: ``sigmoid(logit(p) / T)``.

    ``T > 1`` pulls them towards 0.5 (less confident), ``T < 1`` pushes them
    out; the ranking, and so the AUC, does not change.

    Examples
    --------
    >>> apply_temperature([0.1, 0.5, 0.9], 2.0).round(3)
    array([0.25, 0.5 , 0.75])
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive; got {temperature!r}.")
    return 1.0 / (1.0 + np.exp(-_logit(y_prob) / temperature))


def fit_temperature(y_true, y_prob) -> float:
    """The temperature that minimises the log loss on a held-out split (Guo et al. 2017).

    Fit it on the validation split and apply it (:func:`apply_temperature`)
    to the test split's probabilities. One number is fitted, so it cannot
    overfit much, and it leaves the ranking unchanged.

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of 0/1
    y_prob : array of the same shape, the model's probabilities

    Returns
    -------
    float
        The temperature ``T``, searched in [0.05, 20].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 20000)
    >>> z = 2 * y - 1 + rng.normal(0, 1, 20000)  # a score; its calibrated probability is sigmoid(2 z)
    >>> calibrated = 1 / (1 + np.exp(-2 * z))
    >>> overconfident = apply_temperature(calibrated, 1 / 3)
    >>> round(fit_temperature(y, overconfident), 1)
    3.0
    """
    from scipy.optimize import minimize_scalar

    y_true, y_prob = _check(y_true, y_prob)
    t, z = y_true.ravel().astype(float), _logit(y_prob.ravel())

    def log_loss(log_t):
        a = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, a) - t * a))  # -[t log s(a) + (1 - t) log(1 - s(a))]

    best = minimize_scalar(log_loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))
