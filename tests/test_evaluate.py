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
