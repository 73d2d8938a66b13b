"""From a split to batches: the ``tf.data`` input pipeline.

The order of the steps matters and is the same for every dataset::

    read/decode -> resize -> scale to [0, 1] -> cache -> shuffle -> batch
                -> augment (training only) -> prefetch

Caching comes after the deterministic steps and before the random ones, so
the expensive decoding happens once while every epoch still sees new
augmentations. Augmentation is anatomically valid only: small rotation,
shift and zoom, as positioning varies, and a change of contrast, as
exposure varies. There is no horizontal flip by default: a flipped chest
film puts the heart on the wrong side (dextrocardia, a rare anomaly), so the
model would be trained on anatomy it should treat as abnormal, and laterality
(a left-sided effusion) would be lost.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import numpy as np

from medkit.data.core import Split

__all__ = ["pipeline", "finish", "augmenter", "class_weights"]


def augmenter(*, rotation_degrees: float = 5.0, shift: float = 0.05, zoom: float = 0.05, contrast: float = 0.1,
              flip: bool = False, seed: int = 0):
    """The kit's augmentation as a Keras model (images in [0, 1], (B, H, W, 1)).

    Parameters
    ----------
    rotation_degrees : float, default 5
        Largest rotation either way.
    shift : float, default 0.05
        Largest shift, as a fraction of height and width.
    zoom : float, default 0.05
        Largest zoom in or out, as a fraction.
    contrast : float, default 0.1
        Largest contrast change, as a fraction.
    flip : bool, default False
        Add a horizontal flip. Off for chest films (see the module notes).
    seed : int, default 0
        Seeds every random layer, so augmentation is reproducible.
    """
    import keras

    L = keras.layers
    layers = [
        L.RandomRotation(rotation_degrees / 360.0, fill_mode="nearest", seed=seed),
        L.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed + 1),
        L.RandomZoom(zoom, zoom, fill_mode="nearest", seed=seed + 2),
        L.RandomContrast(contrast, value_range=(0.0, 1.0), seed=seed + 3),
    ]
    if flip:
        layers.append(L.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers, name="augment")


def pipeline(split: Split, *, image_size: int, batch_size: int = 64, training: bool = False,
             augment: bool | None = None, seed: int = 0, cache: bool | str = True):
    """A batched ``tf.data.Dataset`` of ``(images, labels)`` from a split.

    Parameters
    ----------
    split : Split
        In memory (``images``) or on disk (``paths``).
    image_size : int
        Images are resized to ``(image_size, image_size)``.
    batch_size : int, default 64
    training : bool, default False
        Shuffle (with ``seed``, reshuffled every epoch) and augment.
    augment : bool, optional
        Override: augment even when not training, or not when training.
    seed : int, default 0
        Seeds shuffling and augmentation.
    cache : bool or str, default True
        Cache decoded images in memory (True), in a file (a path), or not at all.

    Returns
    -------
    tf.data.Dataset
        Images float32 (B, image_size, image_size, 1) in [0, 1]; labels
        float32 (B, K).
    """
    import tensorflow as tf

    _check_sizes(image_size, batch_size)
    labels = split.labels.astype(np.float32)
    if split.in_memory:
        ds = tf.data.Dataset.from_tensor_slices((split.images[..., None], labels))
    else:

        def read(path, label):
            image = tf.io.decode_image(tf.io.read_file(path), channels=1, expand_animations=False)
            return image, label

        ds = tf.data.Dataset.from_tensor_slices((split.paths, labels)).map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return finish(ds, image_size=image_size, batch_size=batch_size, training=training, augment=augment, seed=seed,
                  cache=cache, shuffle_buffer=min(len(split), 10_000))


def _check_sizes(image_size: int, batch_size: int) -> None:
    if image_size < 8 or batch_size < 1:
        raise ValueError(f"image_size must be >= 8 and batch_size >= 1; got {image_size!r} and {batch_size!r}.")


def finish(ds, *, image_size: int, batch_size: int = 64, training: bool = False, augment: bool | None = None,
           seed: int = 0, cache: bool | str = True, shuffle_buffer: int = 10_000):
    """The steps every source shares, from decoded images to batches.

    Parameters
    ----------
    ds : tf.data.Dataset
        Unbatched ``(image, label)`` pairs: uint8 images (H, W, 1), float32
        labels (K,). :func:`pipeline` and :func:`medkit.data.records.read_tfrecords`
        make one.
    image_size, batch_size, training, augment, seed, cache
        As in :func:`pipeline`.
    shuffle_buffer : int, default 10000
        Images held for shuffling when training.

    Returns
    -------
    tf.data.Dataset
        As :func:`pipeline` returns.
    """
    import tensorflow as tf

    _check_sizes(image_size, batch_size)
    augment = training if augment is None else augment

    def prepare(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0), label

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache() if cache is True else ds.cache(str(cache))
    if training:
        ds = ds.shuffle(max(1, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        # Sequential on purpose: the random layers draw from one seed state, and
        # parallel calls would take their draws in a different order each run.
        aug = augmenter(seed=seed)
        ds = ds.map(lambda x, y: (aug(x, training=True), y))
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Keras ``class_weight`` for a binary task: rarer class weighted up.

    Uses scikit-learn's "balanced" rule, ``n / (2 * n_class)``, so both
    classes contribute equally to the loss.

    Parameters
    ----------
    labels : ndarray, shape (N,) or (N, 1)

    Examples
    --------
    >>> class_weights(np.array([[0], [1], [1], [1]]))
    {0: 2.0, 1: 0.6666666666666666}
    """
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise ValueError(
            f"class_weights is for binary labels, shape (N,) or (N, 1); got {labels.shape}. For multi-label "
            "tasks weight each class inside the loss instead (see notebook 01, class imbalance)."
        )
    y = labels.ravel()
    present = np.unique(y)
    if len(present) != 2:
        raise ValueError(f"both classes must be present to weight them; found only {present.tolist()}.")
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}
