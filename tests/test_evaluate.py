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
