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
its ground-truth mask; with ``anatomy=True`` every film also comes with masks
of its heart and lungs (``ANATOMY``), from which its cardiothoracic ratio can
be measured.

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
    "FIELD_OF_VIEW_MM",
    "PhantomImages",
    "BreathingSequence",
    "generate",
    "breathing_sequence",
    "pixel_spacing",
]

#: The findings the phantom can draw, in label-column order.
FINDINGS = ("pneumonia", "nodule", "cardiomegaly", "effusion", "pneumothorax")
#: The anatomy masked on every film with ``anatomy=True``: the heart's shadow and both lungs' fields.
ANATOMY = ("heart", "lungs")

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

#: Width and height of the film in millimetres: the canonical frame's -1 to 1.
#: Chest detectors are 35 x 43 cm; the phantom's square film spans 40 cm, so at
#: ``size`` pixels one pixel is ``FIELD_OF_VIEW_MM / size`` mm (1.6 mm at 256 px).
FIELD_OF_VIEW_MM = 400.0

# Path lengths (canonical units) of the soft tissues, as peak thickness of each shape.
_BODY_DEPTH = 1.4  # the trunk
_NECK_DEPTH = 0.9
_SHOULDER_DEPTH = 0.7
# The heart and the mediastinum displace lung: the lungs are cut away where they lie, so
# the tissue added here is only what lies beyond the air it replaces. With a heavier
# weight the heart outshines the spine, which a real PA film shows faintly through it.
_HEART_DEPTH = 0.3
_MEDIASTINUM_DEPTH = 0.3
# Bone: thickness of the spine, the posterior ribs and the clavicles.
_SPINE_DEPTH = 0.12
_RIB_DEPTH = 0.09
_CLAVICLE_DEPTH = 0.2
# Air outside the lungs.
_TRACHEA_AIR = 0.35
_GASTRIC_AIR = 0.5
# What a finding does to the line integral. A nodule is a sphere of tissue that
# replaces aerated lung: along a ray through it, the line integral rises by the
# difference in attenuation (tissue less aerated lung) times the chord.
_NODULE_CONTRAST = _MU_TISSUE * _MU_AIR_IN_LUNG
_EFFUSION_DEPTH = 0.5
_PLEURAL_LINE = 0.25
_PNEUMOTHORAX_AIR = 0.35
_MARKER_VALUE = 3.5  # the burned-in marker: a saturated block

# The display window: the darkest 1 % of pixels go to black and the brightest
# 0.1 % to white, as a viewer's automatic window does.
_WINDOW_PERCENTILES = (1.0, 99.9)

_CHUNK = 256  # images drawn at once; bounds memory at ~30 MB per array at 64 px


def pixel_spacing(size: int) -> float:
    """Millimetres per pixel of a phantom film of ``size`` pixels.

    Examples
    --------
    >>> pixel_spacing(64), pixel_spacing(256)
    (6.25, 1.5625)
    """
    return FIELD_OF_VIEW_MM / size


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
    pixel_spacing : float
        Millimetres per pixel (:func:`pixel_spacing`).
    nodule_mm : ndarray, float32, shape (n,)
        Diameter of the nodule (12 to 24 mm) or mass (32 to 48 mm) in
        millimetres; NaN where there is none.
    anatomy : ndarray of bool, shape (n, 2, size, size), or None
        On every film, the parts named in :data:`ANATOMY`: the heart's
        shadow (as the cardiomegaly mask draws it, but whatever the label)
        and both lung fields out to the rib cage (behind the heart and below
        the domes included). The heart's widest horizontal extent over that of
        the lungs, outer edge to outer edge, is the cardiothoracic ratio as
        measured on the film: ``ctr`` within a pixel, except where the heart's
        widest part lies below the dome, which the film does not show (then up
        to about 0.06 less). None unless ``anatomy=True`` was asked for.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    ctr: np.ndarray
    marker: np.ndarray
    pixel_spacing: float = 0.0
    nodule_mm: np.ndarray | None = None
    anatomy: np.ndarray | None = None

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
    pixel_spacing : float
        Millimetres per pixel.
    pattern : str
        ``"normal"``, ``"irregular"`` or ``"paralysed"``.
    abnormal : bool
        True when a hemidiaphragm does not move normally (``"paralysed"``).
    breaths_per_minute : float
        The patient's mean respiratory rate (drawn per patient unless given).
    """

    frames: np.ndarray
    t: np.ndarray
    domes: np.ndarray
    nodule: np.ndarray
    nodule_radius: float
    pixel_spacing: float
    pattern: str
    abnormal: bool
    breaths_per_minute: float = float("nan")

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


def _draw_patient(rng, prevalence, difficulty):
    """Draw one patient's anatomy, acquisition and findings from its own generator.

    Every value is drawn whatever the prevalence (a finding's geometry is
    drawn for everyone and used where the finding is present), so changing a
    prevalence changes which findings are drawn, not the patient.
    """
    p = {}
    # Positioning: rotation (rad), shift, magnification.
    p["rot"] = rng.normal(0.0, 0.06)
    p["tx"] = rng.normal(0.0, 0.07)
    p["ty"] = rng.normal(0.0, 0.07)
    p["scale"] = rng.uniform(0.82, 1.06)
    # Body habitus and lungs (canonical units).
    p["body_a"] = rng.uniform(0.86, 0.98)
    p["lung_a"] = rng.uniform(0.27, 0.32)
    p["lung_b"] = rng.uniform(0.68, 0.78)
    p["lung_cu"] = rng.uniform(0.39, 0.44)
    p["lung_cv"] = rng.uniform(-0.06, 0.02)
    # Hemidiaphragm apices: the right (image-left) usually sits higher.
    p["dome_r"] = rng.uniform(0.33, 0.45)
    p["dome_l"] = p["dome_r"] + rng.uniform(0.02, 0.09)
    p["dome_k"] = rng.uniform(1.0, 1.6)
    # Ribs: spacing and phase vary with inspiration and build.
    p["rib_period"] = rng.uniform(0.115, 0.135)
    p["rib_phase"] = rng.uniform(0.0, 1.0)
    # Acquisition: photon count per pixel (noise), contrast (kVp), gamma.
    p["photons"] = np.exp(rng.uniform(np.log(400.0), np.log(4000.0)))
    p["contrast"] = rng.uniform(0.8, 1.2)
    p["gamma"] = rng.uniform(0.85, 1.2)

    draws = rng.random(len(FINDINGS))
    p["labels"] = np.array([draws[j] < prevalence[name] for j, name in enumerate(FINDINGS)], np.uint8)

    # Heart: cardiothoracic ratio, normal 0.38-0.49, enlarged 0.53-0.65.
    normal_ctr, large_ctr = rng.uniform(0.38, 0.49), rng.uniform(0.53, 0.65)
    p["ctr"] = large_ctr if p["labels"][FINDINGS.index("cardiomegaly")] else normal_ctr

    # Pneumonia: lobar (a zone below or above a fissure) or patchy (up to four blobs).
    ease = 0.9 * (1.0 - difficulty)
    p["pn_side"] = rng.integers(0, 2)  # 0 image-left lung, 1 image-right
    p["pn_lobar"] = rng.random() < 0.35
    p["pn_fill"] = rng.uniform(0.25 + 0.35 * ease, 0.45 + 0.45 * ease)
    blobs = rng.uniform(-0.8, 0.8, (4, 2))  # positions in the lung's own frame
    # The first patch lies anywhere in the aerated lung (uniform over a disc, kept
    # above the dome), so that every positive image shows its consolidation.
    radius, angle = 0.6 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    blobs[0] = radius * np.cos(angle), min(radius * np.sin(angle), 0.35)
    p["pn_blobs"] = blobs
    p["pn_radius"] = rng.uniform(0.08 + 0.05 * ease, 0.13 + 0.08 * ease, 4)
    p["pn_n"] = rng.integers(1, 5)
    p["pn_cut"] = rng.uniform(-0.15, 0.2)  # lobar: the fissure's height, above the dome
    p["pn_upper"] = rng.random() < 0.4  # lobar: upper zone (above the fissure) or lower
    p["pn_tilt"] = rng.uniform(-0.3, 0.3)

    # Nodule (12-24 mm across) or mass (32-48 mm), drawn in millimetres and converted to
    # canonical units with this patient's magnification.
    mass = rng.random() < 0.3
    nodule_mm, mass_mm = rng.uniform(12.0, 24.0), rng.uniform(32.0, 48.0)
    p["nod_r"] = (mass_mm if mass else nodule_mm) / (p["scale"] * FIELD_OF_VIEW_MM)
    p["nod_side"] = rng.integers(0, 2)
    p["nod_pos"] = rng.uniform(-0.6, 0.6, 2)

    p["eff_side"] = rng.integers(0, 2)
    p["eff_height"] = rng.uniform(0.12, 0.35)

    p["ptx_side"] = rng.integers(0, 2)
    p["ptx_depth"] = rng.uniform(0.05, 0.14)
    return p


def _stack(patients):
    """Per-patient dicts into one dict of arrays with a leading axis of patients."""
    return {k: np.stack([np.asarray(q[k]) for q in patients]) for k in patients[0]}


# --------------------------------------------------------------------------
# The renderer.
# --------------------------------------------------------------------------


@dataclass
class _Frame:
    """Where every pixel of a chunk of films lies in the canonical frame, and the lungs drawn in it.

    ``u, v`` (n, H, W) are canonical coordinates, ``x, y`` (1, H, W) film
    coordinates. ``half`` is -1 on the image-left side and 1 on the right;
    ``lung_cu`` the centre of the lung on that side; ``qlung`` the elliptic
    radius of the lung envelope (1 at the rib cage); ``field`` the envelope's
    interior, ``below`` 1 above the diaphragm; ``dome`` the height of the
    diaphragm under each pixel; ``lung`` the air path through the lung.
    """

    u: np.ndarray
    v: np.ndarray
    x: np.ndarray
    y: np.ndarray
    half: np.ndarray = None
    lung_cu: np.ndarray = None
    qlung: np.ndarray = None
    field: np.ndarray = None
    below: np.ndarray = None
    dome: np.ndarray = None
    lung: np.ndarray = None


def _frame(q, size):
    """Pixel centres in film coordinates, mapped per film into the canonical frame."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(g, g, indexing="ij")
    x, y = x[None], y[None]
    c, s = _col(np.cos(q["rot"])), _col(np.sin(q["rot"]))
    xs, ys = (x - _col(q["tx"])) / _col(q["scale"]), (y - _col(q["ty"])) / _col(q["scale"])
    return _Frame(u=c * xs + s * ys, v=-s * xs + c * ys, x=x, y=y)


def _soft_tissue(f, q):
    """The trunk, the neck and the shoulders: path length through soft tissue."""
    n = len(q["rot"])
    body = _BODY_DEPTH * _ellipsoid(f.u, f.v, 0.0, 0.25, q["body_a"], np.full(n, 1.35))
    neck = _NECK_DEPTH * _ellipsoid(f.u, f.v, 0.0, -1.05, np.full(n, 0.3), np.full(n, 0.5))
    shoulders = _SHOULDER_DEPTH * _ellipsoid(f.u, f.v, 0.0, -0.9, q["body_a"] * 1.12, np.full(n, 0.3))
    return _MU_TISSUE * np.maximum(np.maximum(body, neck), shoulders)


def _lungs(f, q):
    """Both lungs: ellipsoids cut below by the diaphragm domes (parabolas). Fills in ``f``."""
    f.half = np.where(f.u < 0, -1.0, 1.0).astype(np.float32)
    f.lung_cu = f.half * _col(q["lung_cu"])
    dome_apex = np.where(f.u < 0, _col(q["dome_r"]), _col(q["dome_l"]))
    f.dome = dome_apex + _col(q["dome_k"]) * (f.u - f.lung_cu * 0.9) ** 2
    f.qlung = ((f.u - f.lung_cu) / _col(q["lung_a"])) ** 2 + ((f.v - _col(q["lung_cv"])) / _col(q["lung_b"])) ** 2
    f.field = np.clip(1.0 - f.qlung, 0.0, None)  # inside the rib cage envelope
    f.below = _ramp(f.dome - f.v, 0.03)  # 1 above the dome, 0 below it
    f.lung = np.sqrt(f.field) * f.below  # normalised air path length


def _heart_and_mediastinum(f, q):
    """The cardiomediastinal silhouette; it displaces the lung where it lies.

    The heart's width follows the cardiothoracic ratio exactly, a third of it
    to the image-left of the midline and two thirds to the right. Returns the
    tissue it adds, the heart itself (0-1) and the height of its centre.
    """
    n = len(q["rot"])
    thorax_w = 2.0 * (q["lung_cu"] + q["lung_a"])
    heart_a = q["ctr"] * thorax_w / 2.0
    heart_cv = q["dome_r"] - 0.12
    # The heart sits on the diaphragm: nothing of it lies below the domes.
    heart = _heart(f.u, f.v, heart_a / 3.0, heart_cv, heart_a) * f.below
    aorta = _ellipsoid(f.u, f.v, np.full(n, 0.12), heart_cv - 0.4, np.full(n, 0.08), np.full(n, 0.07))
    medi = _ramp(0.12 - np.abs(f.u + 0.01), 0.04) * _ramp(_col(heart_cv) - f.v, 0.1) * _ramp(f.v + 1.1, 0.1)
    shadow = np.maximum(heart, aorta)
    f.lung = f.lung * (1.0 - np.clip(shadow * 1.3, 0.0, 1.0))
    added = _MU_TISSUE * np.maximum(_HEART_DEPTH * shadow, _MEDIASTINUM_DEPTH * medi)
    return added, heart, heart_cv


def _lung_markings(f, tex):
    """Vessels branching from the hila, as smoothed noise weighted towards the hila."""
    hilum = np.exp(-(((np.abs(f.u) - 0.2) / 0.22) ** 2 + ((f.v + 0.05) / 0.3) ** 2))
    return np.clip(0.12 + 0.22 * hilum + 0.09 * tex, 0.0, None)


def _pneumonia(f, q, tex, on):
    """Lobar (a zone of one lung beyond a fissure-like edge) or patchy (blobs mottled by noise).

    Returns the fraction of lung air replaced by fluid, and the region (0-1).
    """
    side = np.where(q["pn_side"] == 0, -1.0, 1.0)
    same = (f.half == _col(side)).astype(np.float32)
    fissure = f.v - (_col(q["pn_cut"]) - 0.25 * _col(q["pn_upper"]) + _col(q["pn_tilt"]) * (f.u - f.lung_cu))
    fissure = np.where(_col(q["pn_upper"]) > 0, -fissure, fissure)
    lobar = _ramp(fissure, 0.08) * same
    patch = np.zeros_like(f.u)
    for b in range(4):
        bu = side * q["lung_cu"] + q["pn_blobs"][:, b, 0] * q["lung_a"]
        bv = q["lung_cv"] + q["pn_blobs"][:, b, 1] * q["lung_b"]
        d2 = ((f.u - _col(bu)) ** 2 + (f.v - _col(bv)) ** 2) / _col(q["pn_radius"][:, b]) ** 2
        patch = np.maximum(patch, np.exp(-d2) * _col(b < q["pn_n"]))
    mottle = np.clip(0.75 + 0.5 * tex, 0.0, 1.0)
    region = np.where(_col(q["pn_lobar"]) > 0, lobar, patch * mottle) * (f.field > 0) * _col(on)
    return np.clip(region * _col(q["pn_fill"]), 0.0, 0.95), region


def _nodule_centre(q):
    """Canonical centre (u, v) of the nodule in its lung."""
    u = np.where(q["nod_side"] == 0, -1.0, 1.0) * q["lung_cu"] + q["nod_pos"][:, 0] * q["lung_a"] * 0.7
    v = q["lung_cv"] + q["nod_pos"][:, 1] * q["lung_b"] * 0.6
    return u, v


def _nodule(f, q, on):
    """A sphere of tissue inside one lung. Returns the tissue added and the squared distance over r^2.

    The chord through a sphere of radius r at distance d from its centre is
    ``2 r sqrt(1 - d^2 / r^2)``; along it, tissue replaces aerated lung.
    """
    cu, cv = _nodule_centre(q)
    r = _col(q["nod_r"])
    d2 = ((f.u - _col(cu)) ** 2 + (f.v - _col(cv)) ** 2) / r**2
    chord = 2.0 * r * np.sqrt(np.clip(1.0 - d2, 0.0, None))
    return _NODULE_CONTRAST * chord * _col(on), d2


def _effusion(f, q, on):
    """Fluid at the base of one hemithorax; its meniscus climbs the lateral wall.

    Returns the fraction of lung air replaced, the tissue added and the fluid (0-1).
    """
    side = np.where(q["eff_side"] == 0, -1.0, 1.0)
    same = (f.half == _col(side)).astype(np.float32)
    lateral = np.clip((f.u - f.lung_cu) * f.half / _col(q["lung_a"]), -1.0, 1.0)  # -1 medial, 1 lateral
    level = _col(np.where(side < 0, q["dome_r"], q["dome_l"]) - q["eff_height"])
    meniscus = level + 0.12 * (1.0 - lateral) ** 2 - 0.1 * np.clip(lateral, 0, 1)
    fluid = _ramp(f.v - meniscus, 0.05) * same * (f.qlung < 1.15) * _col(on)
    added = _MU_TISSUE * _EFFUSION_DEPTH * fluid * np.sqrt(np.clip(1.3 - f.qlung, 0.0, None))
    return fluid * 0.97, added, fluid


def _pneumothorax(f, q, on):
    """Air between the chest wall and the collapsed lung, with a thin visceral pleural line.

    Returns the gap (0-1, where the lung has no markings), the extra air and the line.
    """
    side = np.where(q["ptx_side"] == 0, -1.0, 1.0)
    same = (f.half == _col(side)).astype(np.float32)
    shrink = 1.0 - _col(q["ptx_depth"]) / _col(q["lung_a"])
    inner = f.qlung / shrink**2
    rim = (f.u - f.lung_cu) * f.half > -0.2 * _col(q["lung_a"])  # lateral and apical rim
    gap = ((f.qlung < 1.0) & (inner >= 1.0) & rim & (f.v < f.dome)).astype(np.float32) * same * _col(on)
    line = np.exp(-(((np.sqrt(inner) - 1.0) / 0.02) ** 2)) * same * _col(on) * rim * (f.qlung < 1.0)
    return gap, _PNEUMOTHORAX_AIR * gap, _PLEURAL_LINE * line


def _air_outside_the_lungs(f, q, heart_cv):
    """Trachea and gastric bubble: the air outside the lungs that every reader looks for."""
    n = len(q["rot"])
    trachea = _ramp(0.035 - np.abs(f.u + 0.01 * f.v), 0.02) * _ramp(_col(heart_cv) - 0.35 - f.v, 0.05)
    bubble = _ellipsoid(f.u, f.v, q["lung_cu"] * 0.75, q["dome_l"] + 0.14, np.full(n, 0.1), np.full(n, 0.06))
    return _TRACHEA_AIR * trachea + _GASTRIC_AIR * bubble


def _bones(f, q):
    """Spine (vertebral bodies and discs), posterior ribs and clavicles: bone path length times its attenuation."""
    spine = _ramp(0.07 - np.abs(f.u), 0.03) * (0.75 + 0.25 * np.cos(2 * np.pi * f.v / 0.11))
    su = np.abs(f.u)
    rib_v = f.v + 0.1 * su - 0.75 * su**2  # posterior ribs: flat at the spine, arcing down laterally
    phase = rib_v / _col(q["rib_period"]) + _col(q["rib_phase"])
    rib = np.clip((np.cos(2 * np.pi * phase) - 0.55) / 0.45, 0.0, 1.0) ** 0.5
    cage = (_ramp(1.02 - f.qlung, 0.08) * _ramp(su - 0.08, 0.05) * _ramp(f.v + 0.75, 0.05)
            * _ramp(f.dome + 0.06 - f.v, 0.06))
    # Clavicles: a gentle S from the sternum out to the shoulder, rising laterally.
    t = np.clip((su - 0.08) / 0.6, 0.0, 1.0)
    clavicle_v = -0.66 - 0.16 * t + 0.035 * np.sin(2 * np.pi * t)
    clavicle = _ramp(0.035 - np.abs(f.v - clavicle_v), 0.02) * _ramp(su - 0.08, 0.02) * _ramp(0.7 - su, 0.03)
    return _MU_BONE * (_SPINE_DEPTH * spine + _RIB_DEPTH * rib * cage + _CLAVICLE_DEPTH * clavicle)


def _render(q, size, textures, marker, want_masks, want_anatomy=False):
    """Line integral A (n, H, W), the finding masks and the anatomy masks (:data:`ANATOMY`) for the patients of ``q``.

    ``textures`` (n, H, W) is standard normal noise, one field per film, that
    draws the lung markings and the mottling of patchy consolidation.
    """
    n = len(q["rot"])
    lab = q["labels"].astype(bool)
    f = _frame(q, size)
    A = _soft_tissue(f, q)
    _lungs(f, q)
    added, heart, heart_cv = _heart_and_mediastinum(f, q)
    A += added
    sig = 1.2 * size / 64.0
    tex = ndimage.gaussian_filter(textures, sigma=(0, sig, sig)) * 2.2
    markings = _lung_markings(f, tex)

    masks = np.zeros((n, len(FINDINGS), size, size), bool) if want_masks else None
    fill = np.zeros_like(f.lung)  # fraction of lung air replaced by fluid
    extra_air = np.zeros_like(f.lung)

    k = FINDINGS.index("pneumonia")
    if lab[:, k].any():
        consolidation, region = _pneumonia(f, q, tex, lab[:, k])
        fill = np.maximum(fill, consolidation)
        if want_masks:  # the anatomical lung, including the part behind the heart (retrocardiac)
            masks[:, k] = (region > 0.35) & (f.field > 0) & (f.below > 0.5)

    k = FINDINGS.index("nodule")
    if lab[:, k].any():
        tissue, d2 = _nodule(f, q, lab[:, k])
        A += tissue
        if want_masks:
            masks[:, k] = (d2 < 1.0) & lab[:, k, None, None]

    k = FINDINGS.index("cardiomegaly")  # the heart drawn above is already wide; its mask is the heart
    if want_masks:
        masks[:, k] = (heart > 0) & lab[:, k, None, None]
    anatomy = np.stack([heart > 0, f.field > 0], axis=1) if want_anatomy else None  # in the order of ANATOMY

    k = FINDINGS.index("effusion")
    if lab[:, k].any():
        fluid_fill, tissue, fluid = _effusion(f, q, lab[:, k])
        fill = np.maximum(fill, fluid_fill)
        A += tissue
        if want_masks:
            masks[:, k] = (fluid > 0.5) & (f.qlung < 1.0)

    k = FINDINGS.index("pneumothorax")
    if lab[:, k].any():
        gap, air, line = _pneumothorax(f, q, lab[:, k])
        extra_air += air
        markings = markings * (1.0 - gap)
        A += line
        if want_masks:
            masks[:, k] = gap > 0.5

    # Air in the lungs lowers the line integral; fluid and markings raise it back.
    air = f.lung * (1.0 - fill)
    A -= _MU_AIR_IN_LUNG * 1.1 * air + extra_air
    A += markings * air * 0.55
    A -= _air_outside_the_lungs(f, q, heart_cv)
    A += _bones(f, q)

    if marker is not None:  # the confounder: a bright block burned into a corner
        block = (f.x > 0.62) & (f.x < 0.86) & (f.y > -0.88) & (f.y < -0.66)
        A = np.where(block & marker[:, None, None], _MARKER_VALUE, A)
    return A, masks, anatomy


def _expose(A, q, noise, size, blur=1.0):
    """Photon noise and detector blur (times ``blur``) on the line integral A (n, H, W); ``noise`` is standard normal."""
    mu = A * _col(q["contrast"]) * 0.9
    expected = _col(q["photons"]) * np.exp(-mu)
    counts = expected + np.sqrt(expected) * noise
    signal = -np.log(np.clip(counts, 1.0, None) / _col(q["photons"]))
    sig = 0.6 * blur * size / 64.0
    return ndimage.gaussian_filter(signal, sigma=(0, sig, sig))


def _window(signal, gamma, lo=None, hi=None):
    """Map the exposure to 0-255 as a viewer's automatic window does (see ``_WINDOW_PERCENTILES``)."""
    if lo is None:
        lo, hi = np.percentile(signal, _WINDOW_PERCENTILES, axis=(-2, -1), keepdims=True)
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


SITE_FACTORS = ("dose", "blur", "gamma")


def _site(site):
    factors = dict.fromkeys(SITE_FACTORS, 1.0)
    unknown = sorted(set(site or {}) - set(SITE_FACTORS))
    if unknown:
        raise ValueError(f"site factors are {', '.join(SITE_FACTORS)}; got {unknown}. "
                         "Example: site={'dose': 0.3, 'blur': 1.5, 'gamma': 1.3}.")
    for name, value in (site or {}).items():
        if not isinstance(value, (int, float, np.number)) or not value > 0:
            raise ValueError(f"site[{name!r}] is a factor on the acquisition and must be a positive number; "
                             f"got {value!r}. 1 leaves it as it is.")
        factors[name] = float(value)
    return factors


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
    anatomy: bool = False,
    site: dict | None = None,
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
    anatomy : bool, default False
        Also return masks of the heart and the lungs on every film
        (:data:`ANATOMY`; uses ``2 * n * size**2`` bytes).
    site : dict, optional
        Another hospital's detector and processing, as factors on each film's
        acquisition: ``"dose"`` (photons per pixel: below 1, noisier films),
        ``"blur"`` (the detector's blur, 0.6 px at 64 px: above 1, softer
        films) and ``"gamma"`` (the display curve of the processing: above 1,
        darker films), e.g. ``{"dose": 0.3, "blur": 1.5, "gamma": 1.3}``. The
        patients and their findings stay the same. Default: every factor 1.

    Returns
    -------
    PhantomImages
        ``images`` (n, size, size) uint8, ``labels`` (n, 5) uint8, ``masks``,
        ``ctr`` (n,), ``marker`` (n,), ``anatomy``.

    Examples
    --------
    >>> batch = generate(8, size=32, seed=1, masks=True)
    >>> batch.images.shape, batch.images.dtype, batch.labels.shape, batch.masks.shape
    ((8, 32, 32), dtype('uint8'), (8, 5), (8, 5, 32, 32))
    >>> bool((generate(8, size=32, seed=1).images == batch.images).all())
    True
    >>> other = generate(8, size=32, seed=1, site={"dose": 0.3, "blur": 1.5}, masks=True)
    >>> bool((other.masks == batch.masks).all()), bool((other.images == batch.images).all())
    (True, False)
    """
    _check(n, size, difficulty)
    prev = _prevalence(prevalence)
    if confounder_target not in FINDINGS:
        raise ValueError(f"confounder_target must be one of {', '.join(FINDINGS)}; got {confounder_target!r}.")
    if confounder is not None and not 0.0 <= confounder <= 1.0:
        raise ValueError(f"confounder must be None or a strength in [0, 1]; got {confounder!r}.")

    # Each film has its own streams, spawned from the seed: one for the patient, one for
    # the noise, one for the marker. Adding films, or switching the confounder, leaves
    # every other film as it was.
    factors = _site(site)
    streams = [[np.random.default_rng(s) for s in child.spawn(3)] for child in np.random.SeedSequence(seed).spawn(n)]
    p = _stack([_draw_patient(patient, prev, difficulty) for patient, _, _ in streams])
    p["photons"], p["gamma"] = p["photons"] * factors["dose"], p["gamma"] * factors["gamma"]
    marker = None
    if confounder is not None:
        target = p["labels"][:, FINDINGS.index(confounder_target)].astype(bool)
        chance = np.where(target, (1.0 + confounder) / 2.0, (1.0 - confounder) / 2.0)
        marker = np.array([m.random() for _, _, m in streams]) < chance

    images = np.empty((n, size, size), np.uint8)
    all_masks = np.zeros((n, len(FINDINGS), size, size), bool) if masks else None
    all_anatomy = np.zeros((n, len(ANATOMY), size, size), bool) if anatomy else None
    for start in range(0, n, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, n))
        q = {k: v[idx] for k, v in p.items()}
        noise = [streams[i][1] for i in idx]
        textures = np.stack([g.standard_normal((size, size), np.float32) for g in noise])
        A, m, parts = _render(q, size, textures, None if marker is None else marker[idx], masks, anatomy)
        quantum = np.stack([g.standard_normal((size, size), np.float32) for g in noise])
        images[idx] = _window(_expose(A, q, quantum, size, blur=factors["blur"]), q["gamma"])
        if masks:
            all_masks[idx] = m
        if anatomy:
            all_anatomy[idx] = parts
    nodule = p["labels"][:, FINDINGS.index("nodule")].astype(bool)
    mm_per_unit = p["scale"] * FIELD_OF_VIEW_MM / 2.0  # canonical units to film units to millimetres
    return PhantomImages(
        images=images,
        labels=p["labels"],
        masks=all_masks,
        ctr=p["ctr"].astype(np.float32),
        marker=marker if marker is not None else np.zeros(n, bool),
        pixel_spacing=pixel_spacing(size),
        nodule_mm=np.where(nodule, 2.0 * p["nod_r"] * mm_per_unit, np.nan).astype(np.float32),
        anatomy=all_anatomy,
    )


def _lujan(phase, n=2):
    """Breathing waveform of Lujan et al. (1999): 0 at end-exhale, 1 at peak inhale.

    Lujan et al. write the position as ``z(t) = z0 - b cos^(2n)(pi t / tau - phi)``
    with ``z0`` the end-exhale position: ``cos^(2n)`` is near 0 for most of a
    cycle and reaches 1 only briefly, so breathing lingers at end-exhale and
    passes quickly through peak inhale. With ``n = 2`` the depth stays below
    0.1 of the full excursion for 38 % of a cycle and above 0.9 for 15 %.

    >>> phase = np.linspace(0, 2 * np.pi, 100_000, endpoint=False)
    >>> round(float((_lujan(phase) < 0.1).mean()), 2), round(float((_lujan(phase) > 0.9).mean()), 2)
    (0.38, 0.15)
    """
    return np.cos(phase / 2.0) ** (2 * n)


def breathing_sequence(
    n_frames: int = 150,
    *,
    size: int = 64,
    seed: int = 0,
    fps: float = 10.0,
    pattern: str = "normal",
    breaths_per_minute: float | None = None,
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
    breaths_per_minute : float, optional
        Mean respiratory rate. By default each patient (seed) breathes at
        their own rate, drawn uniformly from 12 to 20 breaths a minute (a
        resting adult's range), so a model cannot assume one rate.
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
    if fps <= 0 or (breaths_per_minute is not None and breaths_per_minute <= 0):
        raise ValueError(f"fps and breaths_per_minute must be positive; got {fps!r} and {breaths_per_minute!r}.")
    if photons <= 0:
        raise ValueError(f"photons (the dose per frame) must be positive; got {photons!r}.")

    rng = np.random.default_rng(seed)
    base = _stack([_draw_patient(rng, {**DEFAULT_PREVALENCE, "nodule": 1.0, "pneumonia": 0.0}, 0.5)])
    # A mass large enough to track on low-dose frames without implanted markers: 40 to 60 mm across.
    base["nod_r"][:] = rng.uniform(40.0, 60.0) / (base["scale"][0] * FIELD_OF_VIEW_MM)
    base["nod_pos"][0] = [rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.45)]
    base["photons"][:] = photons
    rate_drawn = rng.uniform(12.0, 20.0)  # drawn whether used or not: the patient stays the same
    if breaths_per_minute is None:
        breaths_per_minute = rate_drawn
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

    p = {k: np.repeat(v, n_frames, axis=0) for k, v in base.items()}
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

    # One patient: the lung markings are the same in every frame; the quantum noise is new in each.
    texture = rng.standard_normal((size, size), np.float32)
    A = np.empty((n_frames, size, size), np.float32)
    for start in range(0, n_frames, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, n_frames))
        q = {k: v[idx] for k, v in p.items()}
        A[idx], _, _ = _render(q, size, np.broadcast_to(texture, (len(idx), size, size)), None, False)
    signal = _expose(A, p, rng.standard_normal(A.shape, np.float32), size)
    lo, hi = np.percentile(signal, _WINDOW_PERCENTILES)
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
        pixel_spacing=pixel_spacing(size),
        pattern=pattern,
        abnormal=pattern == "paralysed",
        breaths_per_minute=float(breaths_per_minute),
    )
