import numpy as np
import pytest

from medkit import tracking
from medkit.data import phantom


def _step_frames(rows, height=40, width=9):
    """Frames dark above ``row`` and bright below it, with a linear ramp at fractional rows."""
    r = np.arange(height)[:, None]
    return np.stack([np.clip((r - row + 0.5) * 200, 0, 200) * np.ones((1, width)) for row in rows])


def test_detect_edge_finds_a_moving_step_to_a_fraction_of_a_pixel():
    rows = np.array([10.0, 15.3, 20.7, 25.0])
    z, strength = tracking.detect_edge(_step_frames(rows), col=4, rows=(3, 37), sigma=1.5)
    np.testing.assert_allclose(z, rows, atol=0.15)
    assert (strength > 0).all()


def test_detect_edge_reports_nan_below_min_strength_and_rejects_bad_windows():
    frames = _step_frames([12.0, 12.0])
    frames[1] *= 0.01  # almost no contrast
    z, strength = tracking.detect_edge(frames, col=4, rows=(3, 37), min_strength=5.0)
    assert np.isfinite(z[0]) and np.isnan(z[1])
    with pytest.raises(ValueError, match="inside frames"):
        tracking.detect_edge(frames, col=4, rows=(0, 60))
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        tracking.detect_edge(frames[0], col=4, rows=(3, 37))


def test_detect_nodule_finds_a_disc_inside_the_region():
    frames = np.full((3, 48, 48), 40.0)
    centres = [(20, 30), (22, 31), (24, 29)]
    for f, (r, c) in zip(frames, centres):
        yy, xx = np.mgrid[:48, :48]
        f[np.hypot(yy - r, xx - c) <= 3] = 200
    frames[:, 5:9, 5:9] = 255  # a bright distractor outside the region
    z, score = tracking.detect_nodule(frames, 3.0, region=(slice(10, 40), slice(15, 45)))
    np.testing.assert_array_equal(z, np.array(centres, float))
    assert (score > 0.9).all()


def test_detect_nodule_follows_a_patch_taken_from_the_first_frame():
    rng = np.random.default_rng(0)
    background = rng.uniform(0, 255, (48, 48))  # texture the patch carries with it
    shifts = [(0, 0), (3, -2), (-4, 5)]
    frames = np.stack([np.roll(background, s, axis=(0, 1)) for s in shifts])
    template = frames[0, 20 - 5:20 + 6, 24 - 5:24 + 6]  # centred on (20, 24)
    z, score = tracking.detect_nodule(frames, template=template, region=(slice(8, 40), slice(10, 40)))
    np.testing.assert_array_equal(z, np.array([(20 + dr, 24 + dc) for dr, dc in shifts], float))
    assert (score > 0.99).all()


def test_detect_nodule_wants_a_radius_or_a_centred_template():
    frames = np.zeros((2, 20, 20))
    with pytest.raises(ValueError, match="not both and not neither"):
        tracking.detect_nodule(frames)
    with pytest.raises(ValueError, match="not both"):
        tracking.detect_nodule(frames, 2.0, template=np.ones((3, 3)))
    with pytest.raises(ValueError, match="odd number of rows"):
        tracking.detect_nodule(frames, template=np.ones((4, 5)))


def test_rmse_ignores_missing_and_refuses_shape_mismatch():
    assert tracking.rmse([1.0, np.nan], [0.0, 5.0]) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        tracking.rmse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="nothing to score"):
        tracking.rmse([np.nan], [0.0])


def test_one_step_predictions_follow_linear_motion_and_bridge_gaps():
    z = 2.0 + 0.5 * np.arange(40)
    z[20:23] = np.nan
    pred = tracking.one_step_predictions(z, dt=1.0, q=1e-4, r=1e-2)
    truth = 2.0 + 0.5 * np.arange(40)
    assert np.abs(pred[10:] - truth[10:]).max() < 0.05


def test_constant_velocity_filter_reduces_error_on_a_phantom_sequence():
    seq = phantom.breathing_sequence(120, size=96, seed=2, fps=15, photons=30, excursion=0.2)
    truth = seq.domes[:, 0, 0]
    z, _ = tracking.detect_edge(seq.frames, int(round(seq.domes[0, 0, 1])),
                                (int(truth.min()) - 10, int(truth.max()) + 10), sigma=3)
    pred = tracking.one_step_predictions(z, dt=1 / 15, q=1000.0, r=1.0)
    # Predicted from earlier frames only, yet closer to the truth than the measurement of the frame itself.
    assert tracking.rmse(pred, truth) < tracking.rmse(z, truth)
    kf = tracking.constant_velocity(1 / 15, 1000.0, 1.0, x0=z[0])
    means, _, _, _ = kf.batch_filter(list(z))
    assert tracking.rmse(means[:, 0, 0], truth) < tracking.rmse(z, truth)


def test_breathing_sequence_dose_is_checked():
    with pytest.raises(ValueError, match="photons"):
        phantom.breathing_sequence(10, size=32, photons=0)
    low = phantom.breathing_sequence(10, size=32, seed=1, photons=5).frames.astype(float)
    high = phantom.breathing_sequence(10, size=32, seed=1, photons=5000).frames.astype(float)
    assert np.abs(np.diff(low, axis=0)).mean() > np.abs(np.diff(high, axis=0)).mean()  # lower dose, noisier frames


def test_one_step_predictions_gate_ignores_a_gross_error():
    z = 0.3 * np.arange(30.0)
    z[15] = 80.0  # a detector failure
    plain = tracking.one_step_predictions(z, dt=1.0, q=1e-3, r=0.1)
    gated = tracking.one_step_predictions(z, dt=1.0, q=1e-3, r=0.1, gate=6.63)
    truth = 0.3 * np.arange(30.0)
    assert np.abs(gated[16:] - truth[16:]).max() < 0.2 < np.abs(plain[16:] - truth[16:]).max()


def test_a_gate_that_locks_a_lost_filter_out_reopens():
    from scipy import stats

    # The target jumps by 30 px and stays there: every later measurement looks like an outlier to the gated filter.
    z = np.r_[np.zeros(30), np.full(40, 30.0)] + np.random.default_rng(0).normal(0, 0.5, 70)
    gate = stats.chi2.ppf(0.99, 1)
    locked = tracking.one_step_predictions(z, 1.0, q=0.01, r=0.25, gate=gate)
    reopened = tracking.one_step_predictions(z, 1.0, q=0.01, r=0.25, gate=gate, reopen=5)
    locked_error, reopened_error = (tracking.rmse(p[40:], np.full(30, 30.0)) for p in (locked, reopened))
    assert reopened_error < 1.5 and locked_error > 3 * reopened_error


def test_predict_ahead_carries_the_state_forward_by_the_motion_model():
    # Against filterpy stepped by hand: after frame k - 4, four predict() calls with no update give frame k.
    from copy import deepcopy

    rng = np.random.default_rng(1)
    z = 5.0 * np.sin(np.arange(60) / 6.0) + rng.normal(0, 0.3, 60)
    ahead = tracking.predict_ahead(z, 0.1, q=50.0, r=0.1, ahead=4)
    kf = tracking.constant_velocity(0.1, 50.0, 0.1, x0=z[0])
    for k in range(len(z) - 4):
        kf.predict()
        kf.update(z[k])
        free = deepcopy(kf)
        for _ in range(4):
            free.predict()
        assert np.isclose(ahead[k + 4], free.x[0, 0]), k
    assert np.array_equal(tracking.predict_ahead(z, 0.1, 50.0, 0.1, ahead=1), tracking.one_step_predictions(z, 0.1, 50.0, 0.1))


def test_predict_ahead_overshoots_a_turn_more_the_further_it_looks():
    t = np.arange(200) / 15
    z = 10 * np.cos(2 * np.pi * t / 4)  # a breath every 4 s, no noise
    errors = [tracking.rmse(tracking.predict_ahead(z, 1 / 15, 3000.0, 0.8, ahead=h)[30:], z[30:]) for h in (1, 4, 7)]
    assert errors[0] < errors[1] < errors[2]


@pytest.mark.parametrize("ahead", [0, -1, 2.5, True])
def test_predict_ahead_refuses_a_step_that_is_not_a_whole_frame(ahead):
    with pytest.raises(ValueError, match="whole number of frames"):
        tracking.predict_ahead(np.arange(5.0), 1.0, 0.1, 0.1, ahead=ahead)
