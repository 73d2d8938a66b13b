"""Tracking moving anatomy in dynamic chest radiographs: detectors, metrics, plots.

A dynamic chest radiograph (or fluoroscopy) is a sequence of low-dose frames
in which the diaphragm and the lungs move with breathing. These helpers turn
frames into noisy *measurements* of where a structure is, score an estimate
against the phantom's ground truth, and draw tracks in one fixed visual
vocabulary (that of Labbe's *Kalman and Bayesian Filters in Python*):
measurements as hollow markers, the truth dotted, an estimate as a line with
a shaded band of plus or minus one standard deviation.

The filters themselves are taught in ``03_kalman_filter.ipynb``;
:func:`constant_velocity` builds the notebook's filterpy filter so that
``05_lstm.ipynb`` can compare its forecasts with the same one-step
predictions.

Introduced in ``03_kalman_filter.ipynb``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["detect_edge", "detect_nodule", "disc_template", "rmse", "plot_track", "constant_velocity",
           "one_step_predictions", "predict_ahead"]


def _frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must have shape (T, H, W); got {frames.shape}. Pass BreathingSequence.frames.")
    return frames


def detect_edge(frames, col: int, rows: tuple[int, int], *, sigma: float = 2.0, min_strength: float = 0.0):
    """Row of the strongest dark-to-bright edge going down one column, per frame.

    The dome of the diaphragm is where dark, aerated lung above meets the
    bright abdomen below, so down a column through the dome the intensity
    rises steeply. The profile is smoothed and differentiated with a
    derivative-of-Gaussian filter; the peak, refined to a fraction of a pixel
    with a parabola through its neighbours, is the measurement.

    Parameters
    ----------
    frames : array (T, H, W)
    col : int
        Column to search (pixels).
    rows : (int, int)
        Search only rows ``rows[0] <= r < rows[1]``.
    sigma : float, default 2
        Smoothing along the column, in pixels.
    min_strength : float, default 0
        Frames whose peak gradient is below this report NaN (no detection).

    Returns
    -------
    z : ndarray (T,)
        Measured row in pixels (NaN where nothing was found).
    strength : ndarray (T,)
        Peak gradient (grey levels per pixel).

    Examples
    --------
    >>> step = np.zeros((2, 20, 5)); step[:, 12:, :] = 200
    >>> z, s = detect_edge(step, col=2, rows=(3, 18), sigma=1.0)
    >>> z.round(2).tolist()
    [11.5, 11.5]
    """
    frames = _frames(frames)
    lo, hi = rows
    if not 1 <= lo < hi - 2 <= frames.shape[1] - 3 or not 0 <= col < frames.shape[2]:
        raise ValueError(f"rows {rows} and col {col} must lie inside frames of shape {frames.shape[1:]} "
                         "with at least 3 rows to search.")
    g = ndimage.gaussian_filter1d(frames[:, :, col].astype(np.float64), sigma, axis=1, order=1)
    k = lo + np.argmax(g[:, lo:hi], axis=1)
    t = np.arange(len(k))
    a, b, c = g[t, k - 1], g[t, k], g[t, k + 1]
    curvature = a - 2 * b + c
    offset = np.where(curvature < 0, 0.5 * (a - c) / np.where(curvature < 0, curvature, -1.0), 0.0)
    z = k + np.clip(offset, -0.5, 0.5)
    strength = b
    return np.where(strength >= min_strength, z, np.nan), strength


def disc_template(radius: float) -> np.ndarray:
    """A bright disc of ``radius`` pixels on a dark square: the template of a nodule."""
    half = int(np.ceil(radius)) + 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    return (np.hypot(yy, xx) <= radius).astype(np.float64)


def detect_nodule(frames, radius: float | None = None, *, template=None,
                  region: tuple[slice, slice] | None = None):
    """Where a template best matches each frame (normalised cross-correlation).

    The template is a bright disc of ``radius`` pixels, or ``template`` itself:
    for instance the patch around the nodule as a reader marked it on the first
    frame, which carries the nodule's own contrast and surroundings (a faint
    mass on a lung edge matches a disc poorly).

    Parameters
    ----------
    frames : array (T, H, W)
    radius : float, optional
        Nodule radius in pixels: the template is :func:`disc_template` of it.
    template : array (h, w), optional
        The patch to look for, centred on the nodule; give it or ``radius``.
    region : (slice, slice), optional
        Search only this part of the frame (rows, cols), e.g. one lung.

    Returns
    -------
    z : ndarray (T, 2)
        Best match ``(row, col)`` in pixels, in the coordinates of the frame: where
        the template's centre falls.
    score : ndarray (T,)
        Correlation at the best match, -1 to 1 (low: probably not the nodule).
    """
    from skimage.feature import match_template

    if (radius is None) == (template is None):
        raise ValueError("give the nodule's radius in pixels or a template patch, not both and not neither.")
    frames = _frames(frames)
    region = region or (slice(None), slice(None))
    r0 = region[0].start or 0
    c0 = region[1].start or 0
    template = disc_template(radius) if template is None else np.asarray(template, np.float64)
    if template.ndim != 2 or min(template.shape) < 3 or template.shape[0] % 2 == 0 or template.shape[1] % 2 == 0:
        raise ValueError(f"the template must be a 2-D patch with an odd number of rows and columns, at least 3 "
                         f"(so that it has a centre pixel); got shape {template.shape}.")
    z = np.empty((len(frames), 2))
    score = np.empty(len(frames))
    for i, frame in enumerate(frames):
        match = match_template(frame[region].astype(np.float64), template, pad_input=True)
        r, c = np.unravel_index(np.argmax(match), match.shape)
        z[i], score[i] = (r + r0, c + c0), match[r, c]
    return z, score


def rmse(estimate, truth) -> float:
    """Root-mean-square error in pixels, over frames where ``estimate`` is not NaN.

    For 2-D positions ``(T, 2)`` the error of a frame is the Euclidean distance.

    Examples
    --------
    >>> rmse([1.0, np.nan, 3.0], [0.0, 0.0, 0.0])
    2.23606797749979
    >>> rmse([[3.0, 4.0]], [[0.0, 0.0]])
    5.0
    """
    estimate, truth = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate {estimate.shape} and truth {truth.shape} must have the same shape.")
    err = estimate - truth
    sq = (err**2).sum(axis=1) if err.ndim == 2 else err**2
    if np.isnan(sq).all():
        raise ValueError("every estimate is NaN: there is nothing to score.")
    return float(np.sqrt(np.nanmean(sq)))


def plot_track(ax, t, *, truth=None, z=None, x=None, std=None, label: str = "estimate", color: str = "C0"):
    """Draw a track in the kit's vocabulary; returns ``ax``.

    Parameters
    ----------
    ax : matplotlib Axes
    t : array (T,)
        Time in seconds.
    truth : array (T,), optional
        Drawn dotted, black.
    z : array (T,), optional
        Measurements, drawn as hollow markers (NaN: missing).
    x : array (T,), optional
        The estimate, drawn as a line.
    std : array (T,), optional
        One standard deviation of ``x``, drawn as a shaded band.
    """
    if truth is not None:
        ax.plot(t, truth, ":", color="k", lw=1.5, label="truth")
    if z is not None:
        ax.plot(t, z, "o", mfc="none", mec="gray", ms=3.5, mew=0.8, label="measurements")
    if x is not None:
        ax.plot(t, x, "-", color=color, lw=1.3, label=label)
        if std is not None:
            ax.fill_between(t, x - std, x + std, color=color, alpha=0.2, lw=0)
    ax.set_xlabel("time (s)")
    return ax


def constant_velocity(dt: float, q: float, r: float, x0: float = 0.0, p0: float = 100.0):
    """The 1-D constant-velocity Kalman filter of notebook 03, as a ``filterpy`` filter.

    State ``x = [position, velocity]``; ``F = [[1, dt], [0, 1]]``; ``Q`` the
    discrete white-noise acceleration model with variance ``q``
    (``filterpy.common.Q_discrete_white_noise``); ``H = [[1, 0]]``; ``R = r``.

    Parameters
    ----------
    dt : float
        Time between frames (s).
    q : float
        Variance of the acceleration noise (pixels^2 / s^4).
    r : float
        Variance of a measurement (pixels^2).
    x0 : float, default 0
        Initial position (pixels); velocity starts at 0.
    p0 : float, default 100
        Initial variance of position and velocity.

    Returns
    -------
    filterpy.kalman.KalmanFilter
    """
    from filterpy.common import Q_discrete_white_noise
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.x = np.array([[x0], [0.0]])
    kf.F = np.array([[1.0, dt], [0.0, 1.0]])
    kf.H = np.array([[1.0, 0.0]])
    kf.P = np.eye(2) * p0
    kf.R = np.array([[r]])
    kf.Q = Q_discrete_white_noise(dim=2, dt=dt, var=q)
    return kf


def one_step_predictions(z, dt: float, q: float, r: float, *, gate: float | None = None,
                         reopen: int | None = None) -> np.ndarray:
    """Each frame's position predicted from the frames before it (constant velocity).

    The same as :func:`predict_ahead` with ``ahead=1``: the filter's prior mean at each frame.

    Examples
    --------
    >>> float(one_step_predictions(np.arange(6.0), dt=1.0, q=0.01, r=0.01)[-1].round(2))
    5.0
    """
    return predict_ahead(z, dt, q, r, ahead=1, gate=gate, reopen=reopen)


def predict_ahead(z, dt: float, q: float, r: float, *, ahead: int = 1, gate: float | None = None,
                  reopen: int | None = None) -> np.ndarray:
    """Each frame's position predicted from the frames up to ``ahead`` frames before it (constant velocity).

    The filter runs over the measurements as they arrive; the prediction for frame ``k`` is the filter's state
    after frame ``k - ahead`` carried forward ``ahead`` steps by the motion model, :math:`F^{ahead}`. Missing
    measurements (NaN) are skipped: the filter predicts through them.

    Parameters
    ----------
    z : array (T,)
        Measured positions (pixels).
    dt, q, r : float
        As in :func:`constant_velocity`.
    ahead : int, default 1
        How many frames ahead to predict (1: the next frame).
    gate : float, optional
        Skip the update when the squared Mahalanobis distance of the
        innovation exceeds this (e.g. ``scipy.stats.chi2.ppf(0.99, 1)``), as
        notebook 03 does with outliers.
    reopen : int, optional
        After this many measurements rejected in a row, reset the covariance
        to its starting value, so that a filter that has lost track accepts
        the next measurement instead of rejecting every later one (notebook 03,
        section 8).

    Returns
    -------
    ndarray (T,)
        The predicted position at each frame. The first ``ahead`` frames have no measurement that far back; they
        get the first measurement carried forward (the filter starts at rest).

    Examples
    --------
    A steady motion of one pixel per frame, predicted three frames ahead:

    >>> float(predict_ahead(np.arange(30.0), dt=1.0, q=0.01, r=0.01, ahead=3)[-1].round(2))
    29.0
    """
    if isinstance(ahead, bool) or not isinstance(ahead, (int, np.integer)) or ahead < 1:
        raise ValueError(f"ahead must be a whole number of frames, 1 or more; got {ahead!r}.")
    z = np.asarray(z, np.float64)
    first = z[~np.isnan(z)][0]
    kf = constant_velocity(dt, q, r, x0=first)
    p0 = kf.P.copy()
    carry = np.linalg.matrix_power(kf.F, ahead - 1)  # from the prior at frame k - ahead + 1 to frame k
    priors = np.empty((len(z), 2))
    rejected = 0
    for k, value in enumerate(z):
        kf.predict()
        priors[k] = kf.x[:, 0]
        if np.isnan(value):
            continue
        innovation = value - kf.x[0, 0]
        if gate is None or innovation**2 / (kf.P[0, 0] + kf.R[0, 0]) <= gate:
            kf.update(value)
            rejected = 0
        else:
            rejected += 1
            if reopen is not None and rejected >= reopen:
                kf.P = p0.copy()  # it has lost track: forget its confidence, so the next measurement gets in
                rejected = 0
    predicted = np.full(len(z), first)
    predicted[ahead - 1:] = (priors[:len(z) - ahead + 1] @ carry.T)[:, 0]
    return predicted
