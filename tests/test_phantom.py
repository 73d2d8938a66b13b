"""The phantom: shapes, determinism, anatomy, findings and their masks, sequences."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from medkit.data import phantom
from medkit.data.phantom import FINDINGS


@pytest.fixture(scope="module")
def batch():
    return phantom.generate(300, size=64, seed=5, masks=True)


def test_shapes_and_types(batch):
    assert batch.images.shape == (300, 64, 64) and batch.images.dtype == np.uint8
    assert batch.labels.shape == (300, 5) and set(np.unique(batch.labels)) <= {0, 1}
    assert batch.masks.shape == (300, 5, 64, 64) and batch.masks.dtype == bool
    assert batch.ctr.shape == (300,) and batch.marker.shape == (300,)
    assert len(batch) == 300


def test_same_seed_same_images_other_seed_other_images():
    a = phantom.generate(20, size=32, seed=11)
    b = phantom.generate(20, size=32, seed=11)
    c = phantom.generate(20, size=32, seed=12)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_images_use_the_grey_range(batch):
    assert batch.images.min() == 0 and batch.images.max() == 255
    assert 60 < batch.images.mean() < 180


def test_lungs_are_dark_and_mediastinum_bright():
    """Air attenuates least: the lung fields are darker than the midline (heart, spine)."""
    normal = phantom.generate(200, size=64, seed=3, prevalence=dict.fromkeys(FINDINGS, 0.0))
    img = normal.images.astype(float)
    lung_zones = np.r_[img[:, 20:36, 12:20].mean(), img[:, 20:36, 44:52].mean()]
    midline = img[:, 20:44, 29:35].mean()
    outside = img[:, 2:8, 0:3].mean()  # air beside the neck reaches the detector unattenuated
    assert (lung_zones < midline - 40).all(), (lung_zones, midline)
    assert outside < lung_zones.min()


def test_prevalence_controls_labels():
    none = phantom.generate(100, size=32, seed=0, prevalence=dict.fromkeys(FINDINGS, 0.0))
    every = phantom.generate(100, size=32, seed=0, prevalence=dict.fromkeys(FINDINGS, 1.0))
    assert none.labels.sum() == 0 and every.labels.all()
    half = phantom.generate(2000, size=16, seed=0, prevalence={"pneumonia": 0.5})
    assert 0.45 < half.labels[:, 0].mean() < 0.55
    assert 0.12 < half.labels[:, FINDINGS.index("nodule")].mean() < 0.18  # default kept


def test_each_mask_is_present_exactly_when_its_label_is(batch):
    present = batch.masks.any(axis=(2, 3))
    assert np.array_equal(present, batch.labels.astype(bool))


def test_cardiomegaly_means_ctr_above_half(batch):
    big = batch.labels[:, FINDINGS.index("cardiomegaly")].astype(bool)
    assert (batch.ctr[big] > 0.5).all() and (batch.ctr[~big] < 0.5).all()


def _widest(masks):
    """The widest horizontal extent of each mask (n, H, W), first to last pixel of a row, in pixels."""
    cols = np.arange(masks.shape[-1])
    first = np.where(masks, cols, masks.shape[-1]).min(axis=-1)
    last = np.where(masks, cols, -1).max(axis=-1)
    return np.clip(last - first + 1, 0, None).max(axis=-1)


def test_every_film_has_its_heart_and_lungs_masked(batch):
    batch = phantom.generate(300, size=64, seed=5, masks=True, anatomy=True)
    assert batch.anatomy.shape == (300, len(phantom.ANATOMY), 64, 64) and batch.anatomy.dtype == bool
    heart, lungs = batch.anatomy[:, phantom.ANATOMY.index("heart")], batch.anatomy[:, phantom.ANATOMY.index("lungs")]
    assert heart.any(axis=(1, 2)).all() and lungs.any(axis=(1, 2)).all(), "on every film, with or without a finding"
    k = FINDINGS.index("cardiomegaly")
    big = batch.labels[:, k].astype(bool)
    assert np.array_equal(batch.masks[big, k], heart[big]), "the cardiomegaly mask is the heart, where it is present"
    cols = np.arange(64)
    heart_cols, lung_cols = np.where(heart.any(axis=1), cols, np.nan), np.where(lungs.any(axis=1), cols, np.nan)
    assert (np.nanmin(lung_cols, axis=1) < np.nanmin(heart_cols, axis=1)).all(), "a lung on each side of the heart"
    assert (np.nanmax(lung_cols, axis=1) > np.nanmax(heart_cols, axis=1)).all()
    assert phantom.generate(4, size=32, seed=1, masks=True).anatomy is None, "only with anatomy=True"
    assert np.array_equal(phantom.generate(300, size=64, seed=5).images, batch.images), "the same films either way"


def test_the_masks_measure_the_cardiothoracic_ratio_drawn():
    films = phantom.generate(300, size=128, seed=8, anatomy=True)
    measured = _widest(films.anatomy[:, 0]) / _widest(films.anatomy[:, 1])  # heart / lungs
    error = measured - films.ctr
    # Within a pixel, except where the heart's widest part lies below the dome, where the film does not show it.
    assert np.median(np.abs(error)) < 0.01 and error.max() < 2 / 128 * 2.5 and error.min() > -0.08
    assert (np.abs(error) > 0.03).mean() < 0.1
    big = films.labels[:, FINDINGS.index("cardiomegaly")].astype(bool)
    assert ((measured > 0.5) == big).mean() > 0.97, "measured on the film, the ratio still tells cardiomegaly"


@pytest.mark.parametrize("half_width", [0.15, 0.22, 0.3])
def test_the_heart_is_drawn_exactly_as_wide_as_asked(half_width):
    # The tilted heart's horizontal extent, measured on a fine grid, is the half-width the CTR asks for.
    from medkit.data.phantom import _heart

    g = np.linspace(-1, 1, 4001, dtype=np.float32)
    v, u = np.meshgrid(g, g, indexing="ij")
    heart = _heart(u[None], v[None], np.array([0.05]), np.array([0.1]), np.array([half_width]))[0]
    columns = g[heart.max(axis=0) > 0]
    assert (columns.max() - columns.min()) / 2 == pytest.approx(half_width, abs=2e-3)


def test_findings_make_their_region_denser():
    """Consolidation, effusion and nodules raise the pixel values inside their masks.

    A nodule adds least: a sphere of tissue 12-48 mm across replaces aerated lung along a chord of that length only.
    """
    for name, least in (("pneumonia", 10), ("effusion", 10), ("nodule", 5)):
        k = FINDINGS.index(name)
        prev = dict.fromkeys(FINDINGS, 0.0)
        clear = phantom.generate(64, size=64, seed=9, prevalence=prev)
        sick = phantom.generate(64, size=64, seed=9, prevalence={**prev, name: 1.0}, masks=True)
        inside = sick.masks[:, k]
        diff = sick.images.astype(float) - clear.images.astype(float)
        assert diff[inside].mean() > least, name


def test_pneumothorax_region_is_darker():
    prev = dict.fromkeys(FINDINGS, 0.0)
    clear = phantom.generate(64, size=64, seed=4, prevalence=prev)
    sick = phantom.generate(64, size=64, seed=4, prevalence={**prev, "pneumothorax": 1.0}, masks=True)
    inside = sick.masks[:, FINDINGS.index("pneumothorax")]
    assert (sick.images.astype(float) - clear.images)[inside].mean() < -5


def test_difficulty_scales_lesion_contrast():
    prev = {**dict.fromkeys(FINDINGS, 0.0), "pneumonia": 1.0}
    contrasts = []
    for d in (0.0, 1.0):
        clear = phantom.generate(64, size=64, seed=7, prevalence=dict.fromkeys(FINDINGS, 0.0), difficulty=d)
        sick = phantom.generate(64, size=64, seed=7, prevalence=prev, difficulty=d, masks=True)
        inside = sick.masks[:, 0]
        contrasts.append((sick.images.astype(float) - clear.images)[inside].mean())
    assert contrasts[0] > contrasts[1] + 5


def test_confounder_marker_follows_the_label():
    b = phantom.generate(2000, size=16, seed=1, confounder=0.8)
    y = b.labels[:, 0].astype(bool)
    assert b.marker[y].mean() > 0.85 and b.marker[~y].mean() < 0.15
    assert not phantom.generate(200, size=16, seed=1).marker.any()
    marked = b.images[b.marker][:, 1:3, 13:15]
    unmarked = b.images[~b.marker][:, 1:3, 13:15]
    assert marked.mean() > 235 and marked.mean() > unmarked.mean() + 150  # burned in, near white


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "positive whole number"),
        ({"size": 8}, "from 16 to 512"),
        ({"difficulty": 1.5}, "between 0"),
        ({"prevalence": {"pneumonnia": 0.2}}, "unknown finding"),
        ({"prevalence": {"nodule": 1.2}}, "probability"),
        ({"confounder": -0.1}, "strength in"),
        ({"confounder_target": "fracture"}, "confounder_target"),
        ({"site": {"kvp": 0.9}}, "site factors are dose, blur, gamma"),
        ({"site": {"dose": 0}}, "positive number"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs, message):
    args = {"n": 4, "size": 32, **kwargs}
    n = args.pop("n")
    with pytest.raises(ValueError, match=message):
        phantom.generate(n, **args)


# ---------------------------------------------------------------- another hospital


def test_another_site_films_the_same_patients_differently(batch):
    other = phantom.generate(300, size=64, seed=5, masks=True, site={"dose": 0.3, "blur": 1.5, "gamma": 1.3})
    assert (other.labels == batch.labels).all() and (other.masks == batch.masks).all()
    assert np.allclose(other.ctr, batch.ctr) and np.allclose(other.nodule_mm, batch.nodule_mm, equal_nan=True)
    assert np.abs(other.images.astype(int) - batch.images).mean() > 5, "the pixels change"


def test_site_factors_of_one_change_nothing():
    plain = phantom.generate(20, size=32, seed=4).images
    assert (phantom.generate(20, size=32, seed=4, site={}).images == plain).all()
    assert (phantom.generate(20, size=32, seed=4, site={"dose": 1, "blur": 1.0, "gamma": 1}).images == plain).all()


def test_site_dose_blur_and_gamma_do_what_they_say():
    from scipy import ndimage

    def grain(images):  # what a 1-pixel blur removes: the quantum noise, mostly
        x = images.astype(float)
        return np.std(x - ndimage.gaussian_filter(x, sigma=(0, 1, 1)))

    plain = phantom.generate(60, size=64, seed=6).images
    assert grain(phantom.generate(60, size=64, seed=6, site={"dose": 0.1}).images) > 1.2 * grain(plain)
    assert grain(phantom.generate(60, size=64, seed=6, site={"blur": 2.0}).images) < 0.8 * grain(plain)
    assert phantom.generate(60, size=64, seed=6, site={"gamma": 1.5}).images.mean() < plain.mean() - 10


def test_load_phantom_passes_the_site_and_records_it():
    from medkit.data import load_phantom

    ds = load_phantom((8, 4, 4), image_size=32, site={"dose": 0.5})
    assert ds.info["site"] == {"dose": 0.5}
    assert (ds.train.labels == load_phantom((8, 4, 4), image_size=32).train.labels).all()


def test_load_phantom_keeps_the_anatomy_of_the_same_films():
    from medkit import data

    plain = data.load("phantom", sizes=(6, 3, 8), image_size=32, labels="all", masks=True)
    ds = data.load("phantom", sizes=(6, 3, 8), image_size=32, labels="all", masks=True, anatomy=True)
    for name in ("train", "val", "test"):
        assert np.array_equal(ds.splits[name].images, plain.splits[name].images), "the same films"
        assert ds.info[name]["anatomy"].shape == (len(ds.splits[name]), 2, 32, 32) and "anatomy" not in plain.info[name]
    heart = ds.info["test"]["anatomy"][:, 0]
    k = FINDINGS.index("cardiomegaly")
    big = ds.info["test"]["all_labels"][:, k] == 1
    assert heart.any(axis=(1, 2)).all() and np.array_equal(heart[big], ds.test.masks[big, k])


# ---------------------------------------------------------------- sequences


@pytest.fixture(scope="module")
def seq():
    return phantom.breathing_sequence(120, size=64, seed=2)


def test_sequence_shapes(seq):
    assert seq.frames.shape == (120, 64, 64) and seq.frames.dtype == np.uint8
    assert seq.t.shape == (120,) and seq.domes.shape == (120, 2, 2) and seq.nodule.shape == (120, 2)
    assert seq.fps == pytest.approx(10.0) and not seq.abnormal


def test_domes_move_down_on_inspiration_by_the_excursion(seq):
    rows = seq.domes[:, :, 0]
    travel = rows.max(axis=0) - rows.min(axis=0)
    # excursion 0.12 canonical units = 0.06 of the film height, ~3.8 px at 64 px (times the magnification)
    assert np.all((travel > 2.5) & (travel < 5.0)), travel
    assert np.corrcoef(rows[:, 0], rows[:, 1])[0, 1] > 0.99


def test_nodule_moves_with_its_hemidiaphragm(seq):
    assert np.ptp(seq.nodule[:, 0]) > 0.5
    side_rows = seq.domes[:, :, 0]
    best = max(abs(np.corrcoef(seq.nodule[:, 0], side_rows[:, k])[0, 1]) for k in range(2))
    assert best > 0.99


def test_ground_truth_points_at_the_nodule_in_the_frames(seq, monkeypatch):
    """The same sequence drawn without the nodule differs only inside the true disc, and is darker there."""
    monkeypatch.setattr(phantom, "_nodule", lambda f, q, on: (np.zeros_like(f.u), np.full_like(f.u, np.inf)))
    without = phantom.breathing_sequence(120, size=64, seed=2)
    rr, cc = np.mgrid[0:64, 0:64]
    for t in range(0, 120, 10):
        d = np.hypot(rr - seq.nodule[t, 0], cc - seq.nodule[t, 1])
        added = seq.frames[t].astype(float) - without.frames[t]
        assert added[d < 0.6 * seq.nodule_radius].mean() > 8, t
        assert np.abs(added[d > 1.6 * seq.nodule_radius]).max() <= 2, t  # the detector's blur spreads a little


def test_breathing_lingers_at_end_exhale():
    """Lujan's waveform: the domes spend longer near end-exhale (highest, smallest row) than near peak inhale.

    With n = 2 a cycle spends 38 % of its time below a tenth of the depth and 15 % above nine tenths.
    """
    row = phantom.breathing_sequence(1200, size=16, seed=2).domes[:, 0, 0]
    depth = (row - row.min()) / np.ptp(row)  # 0 at end-exhale, 1 at peak inhale
    assert (depth < 0.1).mean() > 2 * (depth > 0.9).mean(), ((depth < 0.1).mean(), (depth > 0.9).mean())


def test_each_patient_breathes_at_their_own_rate():
    rates = [phantom.breathing_sequence(20, size=32, seed=s).breaths_per_minute for s in range(8)]
    assert all(12 <= r <= 20 for r in rates) and np.ptp(rates) > 2, rates
    drawn = phantom.breathing_sequence(20, size=32, seed=0)
    assert phantom.breathing_sequence(20, size=32, seed=0, breaths_per_minute=15.0).breaths_per_minute == 15.0
    # The rate is drawn whether or not it is used: giving the drawn rate gives the same sequence.
    given = phantom.breathing_sequence(20, size=32, seed=0, breaths_per_minute=drawn.breaths_per_minute)
    assert np.array_equal(given.frames, drawn.frames) and np.array_equal(given.domes, drawn.domes)


def test_the_breathing_rate_sets_the_period():
    s = phantom.breathing_sequence(600, size=16, seed=3, fps=10.0)
    row = s.domes[:, 0, 0] - s.domes[:, 0, 0].mean()
    spectrum = np.abs(np.fft.rfft(row, n=16 * len(row)))
    freq = np.fft.rfftfreq(16 * len(row), d=1 / s.fps)
    assert freq[1:][np.argmax(spectrum[1:])] * 60 == pytest.approx(s.breaths_per_minute, abs=0.3)


def test_paralysed_pattern_leaves_one_dome_still():
    s = phantom.breathing_sequence(120, size=64, seed=2, pattern="paralysed")
    travel = np.ptp(s.domes[:, :, 0], axis=0)
    assert s.abnormal and travel.min() < 0.3 * travel.max()


def test_irregular_pattern_varies_breath_depth():
    regular = phantom.breathing_sequence(300, size=32, seed=4)
    irregular = phantom.breathing_sequence(300, size=32, seed=4, pattern="irregular")
    assert not np.allclose(regular.domes, irregular.domes)


def test_sequence_bad_pattern():
    with pytest.raises(ValueError, match="pattern must be one of"):
        phantom.breathing_sequence(10, pattern="gasping")


# ---------------------------------------------------------------- per-film streams, display, millimetres


def test_each_film_has_its_own_stream():
    # Adding films, or switching the confounder, leaves the other films as they were.
    ten, five = phantom.generate(10, size=32, seed=8), phantom.generate(5, size=32, seed=8)
    assert np.array_equal(ten.images[:5], five.images) and np.array_equal(ten.labels[:5], five.labels)
    marked = phantom.generate(10, size=32, seed=8, confounder=0.5)
    assert 0 < marked.marker.sum() < 10
    assert np.array_equal(marked.images[~marked.marker], ten.images[~marked.marker])
    assert np.array_equal(marked.labels, ten.labels)


def test_the_window_does_not_burn_out_the_heart_and_the_spine_shows_through_it():
    films = phantom.generate(40, size=128, seed=6, prevalence={**dict.fromkeys(FINDINGS, 0.0), "cardiomegaly": 1.0},
                             masks=True)
    heart = films.masks[:, FINDINGS.index("cardiomegaly")]
    assert (films.images[heart] == 255).mean() < 0.03
    brighter = []
    for image, mask in zip(films.images.astype(float), heart):
        rows = np.flatnonzero(mask.sum(axis=1) > 0.6 * mask.sum(axis=1).max())  # the heart's widest rows
        profile = image[rows].mean(axis=0)
        # The vertebral column runs down near the midline; two thirds of the heart lie to its right.
        spine = 54 + int(np.argmax(profile[54:75]))
        brighter.append(profile[spine] - profile[spine + 10:spine + 17].mean())
    assert np.mean(brighter) > 6 and np.mean(np.array(brighter) > 3) > 0.9, brighter


def test_nodule_sizes_in_millimetres_match_their_masks():
    films = phantom.generate(200, size=128, seed=10, prevalence={**dict.fromkeys(FINDINGS, 0.0), "nodule": 1.0},
                             masks=True)
    assert films.pixel_spacing == phantom.FIELD_OF_VIEW_MM / 128 == phantom.pixel_spacing(128)
    area = films.masks[:, FINDINGS.index("nodule")].sum(axis=(1, 2))
    measured = 2 * np.sqrt(area / np.pi) * films.pixel_spacing
    np.testing.assert_allclose(measured, films.nodule_mm, rtol=0.12)
    assert 11 < np.nanmin(films.nodule_mm) and np.nanmax(films.nodule_mm) < 52
    assert (np.nanmax(films.nodule_mm) > 30) and (np.nanmin(films.nodule_mm) < 30)  # masses and nodules
    assert np.isnan(phantom.generate(5, size=32, seed=1, prevalence={"nodule": 0.0}).nodule_mm).all()


# ---------------------------------------------------------------- golden films

GOLDEN = Path(__file__).parent / "data" / "phantom_golden.npz"


def golden_films():
    """What the golden file holds: a fixed seed's films, labels and masks, and a breathing sequence."""
    films = phantom.generate(24, size=32, seed=2024, masks=True, confounder=0.5)
    seq = phantom.breathing_sequence(12, size=32, seed=2024)
    return {"images": films.images, "labels": films.labels, "masks": np.packbits(films.masks), "marker": films.marker,
            "frames": seq.frames, "domes": seq.domes, "nodule": seq.nodule}


def test_the_generator_still_draws_the_golden_films():
    """An unintended change to the generator shows here. After an intended one, rewrite the file:
    ``python tests/test_phantom.py`` (and say why in the commit).

    Not a hash of the bytes: numpy's exp and log may round the last bit differently on another CPU, which can move
    a grey level by one. So each array must match within one grey level on all but 0.5 % of its pixels.
    """
    with np.load(GOLDEN) as stored:
        now = golden_films()
        assert set(stored.files) == set(now)
        for key in ("labels", "marker"):
            assert np.array_equal(stored[key], now[key]), key
        for key in ("domes", "nodule"):
            np.testing.assert_allclose(now[key], stored[key], rtol=0, atol=1e-6, err_msg=key)
        for key in ("images", "frames"):
            off = np.abs(now[key].astype(int) - stored[key]) > 1
            assert off.mean() < 0.005, f"{key}: {off.mean():.1%} of the pixels moved by more than one grey level"
        masks = np.unpackbits(stored["masks"])[: np.unpackbits(now["masks"]).size]
        assert (masks != np.unpackbits(now["masks"])).mean() < 0.005, "masks"


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **golden_films())
    print(f"wrote {GOLDEN}")


# ---------------------------------------------------------------- realism, measured on real films

# The phantom's realism targets, measured on PneumoniaMNIST (tools/phantom_realism.py).
TRANSFER_AUC_AT_LEAST = 0.85
SEPARABILITY_AUC_AT_MOST = 0.90


@pytest.fixture(scope="module")
def realism():
    spec = importlib.util.spec_from_file_location("phantom_realism", Path(__file__).parents[1] / "tools" / "phantom_realism.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.real
def test_a_cnn_trained_on_the_phantom_alone_recognises_real_pneumonia(realism, shared_npz):
    """The realism target: mean test AUC over 3 seeds on PneumoniaMNIST of a small CNN that saw only phantom films."""
    _, test, labels = realism.load_real(shared_npz)
    aucs = [realism.transfer_auc(test, labels, seed)["real_test_auc"] for seed in (0, 1, 2)]
    assert np.mean(aucs) >= TRANSFER_AUC_AT_LEAST, aucs


@pytest.mark.real
@pytest.mark.xfail(strict=True, reason="not reached yet: a linear model separates the phantom from real films "
                   "with AUC 1.000 (docs/results/phantom_realism.json); strict, so reaching it fails here until "
                   "this mark is removed")
def test_a_linear_model_cannot_tell_the_phantom_from_real_films_perfectly(realism, shared_npz):
    train, test, _ = realism.load_real(shared_npz)
    assert realism.separability_auc(train, test) <= SEPARABILITY_AUC_AT_MOST


@pytest.mark.real
def test_the_yardstick_is_the_linear_model_on_the_real_task(realism, shared_npz):
    """reference_auc is the same pixel model on real pneumonia against real normal films: well above chance, and below
    what the kit's CNN reaches on them (0.969 in the README's benchmark), as a linear model on pixels should be."""
    assert 0.85 < realism.reference_auc(shared_npz) < 0.96


@pytest.mark.real
def test_what_separates_them_linearly_is_mostly_the_mean_film(realism, shared_npz):
    """The diagnosis behind the separability target: with the phantom's mean film moved onto the real films' (a
    test-only shift, not a phantom), a linear model is close to chance; moved half-way, it still separates them."""
    train, test, _ = realism.load_real(shared_npz)
    assert realism.separability_auc(train, test, toward_real=1.0) < 0.65
    assert realism.separability_auc(train, test, toward_real=0.5) > 0.95
