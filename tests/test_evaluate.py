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


def _brute_force_delong(y, a, b):
    # DeLong et al. (1988) written out pair by pair: psi(x, y) = 1, 1/2 or 0 for every positive-negative pair.
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)
    v10, v01, aucs = [], [], []
    for s in (a, b):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))  # one per positive
        v01.append(psi.mean(axis=0))  # one per negative
    s10 = np.array([[np.sum((v10[i] - aucs[i]) * (v10[j] - aucs[j])) / (m - 1) for j in (0, 1)] for i in (0, 1)])
    s01 = np.array([[np.sum((v01[i] - aucs[i]) * (v01[j] - aucs[j])) / (n - 1) for j in (0, 1)] for i in (0, 1)])
    cov = s10 / m + s01 / n
    return aucs[0] - aucs[1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


def test_delong_matches_the_pairwise_definition_with_ties():
    from scipy.stats import norm

    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 60)
    shared = rng.normal(0, 1, 60)
    a = np.round(y + shared + rng.normal(0, 0.7, 60), 1)  # rounded, so there are ties within and across classes
    b = np.round(0.6 * y + shared + rng.normal(0, 0.7, 60), 1)
    diff, var = _brute_force_delong(y, a, b)
    test = evaluate.delong_test(y, a, b)
    assert abs(test.difference - diff) < 1e-8
    assert abs(test.difference - (evaluate.auc(y, a) - evaluate.auc(y, b))) < 1e-8
    assert abs(test.p_value - 2 * norm.sf(abs(diff) / np.sqrt(var))) < 1e-8
    assert abs((test.high - test.low) - 2 * norm.ppf(0.975) * np.sqrt(var)) < 1e-8


def test_delong_is_calibrated_when_two_models_are_equally_good():
    # Two models with the same AUC by construction: about 5 % of test splits should give p < 0.05.
    rng = np.random.default_rng(12)
    p_values = []
    for _ in range(400):
        y = rng.integers(0, 2, 200)
        shared = rng.normal(0, 1, 200)
        p_values.append(evaluate.delong_test(y, y + shared + rng.normal(0, 1, 200),
                                             y + shared + rng.normal(0, 1, 200)).p_value)
    assert 0.02 < np.mean(np.array(p_values) < 0.05) < 0.09
    same = evaluate.delong_test(y, shared, shared)
    assert same.difference == 0 and same.p_value == 1.0


def test_paired_bootstrap_agrees_with_delong_and_is_narrower_than_unpaired():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(13)
    y = rng.integers(0, 2, 400)
    shared = rng.normal(0, 1, 400)
    a, b = y + shared + rng.normal(0, 0.5, 400), 0.7 * y + shared + rng.normal(0, 0.5, 400)
    paired = evaluate.paired_bootstrap(roc_auc_score, y, a, b, n_resamples=500)
    delong = evaluate.delong_test(y, a, b)
    assert paired.difference == pytest.approx(delong.difference)
    assert abs(paired.low - delong.low) < 0.015 and abs(paired.high - delong.high) < 0.015
    # Separate intervals of the two AUCs overlap, though the paired difference is clearly positive.
    ca, cb = evaluate.auc_ci(y, a, n_resamples=500), evaluate.auc_ci(y, b, n_resamples=500)
    assert ca.low < cb.high and paired.low > 0 and delong.p_value < 0.01


def test_bootstrap_ci_on_a_small_split_resamples_each_class():
    # 2 positives in 12 films: a plain bootstrap draws no positive in about 1 resample of 6, and gave [nan, nan].
    import warnings

    y = np.array([0] * 10 + [1] * 2)
    s = np.linspace(0, 1, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = evaluate.auc_ci(y, s, n_resamples=300)
    assert est.value == 1.0 and np.isfinite([est.low, est.high]).all() and est.low <= est.high <= 1.0
    s_mixed = s.copy()
    s_mixed[-1] = 0.05  # one positive now ranks below most negatives
    mixed = evaluate.auc_ci(y, s_mixed, n_resamples=300)
    assert mixed.low < mixed.value < mixed.high


def test_wilson_interval_against_its_formula():
    from scipy.stats import norm

    z = norm.ppf(0.975)
    for k, n in ((0, 10), (3, 10), (20, 20), (470, 500)):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        est = evaluate.proportion_ci(k, n)
        assert est.value == p
        assert est.low == pytest.approx(max(0.0, centre - half), abs=1e-12)
        assert est.high == pytest.approx(min(1.0, centre + half), abs=1e-12)
    with pytest.raises(ValueError, match="successes <= n"):
        evaluate.proportion_ci(5, 3)


def test_binary_metrics_ci_counts_the_right_films():
    y = np.array([0] * 30 + [1] * 10)
    p = np.concatenate([np.full(27, 0.1), np.full(3, 0.9), np.full(8, 0.8), np.full(2, 0.2)])
    m = evaluate.binary_metrics_ci(y, p, threshold=0.5)
    assert m["sensitivity"] == evaluate.proportion_ci(8, 10)
    assert m["specificity"] == evaluate.proportion_ci(27, 30)
    assert m["accuracy"] == evaluate.proportion_ci(35, 40)


def test_over_seeds_collects_numbers_keeps_what_is_asked_and_checks_the_recipe(capsys):
    def recipe(seed):
        rng = np.random.default_rng(seed)
        return {"auc": 0.8 + 0.01 * seed, "epochs": 3 + seed, "scores": rng.random(4), "model": object()}

    runs = evaluate.over_seeds(recipe, [2, 5, 7], keep=("scores",), name="toy")
    assert runs.seeds == [2, 5, 7] and list(runs.metrics) == ["auc", "epochs"]
    np.testing.assert_allclose(runs.metrics["auc"], [0.82, 0.85, 0.87])
    assert runs.mean("epochs") == pytest.approx(23 / 3) and runs.sd("auc") == pytest.approx(np.std([0.82, 0.85, 0.87], ddof=1))
    assert set(runs.kept) == {"scores"} and len(runs.kept["scores"]) == 3
    assert runs.summary("auc") == f"{np.mean([0.82, 0.85, 0.87]):.3f} ± {np.std([0.82, 0.85, 0.87], ddof=1):.3f}"
    assert capsys.readouterr().out.count("[toy] seed") == 3
    assert "mean" in str(runs) and "sd" in str(runs)
    with pytest.raises(KeyError, match="did not return"):
        evaluate.over_seeds(recipe, 1, keep=("weights",), verbose=False)
    with pytest.raises(TypeError, match="must return a dict"):
        evaluate.over_seeds(lambda s: 0.5, 2, verbose=False)
    with pytest.raises(ValueError, match="same ones"):
        evaluate.over_seeds(lambda s: {"auc": 0.5} if s == 0 else {"acc": 0.5}, 2, verbose=False)
    with pytest.raises(ValueError, match="distinct"):
        evaluate.over_seeds(recipe, [1, 1], verbose=False)


# ---------------------------------------------------------------- one comparison over seeds and films


def _separation(y, s):
    """A cheap metric for simulations: mean score of positives minus mean score of negatives."""
    return s[y == 1].mean() - s[y == 0].mean()


def test_paired_over_seeds_finds_a_real_difference_and_reports_the_seed_average():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    shared = rng.normal(0, 1, 400)
    a = np.array([y + shared + rng.normal(0, 0.6, 400) for _ in range(3)])
    b = np.array([0.6 * y + shared + rng.normal(0, 0.6, 400) for _ in range(4)])  # seed counts may differ
    test = evaluate.paired_over_seeds(roc_auc_score, y, a, b, n_resamples=300)
    expected = np.mean([roc_auc_score(y, s) for s in a]) - np.mean([roc_auc_score(y, s) for s in b])
    assert test.difference == pytest.approx(expected) and 0 < test.low < test.difference < test.high
    assert test.p_value < 0.01


def test_paired_over_seeds_widens_with_the_spread_between_seeds():
    # The same films, the same mean difference; in one case the seeds of recipe a disagree a lot. A film-only
    # bootstrap cannot see that spread; this one must.
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    base = y + rng.normal(0, 1, 500)
    b = np.array([base + rng.normal(0, 0.05, 500) for _ in range(3)])
    steady = np.array([base + 0.3 * y + rng.normal(0, 0.05, 500) for _ in range(3)])
    erratic = np.array([base + k * y + rng.normal(0, 0.05, 500) for k in (-0.3, 0.3, 0.9)])
    narrow = evaluate.paired_over_seeds(_separation, y, steady, b, n_resamples=400)
    wide = evaluate.paired_over_seeds(_separation, y, erratic, b, n_resamples=400)
    assert narrow.difference == pytest.approx(wide.difference, abs=0.02)
    assert wide.high - wide.low > 3 * (narrow.high - narrow.low)
    assert narrow.low > 0 and wide.low < 0  # the erratic recipe's advantage is not established


def test_paired_over_seeds_covers_zero_when_the_recipes_are_alike():
    # Both recipes draw their seeds from one distribution: the 90 % interval holds 0 in most simulated studies.
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(40):
        y = rng.integers(0, 2, 200)
        films = y + rng.normal(0, 1, 200)
        a, b = (np.array([films + rng.normal(0, 0.5) * y + rng.normal(0, 0.3, 200) for _ in range(3)]) for _ in "ab")
        test = evaluate.paired_over_seeds(_separation, y, a, b, level=0.9, n_resamples=200, seed=int(rng.integers(1000)))
        covered += test.low <= 0 <= test.high
    # Nominal 36 of 40; 34 here. Over 150 such studies (another seed) 122 were covered, 81 %: with three seeds the
    # interval runs a little narrow, as the docstring says. Without the sqrt(k / (k - 1)) correction: 31 of 40.
    assert covered >= 32, covered


def test_paired_over_seeds_takes_a_recipe_without_a_seed_as_one_row():
    # Both recipes free of seeds: only the films are resampled, so it is the paired bootstrap over films.
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    a, b = y + rng.normal(0, 1, 300), 0.5 * y + rng.normal(0, 1, 300)
    over_seeds = evaluate.paired_over_seeds(_separation, y, a, b[:, None], n_resamples=200, seed=5)
    films_only = evaluate.paired_bootstrap(_separation, y, a, b, n_resamples=200, seed=5)
    assert over_seeds == films_only
    # Three seeds against a recipe without one: the difference is the seed average minus its one score.
    seeds = np.array([a + rng.normal(0, 0.3, 300) for _ in range(3)])
    test = evaluate.paired_over_seeds(_separation, y, seeds, b, n_resamples=200)
    assert test.difference == pytest.approx(np.mean([_separation(y, s) for s in seeds]) - _separation(y, b))


def test_paired_over_seeds_resamples_films_with_all_their_numbers():
    # k numbers per film travel together: a metric that reads only the first column gives exactly the result of
    # passing that column alone (the same resamples), and one that reads the second sees what is in it.
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 300)
    a, b = (np.array([y + rng.normal(0, 1, 300) for _ in range(3)]) for _ in "ab")
    noise = rng.normal(0, 1, (3, 300))
    first = evaluate.paired_over_seeds(lambda t, s: _separation(t, s[:, 0]), y, np.stack([a, noise], axis=-1),
                                       np.stack([b, noise], axis=-1), n_resamples=200)
    assert first == evaluate.paired_over_seeds(_separation, y, a, b, n_resamples=200)
    second = evaluate.paired_over_seeds(lambda t, s: _separation(t, s[:, 1]), y, np.stack([a, 2 * y + noise], axis=-1),
                                        np.stack([a, noise], axis=-1), n_resamples=200)
    assert second.difference == pytest.approx(2.0) and second.low > 1.5


def test_bootstraps_compute_the_auc_by_ranks_with_the_same_result():
    # For the AUC, the bootstraps compute every row's value on a resample at once from midranks; wrapping the
    # metric in a lambda takes the general path, one call per row. Scores rounded to 2 decimals make ties, which a bootstrap's
    # repeated films make anyway: both paths must count them as half.
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 250)
    a = np.round(np.array([y + rng.normal(0, 1, 250) for _ in range(3)]), 2)
    b = np.round(np.array([0.7 * y + rng.normal(0, 1, 250) for _ in range(2)]), 2)
    general = lambda t, s: roc_auc_score(t, s)  # noqa: E731
    for metric in (evaluate.auc, roc_auc_score):
        fast = evaluate.paired_over_seeds(metric, y, a, b, n_resamples=150, seed=3)
        assert np.allclose(fast, evaluate.paired_over_seeds(general, y, a, b, n_resamples=150, seed=3), atol=1e-12)
        fast = evaluate.paired_bootstrap(metric, y, a[0], b[0], n_resamples=150, seed=3)
        assert np.allclose(fast, evaluate.paired_bootstrap(general, y, a[0], b[0], n_resamples=150, seed=3), atol=1e-12)
        fast = evaluate.bootstrap_ci(metric, y, a[0], n_resamples=150, seed=3)
        assert np.allclose(fast, evaluate.bootstrap_ci(general, y, a[0], n_resamples=150, seed=3), atol=1e-12)


def test_paired_over_seeds_says_what_shape_it_needs():
    y = np.array([0, 1] * 10)
    with pytest.raises(ValueError, match=r"one row of scores per seed.*shape \(seeds, 20\)"):
        evaluate.paired_over_seeds(_separation, y, np.zeros((3, 19)), np.zeros((3, 20)))
    with pytest.raises(ValueError, match="at least 2"):
        evaluate.paired_over_seeds(_separation, y, np.zeros((1, 20)), np.zeros((3, 20)))
    with pytest.raises(ValueError, match="one class"):
        evaluate.paired_over_seeds(_separation, np.ones(20), np.zeros((3, 20)), np.zeros((3, 20)))


def test_bootstrap_p_values_are_never_zero():
    # Every resampled difference above zero: the p-value is the smallest the resamples can support, 2 / (B + 1).
    y = np.array([0, 1] * 50)
    good, bad = y + 0.01 * np.arange(100), np.zeros(100) + 0.01 * np.arange(100)
    one = evaluate.paired_bootstrap(_separation, y, good, bad, n_resamples=999)
    seeds = evaluate.paired_over_seeds(_separation, y, np.array([good, good + 0.1]), np.array([bad, bad]), n_resamples=999)
    assert one.p_value == seeds.p_value == pytest.approx(2 / 1000)
