import numpy as np
import pytest
from skimage.feature import hog
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from medkit import features
from medkit.data import phantom


def test_hog_matches_skimage_and_layout():
    images = phantom.generate(3, size=32, seed=0).images
    h = features.HOG(pixels_per_cell=8).fit(images)
    out = h.transform(images)
    ref = hog(images[1], orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L2-Hys")
    np.testing.assert_allclose(out[1], ref, rtol=1e-6)
    assert h.layout_ == (3, 3, 2, 2, 9) and out.shape[1] == np.prod(h.layout_)


def test_lbp_histograms_sum_to_one_per_tile():
    images = phantom.generate(2, size=32, seed=0).images
    out = features.LBP(P=8, grid=4).fit_transform(images)
    assert out.shape == (2, 16 * 10)
    np.testing.assert_allclose(out.reshape(2, 16, 10).sum(axis=2), 1.0, rtol=1e-6)


def test_lbp_reads_floats_as_8_bit_levels():
    images = phantom.generate(2, size=32, seed=0).images
    lbp = features.LBP()
    np.testing.assert_array_equal(lbp.transform(images), lbp.transform(images / 255.0))


def test_tile_stats_global_equals_image_statistics():
    images = phantom.generate(2, size=32, seed=0).images
    out = features.TileStats(grid=1).fit_transform(images)
    np.testing.assert_allclose(out[:, 0], images.mean(axis=(1, 2)) / 255, rtol=1e-5)


@pytest.mark.parametrize("transformer", [features.HOG(), features.LBP(), features.TileStats()])
def test_flat_input_is_refused_with_advice(transformer):
    with pytest.raises(ValueError, match=r"\(N, H, W\).*split.images"):
        transformer.fit(np.zeros((4, 64 * 64)))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="smaller pixels_per_cell"):
        features.HOG(pixels_per_cell=32).fit(np.zeros((1, 40, 40)))
    with pytest.raises(ValueError, match="fewer cells"):
        features.hog_lbp_features(28, cells=20)
    with pytest.raises(ValueError, match="grid must be between"):
        features.tiles(np.zeros((4, 4)), 5)


def test_pipeline_cross_validates_and_learns(tiny_phantom):
    # Density-driven findings are learnable from these features: far above chance on the phantom.
    ds = tiny_phantom
    x = np.concatenate([ds.train.images, ds.val.images, ds.test.images])
    y = np.concatenate([ds.train.labels, ds.val.labels, ds.test.labels])[:, 0]
    model = make_pipeline(features.hog_lbp_features(32), RandomForestClassifier(50, random_state=0))
    scores = cross_val_score(clone(model), x, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
