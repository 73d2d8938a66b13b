import numpy as np
import pytest

from medkit import evaluate


def test_binary_metrics_against_sklearn():
    from sklearn.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = evaluate.binary_metrics(y, p, threshold=0.5)
    pred = p >= 0.5
    assert m["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert m["specificity"] == pytest.approx(recall_score(1 - y, ~pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["tn"] + m["fp"] + m["fn"] + m["tp"] == 200


def test_binary_metrics_refuses_multilabel():
    with pytest.raises(ValueError, match="one label column"):
        evaluate.binary_metrics(np.zeros((4, 2)), np.zeros((4, 2)))


def test_auc_refuses_a_column_with_one_class():
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] hold only one class"):
        evaluate.auc([[0, 1], [1, 1]], [[0.2, 0.3], [0.8, 0.9]])


def test_auc_ci_brackets_the_auc_and_narrows_with_more_films():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 1600):
        y = rng.integers(0, 2, n)
        score = y + rng.normal(0, 1, n)
        est = evaluate.auc_ci(y, score, n_resamples=400)
        assert est.value == evaluate.auc(y, score) and 0.6 < est.value < 0.9
        assert est.low < est.value < est.high
        widths.append(est.high - est.low)
    assert widths[1] < widths[0] / 2.5  # the width shrinks as 1/sqrt(n): 4x fewer would be 1/4


def test_auc_ci_is_reproducible_and_refuses_multilabel():
    y = np.tile([0, 1], 50)
    s = np.linspace(0, 1, 100)
    assert evaluate.auc_ci(y, s, seed=3) == evaluate.auc_ci(y, s, seed=3)
    assert str(evaluate.auc_ci(y, s)).count("[") == 1
    with pytest.raises(ValueError, match="one label column"):
        evaluate.auc_ci(np.zeros((4, 2)), np.zeros((4, 2)))


def test_bootstrap_ci_of_average_precision():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    score = y + rng.normal(0, 1.2, 600)
    est = evaluate.bootstrap_ci(average_precision_score, y, score, n_resamples=300)
    assert est.value == pytest.approx(average_precision_score(y, score))
    assert est.low < est.value < est.high
    with pytest.raises(ValueError, match="only one class"):
        evaluate.bootstrap_ci(average_precision_score, np.ones(10), np.linspace(0, 1, 10))


def test_threshold_for_sensitivity_flags_the_target_share():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 1000)
    p = 1 / (1 + np.exp(-(2 * y - 1) - rng.normal(0, 1.5, 1000)))
    for target in (0.5, 0.8, 0.95, 1.0):
        threshold = evaluate.threshold_for_sensitivity(y, p, target)
        flagged = p[y == 1] >= threshold
        assert flagged.mean() >= target
        # the highest such threshold: one positive fewer would fall short
        assert (p[y == 1] > threshold).mean() < target
    with pytest.raises(ValueError, match="sensitivity must be in"):
        evaluate.threshold_for_sensitivity(y, p, 1.5)


def test_calibration_error_against_its_definition():
    rng = np.random.default_rng(5)
    p = rng.random(5000)
    calibrated = (rng.random(5000) < p).astype(int)
    assert evaluate.calibration_error(calibrated, p) < 0.03
    # Always saying 0.9 when half are positive is off by 0.4.
    assert evaluate.calibration_error(np.arange(5000) % 2, np.full(5000, 0.9)) == pytest.approx(0.4)
    assert evaluate.calibration_error([1, 0], [1.0, 0.0]) == 0.0  # p = 1 falls in the last bin
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        evaluate.calibration_error([0, 1], [-0.1, 0.5])


def test_temperature_scaling_keeps_the_ranking_and_lowers_the_log_loss():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 4000)
    z = 2 * y - 1 + rng.normal(0, 1, 4000)
    overconfident = 1 / (1 + np.exp(-6 * z))  # the calibrated probability is sigmoid(2 z): T = 3
    temperature = evaluate.fit_temperature(y, overconfident)
    assert 2.5 < temperature < 3.5
    rescaled = evaluate.apply_temperature(overconfident, temperature)
    assert log_loss(y, rescaled) < log_loss(y, overconfident)
    assert evaluate.calibration_error(y, rescaled) < evaluate.calibration_error(y, overconfident)
    assert evaluate.auc(y, rescaled) == pytest.approx(evaluate.auc(y, overconfident))
    with pytest.raises(ValueError, match="temperature must be positive"):
        evaluate.apply_temperature(rescaled, 0.0)
