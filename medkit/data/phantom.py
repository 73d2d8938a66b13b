"""A synthetic frontal chest radiograph, drawn from physics and anatomy.

A radiograph records X-rays that pass through the body. Each ray loses
intensity as ``I = I0 * exp(-A)``, where ``A = sum(mu_k * t_k)`` adds up the
attenuation coefficient ``mu`` times the path length ``t`` through every
tissue on the way (the Beer-Lambert law). The image shows ``-log(I / I0)``,
so dense, thick structures (bone, heart, abdomen) are bright and air-filled
lung is dark.

This module builds that line integral for a simplified patient. Every organ
is a projected ellipsoid (its path length is ``2c * sqrt(1 - q)`` where
``q`` is the elliptic radius) or a band around a curve, placed in a canonical
frame ``(u, v)`` that runs from -1 to 1 across the film, ``u`` to the image
right (the patient's left: films are read as if facing the patient) and ``v``
downwards. A per-image rotation, shift and scale maps the canonical frame to
pixels, so positioning varies as it does in a real department.

Findings change the line integral the way disease changes the chest:
consolidation and effusion replace air with fluid, a nodule adds a sphere of
tissue, cardiomegaly widens the heart (cardiothoracic ratio above 0.5), a
pneumothorax adds air and removes the lung markings. Each finding comes with
its ground-truth mask.

Everything is vectorised over images: the parameters of ``n`` patients are
arrays of shape ``(n,)`` and each drawing step works on the whole stack
``(n, size, size)`` at once.

Introduced in ``01_chest_xray_data.ipynb``; the breathing sequences are used
in ``03_kalman_filter.ipynb`` and ``05_lstm.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "FINDINGS",
    "DEFAULT_PREVALENCE",
    "PhantomImages",
    "BreathingSequence",
    "generate",
    "breathing_sequence",
]

#: The findings the phantom can draw, in label-column order.
FINDINGS = ("pneumonia", "nodule", "cardiomegaly", "effusion", "pneumothorax")

#: Default probability of each finding (independent draws, so multi-label).
DEFAULT_PREVALENCE = {
    "pneumonia": 0.4,
    "nodule": 0.15,
    "cardiomegaly": 0.15,
    "effusion": 0.15,
    "pneumothorax": 0.08,
}

# Attenuation of each material per unit of canonical path length, relative to
# soft tissue. Bone attenuates about twice as much as soft tissue at chest
# radiography energies; lung air removes tissue that would otherwise be there.
_MU_TISSUE = 1.0
_MU_BONE = 2.2
_MU_AIR_IN_LUNG = 0.85  # aerated lung is ~15 % tissue by volume

_CHUNK = 256  # images drawn at once; bounds memory at ~30 MB per array at 64 px


@dataclass(frozen=True)
class PhantomImages:
    """Synthetic radiographs with their labels and ground truth.

    Attributes
    ----------
    images : ndarray, uint8, shape (n, size, size)
        The radiographs, windowed to 0-255 (bright = dense).
    labels : ndarray, uint8, shape (n, 5)
        One column per finding in :data:`FINDINGS` (1 = present).
    masks : ndarray of bool, shape (n, 5, size, size), or None
        Where each finding is; all False where it is absent. None unless
        ``masks=True`` was asked for.
    ctr : ndarray, float32, shape (n,)
        The cardiothoracic ratio drawn (heart width / inner thoracic width).
    marker : ndarray of bool, shape (n,)
        Whether the burned-in marker (the confounder) was drawn.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    ctr: np.ndarray
    marker: np.ndarray

    findings = FINDINGS

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class BreathingSequence:
    """Frames of one phantom patient breathing, with ground truth.

    Attributes
    ----------
    frames : ndarray, uint8, shape (T, size, size)
        The radiographs, windowed once for the whole sequence (no flicker).
    t : ndarray, float64, shape (T,)
        Acquisition time of each frame in seconds.
    domes : ndarray, float64, shape (T, 2, 2)
        Pixel position ``(row, col)`` of the apex of the image-left
        (patient's right) and image-right (patient's left) hemidiaphragm.
    nodule : ndarray, float64, shape (T, 2)
        Pixel position ``(row, col)`` of the nodule centre.
    nodule_radius : float
        Nodule radius in pixels.
    pattern : str
        ``"normal"``, ``"irregular"`` or ``"paralysed"``.
    abnormal : bool
        True when a hemidiaphragm does not move normally (``"paralysed"``).
    """

    frames: np.ndarray
    t: np.ndarray
    domes: np.ndarray
    nodule: np.ndarray
    nodule_radius: float
    pattern: str
    abnormal: bool

    @property
    def fps(self) -> float:
        """Frames per second."""
        return float(1.0 / np.median(np.diff(self.t)))


# --------------------------------------------------------------------------
# Drawing primitives: each returns a path length (or a 0-1 weight) per pixel.
# --------------------------------------------------------------------------


def _col(a):
    """Shape a per-image parameter (n,) for broadcasting over (n, H, W)."""
    a = np.asarray(a, dtype=np.float32)
    return a.reshape(-1, 1, 1)


def _ellipsoid(u, v, cu, cv, a, b):
    """Path length through an ellipsoid of semi-axes a, b (depth ~ a), 0-1 scaled."""
    q = ((u - _col(cu)) / _col(a)) ** 2 + ((v - _col(cv)) / _col(b)) ** 2
    return np.sqrt(np.clip(1.0 - q, 0.0, None))


def _heart(u, v, cu, cv, half_width):
    """A flat-topped ellipse tilted along the heart's long axis, 0-1.

    Its horizontal half-width equals ``half_width`` exactly, so the
    cardiothoracic ratio drawn is the one asked for.
    """
    tilt = np.float32(0.45)  # the long axis runs down and to the patient's left
    b = np.float32(0.3)
    c, s = np.cos(tilt), np.sin(tilt)
    # For an ellipse of semi-axes (a, b) rotated by tilt, the horizontal
    # half-width is sqrt(a^2 cos^2 + b^2 sin^2): solve it for a.
    a = np.sqrt(np.maximum(np.asarray(half_width, np.float32) ** 2 - (b * s) ** 2, 1e-4)) / c
    du, dv = u - _col(cu), v - _col(cv)
    r = (c * du + s * dv) / _col(a)
    t = (-s * du + c * dv) / b
    return np.clip(1.0 - r * r - t * t, 0.0, 1.0) ** 0.3


def _ramp(x, width):
    """A soft step: 0 for x << 0, 1 for x >> 0, linear over ``width``."""
    return np.clip(0.5 + x / width, 0.0, 1.0)


def _segment_distance(u, v, p0, p1):
    """Distance from each pixel to the segment p0-p1 (each (n, 2))."""
    p0 = np.asarray(p0, np.float32)
    p1 = np.asarray(p1, np.float32)
    du, dv = _col(p1[:, 0] - p0[:, 0]), _col(p1[:, 1] - p0[:, 1])
    wu, wv = u - _col(p0[:, 0]), v - _col(p0[:, 1])
    h = np.clip((wu * du + wv * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.hypot(wu - h * du, wv - h * dv)


# --------------------------------------------------------------------------
# Patient and acquisition parameters.
# --------------------------------------------------------------------------


def _draw_patients(rng, n, prevalence, difficulty):
    """Draw anatomy, acquisition and findings for ``n`` patients.

    Returns a dict of arrays of shape (n,) (a few are (n, k)).
    """
    p = {}
    # Positioning: rotation (rad), shift, magnification.
    p["rot"] = rng.normal(0.0, 0.06, n)
    p["tx"] = rng.normal(0.0, 0.07, n)
    p["ty"] = rng.normal(0.0, 0.07, n)
    p["scale"] = rng.uniform(0.82, 1.06, n)
    # Body habitus and lungs (canonical units).
    p["body_a"] = rng.uniform(0.86, 0.98, n)
    p["lung_a"] = rng.uniform(0.27, 0.32, n)
    p["lung_b"] = rng.uniform(0.68, 0.78, n)
    p["lung_cu"] = rng.uniform(0.39, 0.44, n)
    p["lung_cv"] = rng.uniform(-0.06, 0.02, n)
    # Hemidiaphragm apices: the right (image-left) usually sits higher.
    p["dome_r"] = rng.uniform(0.33, 0.45, n)
    p["dome_l"] = p["dome_r"] + rng.uniform(0.02, 0.09, n)
    p["dome_k"] = rng.uniform(1.0, 1.6, n)
    # Ribs: spacing and phase vary with inspiration and build.
    p["rib_period"] = rng.uniform(0.115, 0.135, n)
    p["rib_phase"] = rng.uniform(0.0, 1.0, n)
    # Acquisition: photon count per pixel (noise), contrast (kVp), gamma.
    p["photons"] = np.exp(rng.uniform(np.log(400.0), np.log(4000.0), n))
    p["contrast"] = rng.uniform(0.8, 1.2, n)
    p["gamma"] = rng.uniform(0.85, 1.2, n)

    labels = np.zeros((n, len(FINDINGS)), np.uint8)
    for j, name in enumerate(FINDINGS):
        labels[:, j] = rng.random(n) < prevalence[name]
    p["labels"] = labels

    # Heart: cardiothoracic ratio, normal 0.38-0.49, enlarged 0.53-0.65.
    big = labels[:, FINDINGS.index("cardiomegaly")].astype(bool)
    p["ctr"] = np.where(big, rng.uniform(0.53, 0.65, n), rng.uniform(0.38, 0.49, n))

    # Findings' geometry. Each is drawn for everyone (cheap) and used where present.
    ease = 0.9 * (1.0 - difficulty)
    p["pn_side"] = rng.integers(0, 2, n)  # 0 image-left lung, 1 image-right
    p["pn_lobar"] = rng.random(n) < 0.35
    p["pn_fill"] = rng.uniform(0.25 + 0.35 * ease, 0.45 + 0.45 * ease, n)
    p["pn_blobs"] = rng.uniform(-0.8, 0.8, (n, 4, 2))  # positions in the lung's own frame
    # The first patch lies anywhere in the aerated lung (uniform over a disc, kept
    # above the dome), so that every positive image shows its consolidation.
    radius, angle = 0.6 * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
    p["pn_blobs"][:, 0, 0] = radius * np.cos(angle)
    p["pn_blobs"][:, 0, 1] = np.minimum(radius * np.sin(angle), 0.35)
    p["pn_radius"] = rng.uniform(0.08 + 0.05 * ease, 0.13 + 0.08 * ease, (n, 4))
    p["pn_n"] = rng.integers(1, 5, n)
    p["pn_cut"] = rng.uniform(-0.15, 0.2, n)  # lobar: the fissure's height, above the dome
    p["pn_upper"] = rng.random(n) < 0.4  # lobar: upper zone (above the fissure) or lower
    p["pn_tilt"] = rng.uniform(-0.3, 0.3, n)

    mass = rng.random(n) < 0.3
    p["nod_r"] = np.where(mass, rng.uniform(0.08, 0.12, n), rng.uniform(0.035, 0.06, n))
    p["nod_side"] = rng.integers(0, 2, n)
    p["nod_pos"] = rng.uniform(-0.6, 0.6, (n, 2))

    p["eff_side"] = rng.integers(0, 2, n)
    p["eff_height"] = rng.uniform(0.12, 0.35, n)

    p["ptx_side"] = rng.integers(0, 2, n)
    p["ptx_depth"] = rng.uniform(0.05, 0.14, n)
    return p


# --------------------------------------------------------------------------
# The renderer.
# --------------------------------------------------------------------------


def _render(p, idx, size, rng, marker, want_masks):
    """Line integral A, finding masks, for patients ``idx`` of parameter set p."""
    n = len(idx)
    q = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in p.items()}
    lab = q["labels"].astype(bool)

    # Pixel centres in film coordinates, then per-image into the canonical frame.
    g = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(g, g, indexing="ij")
    x, y = x[None], y[None]
    c, s = _col(np.cos(q["rot"])), _col(np.sin(q["rot"]))
    xs, ys = (x - _col(q["tx"])) / _col(q["scale"]), (y - _col(q["ty"])) / _col(q["scale"])
    u = c * xs + s * ys
    v = -s * xs + c * ys

    # Soft tissue of the trunk, neck and shoulders.
    body = 1.4 * _ellipsoid(u, v, 0.0, 0.25, q["body_a"], np.full(n, 1.35))
    body = np.maximum(body, 0.9 * _ellipsoid(u, v, 0.0, -1.05, np.full(n, 0.3), np.full(n, 0.5)))
    shoulders = 0.7 * _ellipsoid(u, v, 0.0, -0.9, q["body_a"] * 1.12, np.full(n, 0.3))
    A = _MU_TISSUE * np.maximum(body, shoulders)

    # Lungs: ellipsoids cut below by the diaphragm domes (parabolas).
    half = np.where(u < 0, -1.0, 1.0).astype(np.float32)
    lung_cu = half * _col(q["lung_cu"])
    dome_apex = np.where(u < 0, _col(q["dome_r"]), _col(q["dome_l"]))
    dome = dome_apex + _col(q["dome_k"]) * (u - lung_cu * 0.9) ** 2
    qlung = ((u - lung_cu) / _col(q["lung_a"])) ** 2 + ((v - _col(q["lung_cv"])) / _col(q["lung_b"])) ** 2
    field = np.clip(1.0 - qlung, 0.0, None)  # inside the rib cage envelope
    below = _ramp(dome - v, 0.03)  # 1 above the dome, 0 below it
    lung = np.sqrt(field) * below  # normalised air path length

    # Heart: its width follows the cardiothoracic ratio exactly,
    # a third to the image-left of the midline, two thirds to the right.
    thorax_w = 2.0 * (q["lung_cu"] + q["lung_a"])
    heart_a = q["ctr"] * thorax_w / 2.0
    heart_cu = heart_a / 3.0
    heart_cv = q["dome_r"] - 0.08
    heart = _heart(u, v, heart_cu, heart_cv, heart_a)
    aorta = _ellipsoid(u, v, np.full(n, 0.12), heart_cv - 0.4, np.full(n, 0.08), np.full(n, 0.07))
    medi = _ramp(0.12 - np.abs(u + 0.01), 0.04) * _ramp(_col(heart_cv) - v, 0.1) * _ramp(v + 1.1, 0.1)
    shadow = np.maximum(heart, aorta)  # the cardiomediastinal silhouette
    A += 0.8 * np.maximum(shadow, medi)
    lung *= 1.0 - np.clip(shadow * 1.3, 0.0, 1.0)

    # Lung markings: vessels branching from the hila, as smoothed noise
    # weighted towards the hila.
    noise = rng.standard_normal((n, size, size)).astype(np.float32)
    sig = 1.2 * size / 64.0
    tex = ndimage.gaussian_filter(noise, sigma=(0, sig, sig)) * 2.2
    hilum = np.exp(-(((np.abs(u) - 0.2) / 0.22) ** 2 + ((v + 0.05) / 0.3) ** 2))
    markings = np.clip(0.12 + 0.22 * hilum + 0.09 * tex, 0.0, None)

    masks = np.zeros((n, len(FINDINGS), size, size), bool) if want_masks else None
    fill = np.zeros_like(lung)  # fraction of lung air replaced by fluid
    extra_air = np.zeros_like(lung)

    # Pneumonia: lobar (a zone of one lung below a fissure-like edge) or
    # patchy (several blobs, mottled by noise).
    k = FINDINGS.index("pneumonia")
    on = lab[:, k]
    if on.any():
        side = np.where(q["pn_side"] == 0, -1.0, 1.0)
        same = (half == _col(side)).astype(np.float32)
        below_fissure = v - (_col(q["pn_cut"]) - 0.25 * _col(q["pn_upper"]) + _col(q["pn_tilt"]) * (u - lung_cu))
        below_fissure = np.where(_col(q["pn_upper"]) > 0, -below_fissure, below_fissure)
        lobar = _ramp(below_fissure, 0.08) * same
        patch = np.zeros_like(lung)
        for b in range(4):
            bu = side * q["lung_cu"] + q["pn_blobs"][:, b, 0] * q["lung_a"]
            bv = q["lung_cv"] + q["pn_blobs"][:, b, 1] * q["lung_b"]
            r = q["pn_radius"][:, b]
            d2 = ((u - _col(bu)) ** 2 + (v - _col(bv)) ** 2) / _col(r) ** 2
            patch = np.maximum(patch, np.exp(-d2) * _col(b < q["pn_n"]))
        mottle = np.clip(0.75 + 0.5 * tex, 0.0, 1.0)
        region = np.where(_col(q["pn_lobar"]) > 0, lobar, patch * mottle)
        region = region * (field > 0) * _col(on)
        fill = np.maximum(fill, np.clip(region * _col(q["pn_fill"]), 0.0, 0.95))
        if want_masks:
            # the anatomical lung, including the part behind the heart (retrocardiac)
            masks[:, k] = (region > 0.35) & (field > 0) & (below > 0.5)

    # Nodule or mass: a sphere of tissue inside one lung.
    k = FINDINGS.index("nodule")
    on = lab[:, k]
    nod_u = np.where(q["nod_side"] == 0, -1.0, 1.0) * q["lung_cu"] + q["nod_pos"][:, 0] * q["lung_a"] * 0.7
    nod_v = q["lung_cv"] + q["nod_pos"][:, 1] * q["lung_b"] * 0.6
    if on.any():
        r = _col(q["nod_r"])
        d2 = (u - _col(nod_u)) ** 2 + (v - _col(nod_v)) ** 2
        sphere = np.sqrt(np.clip(1.0 - d2 / r**2, 0.0, None))
        A += 0.9 * sphere * (r / 0.06) * _col(on)
        if want_masks:
            masks[:, k] = (d2 < r**2) & _col(on).astype(bool)

    # Cardiomegaly: the heart drawn above is already wide; its mask is the heart.
    k = FINDINGS.index("cardiomegaly")
    if want_masks:
        masks[:, k] = (heart > 0) & lab[:, k, None, None]

    # Pleural effusion: fluid at the base of one hemithorax, its upper edge a
    # meniscus that climbs the lateral wall and blunts the costophrenic angle.
    k = FINDINGS.index("effusion")
    on = lab[:, k]
    if on.any():
        side = np.where(q["eff_side"] == 0, -1.0, 1.0)
        same = (half == _col(side)).astype(np.float32)
        lateral = np.clip((u - lung_cu) * half / _col(q["lung_a"]), -1.0, 1.0)  # -1 medial, 1 lateral
        level = _col(np.where(side < 0, q["dome_r"], q["dome_l"]) - q["eff_height"])
        meniscus = level + 0.12 * (1.0 - lateral) ** 2 - 0.1 * np.clip(lateral, 0, 1)
        fluid = _ramp(v - meniscus, 0.05) * same * (qlung < 1.15) * _col(on)
        fill = np.maximum(fill, fluid * 0.97)
        A += 0.5 * fluid * np.sqrt(np.clip(1.3 - qlung, 0.0, None))
        if want_masks:
            masks[:, k] = (fluid > 0.5) & (qlung < 1.0)

    # Pneumothorax: air between the chest wall and the collapsed lung, with
    # no markings, and a thin visceral pleural line at the lung's edge.
    k = FINDINGS.index("pneumothorax")
    on = lab[:, k]
    if on.any():
        side = np.where(q["ptx_side"] == 0, -1.0, 1.0)
        same = (half == _col(side)).astype(np.float32)
        shrink = 1.0 - _col(q["ptx_depth"]) / _col(q["lung_a"])
        inner = qlung / shrink**2
        outer_part = (u - lung_cu) * half > -0.2 * _col(q["lung_a"])  # lateral and apical rim
        gap = ((qlung < 1.0) & (inner >= 1.0) & outer_part & (v < dome)).astype(np.float32)
        gap *= same * _col(on)
        line = np.exp(-(((np.sqrt(inner) - 1.0) / 0.02) ** 2)) * same * _col(on) * outer_part * (qlung < 1.0)
        extra_air += gap * 0.35
        markings = markings * (1.0 - gap)
        A += 0.25 * line
        if want_masks:
            masks[:, k] = gap > 0.5

    # Air in the lungs lowers the line integral; fluid and markings raise it back.
    air = lung * (1.0 - fill)
    A -= _MU_AIR_IN_LUNG * 1.1 * air + extra_air
    A += markings * air * 0.55

    # Trachea and gastric bubble: the air outside the lungs that every reader looks for.
    trachea = _ramp(0.035 - np.abs(u + 0.01 * v), 0.02) * _ramp(_col(heart_cv) - 0.35 - v, 0.05)
    bubble = _ellipsoid(u, v, q["lung_cu"] * 0.75, q["dome_l"] + 0.14, np.full(n, 0.1), np.full(n, 0.06))
    A -= 0.35 * trachea + 0.5 * bubble

    # Bone: spine (vertebral bodies and discs), posterior ribs, clavicles.
    vert = 0.75 + 0.25 * np.cos(2 * np.pi * v / 0.11)
    spine = _ramp(0.07 - np.abs(u), 0.03) * vert
    su = np.abs(u)
    rib_v = v + 0.1 * su - 0.75 * su**2  # posterior ribs: flat at the spine, arcing down laterally
    phase = rib_v / _col(q["rib_period"]) + _col(q["rib_phase"])
    rib = np.clip((np.cos(2 * np.pi * phase) - 0.55) / 0.45, 0.0, 1.0) ** 0.5
    cage = _ramp(1.02 - qlung, 0.08) * _ramp(su - 0.08, 0.05) * _ramp(v + 0.75, 0.05) * _ramp(dome + 0.06 - v, 0.06)
    p0 = np.stack([np.full(n, 0.08), np.full(n, -0.66)], 1)
    p1 = np.stack([np.full(n, 0.66), np.full(n, -0.8)], 1)
    clav = np.maximum(
        _ramp(0.035 - _segment_distance(su, v, p0, p1), 0.02),
        0.0,
    )
    A += _MU_BONE * (0.12 * spine + 0.09 * rib * cage + 0.2 * clav)

    # Burned-in marker (the confounder): a bright square block in a corner.
    if marker is not None:
        mk = marker[idx]
        block = (x > 0.62) & (x < 0.86) & (y > -0.88) & (y < -0.66)
        A = np.where(block & mk[:, None, None], 3.5, A)

    return A, masks


def _expose(A, q, rng, size):
    """Photon noise and detector blur on the line integral A (n, H, W)."""
    mu = A * _col(q["contrast"]) * 0.9
    expected = _col(q["photons"]) * np.exp(-mu)
    counts = expected + np.sqrt(expected) * rng.standard_normal(A.shape).astype(np.float32)
    signal = -np.log(np.clip(counts, 1.0, None) / _col(q["photons"]))
    sig = 0.6 * size / 64.0
    return ndimage.gaussian_filter(signal, sigma=(0, sig, sig))


def _window(signal, gamma, lo=None, hi=None):
    """Map the exposure to 0-255 as a viewer's automatic window does."""
    if lo is None:
        lo = np.percentile(signal, 1.0, axis=(-2, -1), keepdims=True)
        hi = np.percentile(signal, 99.5, axis=(-2, -1), keepdims=True)
    z = np.clip((signal - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
    return np.round(255.0 * z ** _col(gamma)).astype(np.uint8)


def _check(n, size, difficulty):
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive whole number of images; got {n!r}.")
    if not isinstance(size, (int, np.integer)) or not 16 <= size <= 512:
        raise ValueError(f"size must be a whole number of pixels from 16 to 512; got {size!r}. Try 64.")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(
            f"difficulty must be between 0 (easy) and 1 (hard); got {difficulty!r}. The default is 0.5."
        )


def _prevalence(prevalence):
    out = dict(DEFAULT_PREVALENCE)
    for name, value in (prevalence or {}).items():
        if name not in out:
            raise ValueError(f"unknown finding {name!r} in prevalence; expected some of {', '.join(FINDINGS)}.")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"prevalence of {name!r} must be a probability in [0, 1]; got {value!r}.")
        out[name] = float(value)
    return out


def generate(
    n: int,
    *,
    size: int = 64,
    seed: int = 0,
    prevalence: dict | None = None,
    difficulty: float = 0.5,
    confounder: float | None = None,
    confounder_target: str = "pneumonia",
    masks: bool = False,
) -> PhantomImages:
    """Draw ``n`` synthetic frontal chest radiographs.

    Parameters
    ----------
    n : int
        Number of images.
    size : int, default 64
        Height and width in pixels (16 to 512). Anatomy is defined in a
        canonical frame, so any size shows the same patients.
    seed : int, default 0
        Seed for :func:`numpy.random.default_rng`; the same seed gives the
        same images.
    prevalence : dict, optional
        Probability of each finding, e.g. ``{"pneumonia": 0.5}``; findings not
        named keep :data:`DEFAULT_PREVALENCE`. Findings are drawn
        independently, so an image can have several.
    difficulty : float, default 0.5
        0 draws dense, large consolidations; 1 faint, small ones. At the
        default a logistic regression on raw pixels stays near 0.8 AUC on the
        pneumonia label while a small CNN exceeds 0.9 (notebook 01 measures it).
    confounder : float, optional
        Strength in [0, 1] of a shortcut: a bright marker burned into a
        corner, drawn with probability ``(1 + confounder) / 2`` on images with
        ``confounder_target`` and ``(1 - confounder) / 2`` on the others.
        None (default) draws no marker.
    confounder_target : str, default "pneumonia"
        The finding the marker is correlated with.
    masks : bool, default False
        Also return the ground-truth mask of every finding (uses
        ``5 * n * size**2`` bytes).

    Returns
    -------
    PhantomImages
        ``images`` (n, size, size) uint8, ``labels`` (n, 5) uint8, ``masks``,
        ``ctr`` (n,), ``marker`` (n,).

    Examples
    --------
    >>> batch = generate(8, size=32, seed=1, masks=True)
    >>> batch.images.shape, batch.images.dtype, batch.labels.shape, batch.masks.shape
    ((8, 32, 32), dtype('uint8'), (8, 5), (8, 5, 32, 32))
    >>> bool((generate(8, size=32, seed=1).images == batch.images).all())
    True
    """
    _check(n, size, difficulty)
    prev = _prevalence(prevalence)
    if confounder_target not in FINDINGS:
        raise ValueError(f"confounder_target must be one of {', '.join(FINDINGS)}; got {confounder_target!r}.")
    if confounder is not None and not 0.0 <= confounder <= 1.0:
        raise ValueError(f"confounder must be None or a strength in [0, 1]; got {confounder!r}.")

    rng = np.random.default_rng(seed)
    p = _draw_patients(rng, n, prev, difficulty)
    marker = None
    if confounder is not None:
        target = p["labels"][:, FINDINGS.index(confounder_target)].astype(bool)
        chance = np.where(target, (1.0 + confounder) / 2.0, (1.0 - confounder) / 2.0)
        marker = rng.random(n) < chance

    images = np.empty((n, size, size), np.uint8)
    all_masks = np.zeros((n, len(FINDINGS), size, size), bool) if masks else None
    for start in range(0, n, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, n))
        A, m = _render(p, idx, size, rng, marker, masks)
        q = {k: p[k][idx] for k in ("contrast", "photons", "gamma")}
        images[idx] = _window(_expose(A, q, rng, size), q["gamma"])
        if masks:
            all_masks[idx] = m
    return PhantomImages(
        images=images,
        labels=p["labels"],
        masks=all_masks,
        ctr=p["ctr"].astype(np.float32),
        marker=marker if marker is not None else np.zeros(n, bool),
    )


def _lujan(phase, n=2):
    """Breathing waveform of Lujan et al. (1999): 0 at end-exhale, 1 at peak inhale.

    ``cos^(2n)`` of half the phase spends longer near exhale, as real breathing does.
    """
    return 1.0 - np.cos(phase / 2.0) ** (2 * n)


def breathing_sequence(
    n_frames: int = 150,
    *,
    size: int = 64,
    seed: int = 0,
    fps: float = 10.0,
    pattern: str = "normal",
    breaths_per_minute: float = 15.0,
    excursion: float = 0.12,
    photons: float = 3000.0,
) -> BreathingSequence:
    """Frames of a dynamic chest radiograph through several breathing cycles.

    The diaphragm domes move down on inspiration (the waveform of Lujan et
    al., 1999) and a lung nodule moves with the lung, more the lower it lies.
    Ground truth is given in pixels for every frame.

    Parameters
    ----------
    n_frames : int, default 150
        Number of frames.
    size : int, default 64
        Frame height and width in pixels.
    seed : int, default 0
        Seed; the same seed gives the same patient and motion.
    fps : float, default 10
        Frame rate in frames per second.
    pattern : {"normal", "irregular", "paralysed"}
        ``"irregular"`` varies breath length and depth from cycle to cycle;
        ``"paralysed"`` leaves one hemidiaphragm still (it rises slightly on
        inspiration, the paradoxical motion of a paralysed diaphragm).
    breaths_per_minute : float, default 15
        Mean respiratory rate.
    excursion : float, default 0.12
        Dome travel at full inspiration in canonical units (about 6 % of the
        film height; quiet breathing moves the diaphragm 1.5-2.5 cm).
    photons : float, default 3000
        Photons per pixel before attenuation: the dose per frame. Fluoroscopy
        and dynamic radiography use a small fraction of a film's dose, so their
        frames are noisy; lower values give noisier frames.

    Returns
    -------
    BreathingSequence

    Examples
    --------
    >>> seq = breathing_sequence(20, size=32, seed=3)
    >>> seq.frames.shape, seq.domes.shape, seq.nodule.shape
    ((20, 32, 32), (20, 2, 2), (20, 2))
    """
    patterns = ("normal", "irregular", "paralysed")
    if pattern not in patterns:
        raise ValueError(f"pattern must be one of {', '.join(patterns)}; got {pattern!r}.")
    _check(n_frames, size, 0.5)
    if fps <= 0 or breaths_per_minute <= 0:
        raise ValueError(f"fps and breaths_per_minute must be positive; got {fps!r} and {breaths_per_minute!r}.")
    if photons <= 0:
        raise ValueError(f"photons (the dose per frame) must be positive; got {photons!r}.")

    rng = np.random.default_rng(seed)
    base = _draw_patients(rng, 1, {**DEFAULT_PREVALENCE, "nodule": 1.0, "pneumonia": 0.0}, 0.5)
    base["nod_r"][:] = rng.uniform(0.05, 0.07)
    base["nod_pos"][0] = [rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.45)]
    base["photons"][:] = photons
    # Breathing: instantaneous rate wanders for "irregular"; depth varies per cycle.
    t = np.arange(n_frames) / fps
    rate = np.full(n_frames, breaths_per_minute / 60.0)
    depth = np.ones(n_frames)
    if pattern == "irregular":
        walk = np.cumsum(rng.normal(0.0, 0.08, n_frames)) / np.sqrt(fps)
        rate = rate * np.exp(np.clip(walk, -0.5, 0.5))
    phase = 2 * np.pi * np.cumsum(rate) / fps + rng.uniform(0, 2 * np.pi)
    if pattern == "irregular":
        cycle = np.floor(phase / (2 * np.pi)).astype(int)
        depth = rng.uniform(0.6, 1.3, cycle.max() + 1)[cycle]
    breath = _lujan(phase) * depth * excursion
    still = rng.integers(0, 2) if pattern == "paralysed" else -1

    p = {k: (np.repeat(v, n_frames, axis=0) if isinstance(v, np.ndarray) else v) for k, v in base.items()}
    p["dome_r"] = p["dome_r"] + (breath if still != 0 else -0.2 * breath)
    p["dome_l"] = p["dome_l"] + (breath if still != 1 else -0.2 * breath)
    # The lung base follows the diaphragm: a nodule moves by the fraction of
    # the lung height that lies above it.
    side_dome = p["dome_r"] if base["nod_side"][0] == 0 else p["dome_l"]
    top = base["lung_cv"][0] - base["lung_b"][0]
    nod_v0 = base["lung_cv"][0] + base["nod_pos"][0, 1] * base["lung_b"][0] * 0.6
    frac = (nod_v0 - top) / (side_dome[0] - top)
    # Move the nodule by shifting its normalised position so _render draws it there.
    nod_v = nod_v0 + frac * (side_dome - side_dome[0])
    p["nod_pos"] = p["nod_pos"].copy()
    p["nod_pos"][:, 1] = (nod_v - base["lung_cv"][0]) / (base["lung_b"][0] * 0.6)
    p["rib_phase"] = p["rib_phase"] - breath * 0.35  # ribs lift a little on inspiration

    A = np.empty((n_frames, size, size), np.float32)
    for start in range(0, n_frames, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, n_frames))
        A[idx], _ = _render(p, idx, size, rng, None, False)
    signal = _expose(A, p, rng, size)
    lo = np.percentile(signal, 1.0)
    hi = np.percentile(signal, 99.5)
    frames = _window(signal, p["gamma"], lo, hi)

    # Ground truth: canonical positions mapped to pixels with the same affine.
    def to_pixels(cu, cv):
        rot, sc = base["rot"][0], base["scale"][0]
        x = sc * (np.cos(rot) * cu - np.sin(rot) * cv) + base["tx"][0]
        y = sc * (np.sin(rot) * cu + np.cos(rot) * cv) + base["ty"][0]
        return np.stack([(y + 1) / 2 * size - 0.5, (x + 1) / 2 * size - 0.5], -1)

    lung_cu = base["lung_cu"][0]
    domes = np.stack(
        [to_pixels(np.full(n_frames, -0.9 * lung_cu), p["dome_r"]), to_pixels(np.full(n_frames, 0.9 * lung_cu), p["dome_l"])],
        axis=1,
    )
    nod_u = (1 if base["nod_side"][0] else -1) * lung_cu + base["nod_pos"][0, 0] * base["lung_a"][0] * 0.7
    nodule = to_pixels(np.full(n_frames, nod_u), nod_v)
    radius = float(base["nod_r"][0] * base["scale"][0] * size / 2)
    return BreathingSequence(
        frames=frames,
        t=t,
        domes=domes,
        nodule=nodule,
        nodule_radius=radius,
        pattern=pattern,
        abnormal=pattern == "paralysed",
    )
