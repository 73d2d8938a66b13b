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
positive and the negative films each resampled with replacement, the AUC
recomputed each time), and :func:`bootstrap_ci` does the same for any
metric. A share of films (sensitivity, specificity, accuracy) gets a
Wilson interval (:func:`proportion_ci`, :func:`binary_metrics_ci`).

Comparing two models takes more than two intervals:

- one training run is an anecdote, since the weights change with the seed,
  the CPU and the thread count: :func:`over_seeds` runs a recipe for several
  seeds and reports each metric as mean ± standard deviation;
- two models scored on the same test films are correlated, so their
  difference is tested as a pair: DeLong's test (:func:`delong_test`) and a
  paired bootstrap of the difference (:func:`paired_bootstrap`) for one run
  each, and :func:`paired_over_seeds` for two recipes run over seeds, once
  over the seeds and the films together. Whether two separate intervals
  overlap is not such a test.

Before a model is used, its threshold is chosen on the validation split
(:func:`threshold_for_sensitivity`), and its probabilities are checked for
calibration (:func:`calibration_error`) and, if need be, rescaled with one
temperature fitted on validation (:func:`fit_temperature`).

Introduced in ``01_chest_xray_data.ipynb``; ``binary_metrics`` and
``paired_over_seeds`` in ``02_hog_lbp_random_forest.ipynb``; ``over_seeds`` and ``delong_test`` in
``04_cnn.ipynb``; ``auc_ci`` in ``05_lstm.ipynb``; the rest in
``08_evaluation_explainability.ipynb``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["auc", "auc_ci", "bootstrap_ci", "Interval", "accuracy", "binary_metrics", "format_metrics",
           "proportion_ci", "binary_metrics_ci", "Comparison", "delong_test", "paired_bootstrap",
           "paired_over_seeds",
           "SeedRuns", "over_seeds",
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
    """ROC AUC with a stratified percentile bootstrap confidence interval.

    The positive films and the negative films are each resampled with
    replacement, ``n_resamples`` times, keeping their counts (labels and
    scores together), and the AUC recomputed; the interval holds the middle
    ``level`` of those AUCs. It reflects the sampling of the test films,
    not the randomness of training (for that, see :func:`over_seeds`).

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


def _binary_columns(y_true, y_score, what):
    y_true, y_score = _check(y_true, y_score)
    if y_true.shape[1] != 1:
        raise ValueError(f"{what} needs one label column; got {y_true.shape[1]}. Pass one class at a time.")
    t = y_true[:, 0]
    if not np.isin(t, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1; found {sorted(np.unique(t).tolist())[:5]}.")
    if len(np.unique(t)) < 2:
        raise ValueError("the labels hold only one class, so the metric is undefined; "
                         "evaluate on a split with positive and negative examples.")
    return t.astype(int), y_score[:, 0]


def _stratified_resamples(t, n_resamples, seed):
    """Index arrays, one per resample: positives and negatives each drawn with replacement at their own count."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1; got {n_resamples!r}.")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    for _ in range(n_resamples):
        yield np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])


def _check_level(level):
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be a probability in (0, 1), such as 0.95; got {level!r}.")


def bootstrap_ci(metric, y_true, y_score, *, level: float = 0.95, n_resamples: int = 1000,
                 seed: int = 0) -> Interval:
    """Any metric of (labels, scores) with a stratified percentile bootstrap confidence interval.

    As :func:`auc_ci`, for a metric such as
    :func:`sklearn.metrics.average_precision_score` (the area under the
    precision-recall curve). The positives and the negatives are resampled
    separately, each at its own count, so every resample holds both classes
    (a metric such as the AUC is undefined otherwise) and the prevalence of
    the test split, which was fixed when the split was drawn, stays fixed.
    On a small test split this matters: with 2 positives in 12 films, a
    resample of all 12 films draws no positive one time in six.

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
    _check_level(level)
    t, s = _binary_columns(y_true, y_score, "a confidence interval")
    per_row = _per_row(metric)
    values = np.array([per_row(t[idx], s[idx][None])[0] for idx in _stratified_resamples(t, n_resamples, seed)])
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return Interval(float(metric(t, s)), float(low), float(high))


def proportion_ci(successes: int, n: int, *, level: float = 0.95) -> Interval:
    """A share ``successes / n`` with its Wilson score interval.

    The Wilson interval (Wilson 1927) keeps its coverage near ``level`` for
    small ``n`` and for shares near 0 or 1, where the textbook
    ``p ± 1.96 sqrt(p (1 - p) / n)`` fails (it gives ``[1, 1]`` for 20 of 20).
    Computed by :meth:`scipy.stats.binomtest(...).proportion_ci
    <scipy.stats._result_classes.BinomTestResult.proportion_ci>`.

    Parameters
    ----------
    successes : int
        Films counted (e.g. true positives).
    n : int
        Films in all (e.g. every positive film), at least 1.
    level : float, default 0.95

    Examples
    --------
    >>> print(proportion_ci(20, 20))
    1.000 [0.839, 1.000]
    >>> print(proportion_ci(45, 50))
    0.900 [0.786, 0.957]
    """
    from scipy import stats

    _check_level(level)
    if not (isinstance(n, (int, np.integer)) and isinstance(successes, (int, np.integer))) or n < 1 \
            or not 0 <= successes <= n:
        raise ValueError(f"need whole numbers 0 <= successes <= n and n >= 1; got successes={successes!r}, n={n!r}.")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Interval(successes / n, float(ci.low), float(ci.high))


def binary_metrics_ci(y_true, y_prob, threshold: float = 0.5, *, level: float = 0.95) -> dict:
    """Sensitivity, specificity and accuracy at ``threshold``, each with its Wilson interval.

    Each is a share of films: sensitivity of the positive films, specificity
    of the negative ones, accuracy of all, so each has a binomial interval
    (:func:`proportion_ci`). The threshold must come from the validation
    split, not from the films scored here.

    Returns
    -------
    dict of str to Interval
        ``sensitivity``, ``specificity``, ``accuracy``.

    Examples
    --------
    >>> m = binary_metrics_ci([0, 0, 0, 1, 1], [0.1, 0.2, 0.7, 0.6, 0.9])
    >>> print(m["sensitivity"], m["specificity"], sep="   ")
    1.000 [0.342, 1.000]   0.667 [0.208, 0.939]
    """
    t, p = _binary_columns(y_true, y_prob, "binary_metrics_ci")
    called = p >= threshold
    tp, tn = int((called & (t == 1)).sum()), int((~called & (t == 0)).sum())
    n_pos, n_neg = int(t.sum()), int(len(t) - t.sum())
    return {
        "sensitivity": proportion_ci(tp, n_pos, level=level),
        "specificity": proportion_ci(tn, n_neg, level=level),
        "accuracy": proportion_ci(tp + tn, len(t), level=level),
    }


class Comparison(NamedTuple):
    """A paired comparison of two models on the same films.

    Attributes
    ----------
    difference : float
        Metric of model a minus metric of model b.
    low, high : float
        Confidence interval of the difference.
    p_value : float
        Two-sided, for "no difference".
    """

    difference: float
    low: float
    high: float
    p_value: float

    def __str__(self) -> str:
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}], p = {self.p_value:.3g}"


def _per_row(metric):
    """``metric`` applied to each row of scores (k, N): ``f(labels, rows) -> (k,)``.

    The ROC AUC (this module's :func:`auc` or scikit-learn's ``roc_auc_score``) is computed for all rows at once
    from midranks, which gives the same numbers many times faster; a bootstrap calls it a thousand times.
    """
    from sklearn.metrics import roc_auc_score

    if metric is auc or metric is roc_auc_score:
        return _auc_by_midranks
    return lambda labels, rows: np.array([metric(labels, row) for row in rows], np.float64)


def _auc_by_midranks(t, scores):
    """The AUC of each row of ``scores`` (k, N) against 0/1 labels ``t`` (N,): the Mann-Whitney statistic."""
    from scipy.stats import rankdata

    m = int(np.sum(t == 1))
    ranks = rankdata(scores, axis=1)  # midranks: a tie counts as half
    return (ranks[:, t == 1].sum(axis=1) - m * (m + 1) / 2.0) / (m * (len(t) - m))


def _delong_components(t, scores):
    """AUCs and DeLong's structural components, by midranks (Sun and Xu 2014).

    ``scores`` is (k, N). Returns ``auc`` (k,), ``v10`` (k, m) for the m
    positives and ``v01`` (k, n) for the n negatives.
    """
    from scipy.stats import rankdata

    pos, neg = scores[:, t == 1], scores[:, t == 0]
    m, n = pos.shape[1], neg.shape[1]
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # midranks among all films
    tx = rankdata(pos, axis=1)  # among the positives only
    ty = rankdata(neg, axis=1)  # among the negatives only
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # per positive: the share of negatives it outscores (ties count 1/2)
    v01 = 1.0 - (tz[:, m:] - ty) / m  # per negative: the share of positives that outscore it
    return auc, v10, v01


def delong_test(y_true, score_a, score_b, *, level: float = 0.95) -> Comparison:
    """DeLong's test of the difference between two correlated ROC AUCs.

    Two models scored on the same films make correlated errors, so the
    variance of ``AUC_a - AUC_b`` is not the sum of their variances. DeLong
    et al. (1988) estimate it from the structural components of the
    Mann-Whitney statistic: for each positive film ``i``, ``V10_i``, the
    share of negative films it outscores, and for each negative film ``j``,
    ``V01_j``, the share of positives that outscore it (ties count a half).
    With ``S10`` and ``S01`` their 2 x 2 covariance matrices over the ``m``
    positives and ``n`` negatives, ``S = S10 / m + S01 / n`` and

    ``z = (AUC_a - AUC_b) / sqrt(S_aa + S_bb - 2 S_ab)``,

    compared with a standard normal. The components are computed from
    midranks (Sun and Xu 2014), in O(N log N).

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of 0/1
    score_a, score_b : arrays of the same shape
        The two models' scores for the same films, in the same order.
    level : float, default 0.95
        Of the normal-theory interval of the difference.

    Returns
    -------
    Comparison
        ``AUC_a - AUC_b``, its interval and the two-sided p-value.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> shared = rng.normal(0, 1, 300)
    >>> better, worse = y + shared + rng.normal(0, 0.5, 300), 0.5 * y + shared + rng.normal(0, 0.5, 300)
    >>> test = delong_test(y, better, worse)
    >>> test.difference > 0, test.p_value < 0.001
    (True, True)
    """
    from scipy.stats import norm

    _check_level(level)
    t, a = _binary_columns(y_true, score_a, "delong_test")
    _, b = _binary_columns(y_true, score_b, "delong_test")
    auc, v10, v01 = _delong_components(t, np.stack([a, b]))
    s = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    difference = float(auc[0] - auc[1])
    sd = float(np.sqrt(max(s[0, 0] + s[1, 1] - 2 * s[0, 1], 0.0)))
    if sd == 0.0:  # identical rankings: no difference and no spread
        return Comparison(difference, difference, difference, 1.0 if difference == 0 else 0.0)
    half = norm.ppf(0.5 + level / 2.0) * sd
    p = float(2.0 * norm.sf(abs(difference) / sd))
    return Comparison(difference, difference - half, difference + half, p)


def _bootstrap_p(diffs):
    """Two-sided bootstrap p-value for "no difference": twice the share of resampled differences on the far side of
    zero, counted as (k + 1) / (B + 1) so that B resamples never claim p = 0 (Davison and Hinkley 1997, ch. 4).
    With the default 1,000 resamples the smallest p-value is therefore 0.002."""
    far = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    return min(1.0, 2.0 * (far + 1) / (len(diffs) + 1))


def paired_bootstrap(metric, y_true, score_a, score_b, *, level: float = 0.95, n_resamples: int = 1000,
                     seed: int = 0) -> Comparison:
    """The difference ``metric(a) - metric(b)`` on the same films, with a paired bootstrap interval.

    Each resample draws one set of films (stratified, as in
    :func:`bootstrap_ci`) and scores both models on it, so what the two
    models share cancels out in the difference. The interval holds the
    middle ``level`` of the resampled differences; the p-value is twice the
    share of resampled differences on the far side of zero, counted as
    (k + 1) / (B + 1) so that it is never 0 (at least 0.002 with 1,000
    resamples; at most 1).

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_score) -> float`` on 1-D arrays, e.g.
        :func:`sklearn.metrics.roc_auc_score`, or a threshold metric
        written as a function of the scores.
    y_true : array (N,) or (N, 1) of 0/1
    score_a, score_b : arrays of the same shape
    level, n_resamples, seed
        As in :func:`bootstrap_ci`.

    Examples
    --------
    >>> from sklearn.metrics import roc_auc_score
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> shared = rng.normal(0, 1, 300)
    >>> test = paired_bootstrap(roc_auc_score, y, y + shared, 0.5 * y + shared, n_resamples=300)
    >>> test.low > 0
    True
    """
    _check_level(level)
    t, a = _binary_columns(y_true, score_a, "paired_bootstrap")
    _, b = _binary_columns(y_true, score_b, "paired_bootstrap")
    per_row = _per_row(metric)
    diffs = np.array([np.subtract(*per_row(t[idx], np.stack([a[idx], b[idx]])))
                      for idx in _stratified_resamples(t, n_resamples, seed)])
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    p = _bootstrap_p(diffs)
    return Comparison(float(metric(t, a) - metric(t, b)), float(low), float(high), float(p))


def _seed_scores(scores, n_films, name):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 3 and scores.shape[-1] == 1:
        scores = scores[..., 0]
    if scores.shape == (n_films, 1):
        scores = scores[:, 0]
    if scores.shape == (n_films,):  # a recipe with no seed: the same scores whatever the seed
        return scores[None]
    if scores.ndim not in (2, 3) or scores.shape[1] != n_films:
        raise ValueError(f"{name} must hold one row of scores per seed, each for the {n_films} films of y_true "
                         f"(shape (seeds, {n_films}), or (seeds, {n_films}, k) for a metric that reads k numbers "
                         f"per film), or one score per film (shape ({n_films},)) for a recipe that has no seed; got "
                         f"shape {scores.shape}. Stack the seeds' test scores.")
    if len(scores) < 2:
        raise ValueError(f"{name} holds {len(scores)} seed; a comparison over seeds needs at least 2 (3 or more is "
                         "better). For one seed, use paired_bootstrap or delong_test; for a recipe that gives the "
                         "same scores whatever the seed, pass its scores as one row of shape (N,).")
    return scores


def _resampled_mean(values, rng):
    """The mean of ``values`` resampled with replacement, its spread scaled by sqrt(k / (k - 1)).

    A bootstrap mean of k values varies by (k - 1) / k of the sample variance over k; with three seeds that
    understates the seeds' spread by a third, so the deviation from the mean is scaled back up.
    """
    k = len(values)
    if k == 1:  # a recipe with no seed: nothing to resample
        return values[0]
    return values.mean() + np.sqrt(k / (k - 1)) * (values[rng.integers(0, k, k)].mean() - values.mean())


def paired_over_seeds(metric, y_true, scores_a, scores_b, *, level: float = 0.95, n_resamples: int = 1000,
                      seed: int = 0) -> Comparison:
    """One comparison of two recipes, each trained with several seeds and scored on the same films.

    The quantity compared is the seed-averaged metric, ``mean_s metric(a_s) - mean_s metric(b_s)``. Its
    uncertainty has two sources: which films were tested, and which seeds were trained. Counting per-seed tests
    ("p < 0.05 on 2 of 3 seeds") uses neither properly, so this is a two-level paired bootstrap: each resample
    draws one set of films (stratified, shared by every seed of both recipes, so what the films do to both
    cancels in the difference) and, independently for each recipe, as many seeds as it has, with replacement
    (the recipes' trainings are independent of each other). The interval holds the middle ``level`` of the
    resampled differences; the p-value is twice the share on the far side of zero, counted as (k + 1) / (B + 1) so
    that it is never 0 (at least 0.002 with 1,000 resamples; at most 1). A bootstrap over
    k seeds understates their spread by a factor (k - 1) / k in variance, so each resampled seed mean's deviation
    is scaled by sqrt(k / (k - 1)). With few seeds the seed level stays coarse (three seeds give ten distinct
    resampled means) and the interval a little narrow: in simulated studies with three seeds per recipe, its 90 %
    interval held the true difference in 122 of 150 (81 %). State how many seeds there were.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_score) -> float`` on 1-D arrays, e.g. :func:`sklearn.metrics.roc_auc_score`; or on
        ``y_score`` of shape (N, k) when the scores are given with k numbers per film.
    y_true : array (N,) or (N, 1) of 0/1
    scores_a, scores_b : arrays (seeds, N), (seeds, N, k), or (N,)
        Each seed's scores for the same N films, in the order of ``y_true``; the recipes may have different
        numbers of seeds. A metric that needs more than one number per film (the error left after referring
        the films a model is least sure of reads a probability and an uncertainty) takes shape (seeds, N, k):
        the films are resampled together with their k numbers. A recipe that has no seed (a logistic
        regression fitted by a deterministic solver gives the same scores every time) is passed as its one row of
        scores, shape (N,): only the films are resampled for it.
    level, n_resamples, seed
        As in :func:`bootstrap_ci`.

    Returns
    -------
    Comparison
        The seed-averaged difference, its interval and the two-sided p-value.

    Examples
    --------
    Three seeds of a recipe that separates the classes better than another, on the same 300 films:

    >>> from sklearn.metrics import roc_auc_score
    >>> rng = np.random.default_rng(0)
    >>> y, films = rng.integers(0, 2, 300), rng.normal(0, 1, 300)
    >>> better = [y + films + rng.normal(0, 0.5, 300) for seed in range(3)]
    >>> worse = [0.5 * y + films + rng.normal(0, 0.5, 300) for seed in range(3)]
    >>> test = paired_over_seeds(roc_auc_score, y, better, worse, n_resamples=200)
    >>> test.difference > 0, test.low > 0
    (True, True)
    """
    _check_level(level)
    t, _ = _binary_columns(y_true, np.zeros(len(np.asarray(y_true))), "paired_over_seeds")
    a = _seed_scores(scores_a, len(t), "scores_a")
    b = _seed_scores(scores_b, len(t), "scores_b")
    rng = np.random.default_rng([seed, 1])  # the seeds' draws: a stream apart from the films' draws
    diffs = np.empty(n_resamples)
    # k numbers per film (3-D scores): the metric reads them, one seed at a time
    metric_rows = _per_row(metric if a.ndim == b.ndim == 2 else lambda labels, row: metric(labels, row))
    for i, idx in enumerate(_stratified_resamples(t, n_resamples, seed)):
        per_a, per_b = metric_rows(t[idx], a[:, idx]), metric_rows(t[idx], b[:, idx])
        diffs[i] = _resampled_mean(per_a, rng) - _resampled_mean(per_b, rng)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    p = _bootstrap_p(diffs)
    observed = np.mean([metric(t, row) for row in a]) - np.mean([metric(t, row) for row in b])
    return Comparison(float(observed), float(low), float(high), float(p))


@dataclass
class SeedRuns:
    """The results of one recipe trained with several seeds (what :func:`over_seeds` returns).

    Attributes
    ----------
    name : str
        What was run, for the printed summary.
    seeds : list of int
    metrics : dict of str to ndarray (n_seeds,)
        Every number the recipe returned, one value per seed.
    kept : dict of str to list
        What was asked to be kept (test scores, models), one entry per seed.
    seconds : list of float
        Wall-clock time of each run.
    """

    name: str
    seeds: list
    metrics: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    seconds: list = field(default_factory=list)

    def mean(self, metric: str) -> float:
        """Mean over seeds."""
        return float(np.mean(self._values(metric)))

    def sd(self, metric: str) -> float:
        """Standard deviation over seeds (``ddof=1``; 0 for one seed)."""
        values = self._values(metric)
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def summary(self, metric: str, digits: int = 3) -> str:
        """``"0.912 ± 0.008"``: the mean and standard deviation over seeds."""
        return f"{self.mean(metric):.{digits}f} ± {self.sd(metric):.{digits}f}"

    def _values(self, metric):
        if metric not in self.metrics:
            raise KeyError(f"no metric {metric!r}; the recipe returned {', '.join(self.metrics) or 'none'}.")
        return self.metrics[metric]

    def __str__(self) -> str:
        names = list(self.metrics)
        width = max([len(n) for n in names] + [6]) + 2
        lines = [f"{self.name}: {len(self.seeds)} seeds", f"{'seed':<8}" + "".join(f"{n:>{width}}" for n in names)]
        for i, seed in enumerate(self.seeds):
            lines.append(f"{seed:<8}" + "".join(f"{self.metrics[n][i]:>{width}.3f}" for n in names))
        lines.append(f"{'mean':<8}" + "".join(f"{self.mean(n):>{width}.3f}" for n in names))
        lines.append(f"{'sd':<8}" + "".join(f"{self.sd(n):>{width}.3f}" for n in names))
        return "\n".join(lines)


def over_seeds(recipe, seeds=3, *, keep=(), name: str = "recipe", verbose: bool = True) -> SeedRuns:
    """Run a training recipe once per seed and collect what it measures.

    A trained network changes with its seed, and with the CPU and thread
    count it trains on, even with TensorFlow's op determinism: one run says
    little about the recipe. Compare recipes over several seeds (mean ±
    standard deviation) and, when both are scored on the same test films,
    with one paired comparison over the seeds and the films together
    (:func:`paired_over_seeds`), not with a count of per-seed tests.

    Parameters
    ----------
    recipe : callable
        ``recipe(seed) -> dict``. Numbers (``float``, ``int``, ``bool``) are
        collected per seed into ``metrics``; anything else (an array of test
        scores, a model) is kept only if its name is in ``keep``, and
        otherwise dropped so that memory is freed after each run.
    seeds : int or sequence of int, default 3
        ``n`` means seeds ``0 .. n-1``.
    keep : sequence of str
        Names of non-numeric results to keep, e.g. ``("scores",)``.
    name : str, default "recipe"
        Shown in progress lines and the summary.
    verbose : bool, default True
        One line per seed: its numbers and time.

    Returns
    -------
    SeedRuns

    Examples
    --------
    >>> runs = over_seeds(lambda s: {"auc": 0.9 + 0.01 * s, "scores": np.zeros(3)}, 3, keep=("scores",),
    ...                   verbose=False)
    >>> runs.summary("auc"), len(runs.kept["scores"])
    ('0.910 ± 0.010', 3)
    """
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a positive count or distinct whole numbers; got {seeds!r}.")
    runs = SeedRuns(name=name, seeds=seeds)
    collected = {}
    for i, seed in enumerate(seeds):
        start = time.perf_counter()
        result = recipe(seed)
        runs.seconds.append(time.perf_counter() - start)
        if not isinstance(result, dict):
            raise TypeError(f"recipe({seed}) returned {type(result).__name__}; it must return a dict of results, "
                            "e.g. {'auc': ..., 'scores': ...}.")
        numbers = {k: float(v) for k, v in result.items() if isinstance(v, (int, float, np.number, bool, np.bool_))}
        if i == 0:
            collected = {k: [] for k in numbers}
            missing = [k for k in keep if k not in result]
            if missing:
                raise KeyError(f"keep names {missing}, which recipe({seed}) did not return; it returned {list(result)}.")
            runs.kept = {k: [] for k in keep}
        if set(numbers) != set(collected):
            raise ValueError(f"recipe({seed}) returned the numbers {sorted(numbers)}, but seed {seeds[0]} returned "
                             f"{sorted(collected)}; every seed must return the same ones.")
        for k, v in numbers.items():
            collected[k].append(v)
        for k in keep:
            runs.kept[k].append(result[k])
        if verbose:
            shown = "  ".join(f"{k} {result[k]}" if isinstance(result[k], (int, np.integer)) else f"{k} {v:.3f}"
                              for k, v in numbers.items())
            print(f"[{name}] seed {seed} ({i + 1}/{len(seeds)}): {shown}  ({runs.seconds[-1]:.0f} s)", flush=True)
        del result  # frees a model that was not asked to be kept
    runs.metrics = {k: np.asarray(v) for k, v in collected.items()}
    return runs


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
