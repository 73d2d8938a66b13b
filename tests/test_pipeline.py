"""The tf.data pipeline, augmentation and class weights."""

import numpy as np
import pytest

from medkit.data import augmenter, class_weights, pipeline


def _first(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


def test_shapes_range_and_types(tiny_phantom):
    x, y = _first(pipeline(tiny_phantom.train, image_size=48, batch_size=16))
    assert x.shape == (16, 48, 48, 1) and x.dtype == np.float32
    assert y.shape == (16, 1) and y.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_evaluation_pipeline_keeps_order(tiny_phantom):
    x, y = _first(pipeline(tiny_phantom.test, image_size=32, batch_size=20))
    assert np.allclose(x[..., 0], tiny_phantom.test.images / 255.0, atol=1e-6)
    assert np.array_equal(y, tiny_phantom.test.labels)


def test_training_pipeline_is_reproducible_and_reshuffles(tiny_phantom):
    a = pipeline(tiny_phantom.train, image_size=32, batch_size=8, training=True, seed=3)
    b = pipeline(tiny_phantom.train, image_size=32, batch_size=8, training=True, seed=3)
    xa, _ = _first(a)
    xb, _ = _first(b)
    assert np.array_equal(xa, xb), "same seed, same batches"
    xc, _ = _first(pipeline(tiny_phantom.train, image_size=32, batch_size=8, training=True, seed=4))
    assert not np.array_equal(xa, xc)
    # Each epoch visits every film once, in a new order (no augmentation, so each film is identified by its pixels).
    plain = pipeline(tiny_phantom.train, image_size=32, batch_size=8, training=True, augment=False, seed=3)
    epochs = [np.concatenate([x.numpy().sum(axis=(1, 2, 3)) for x, _ in plain]) for _ in range(2)]
    films = np.sort(tiny_phantom.train.images.astype(np.float64).sum(axis=(1, 2)) / 255.0)
    for order in epochs:
        np.testing.assert_allclose(np.sort(order), films, rtol=1e-5)
    assert not np.allclose(epochs[0], epochs[1]), "the second epoch must be reshuffled"


def test_augmentation_changes_pixels_not_labels(tiny_phantom):
    plain = pipeline(tiny_phantom.test, image_size=32, batch_size=20)
    augmented = pipeline(tiny_phantom.test, image_size=32, batch_size=20, augment=True, seed=1)
    (x0, y0), (x1, y1) = _first(plain), _first(augmented)
    assert np.array_equal(y0, y1)
    assert not np.allclose(x0, x1)
    # small, anatomically plausible changes: the image is still mostly itself
    assert np.corrcoef(x0.ravel(), x1.ravel())[0, 1] > 0.8


def test_no_horizontal_flip_unless_asked():
    names = [layer.__class__.__name__ for layer in augmenter().layers]
    assert "RandomFlip" not in names
    assert "RandomFlip" in [layer.__class__.__name__ for layer in augmenter(flip=True).layers]


def test_bad_pipeline_arguments(tiny_phantom):
    with pytest.raises(ValueError, match="image_size"):
        pipeline(tiny_phantom.train, image_size=4)


def test_class_weights_balance_the_classes():
    y = np.array([0] * 25 + [1] * 75)
    w = class_weights(y)
    assert w[0] * 25 == pytest.approx(w[1] * 75)
    assert w == {0: 2.0, 1: pytest.approx(2 / 3)}


@pytest.mark.parametrize(
    "labels, message",
    [(np.zeros((4, 3)), "multi-label"), (np.ones(5), "both classes")],
)
def test_class_weights_errors(labels, message):
    with pytest.raises(ValueError, match=message):
        class_weights(labels)
