"""Where a network looks: Grad-CAM and attention rollout.

Grad-CAM (Selvaraju et al. 2017) weights each feature map ``A_k`` of a
convolutional layer by how much the output ``y`` grows with it, averaged over
the map, ``alpha_k = mean_ij dy / dA_k[i, j]``, and keeps the positive part
of the weighted sum, ``ReLU(sum_k alpha_k A_k)``: a coarse map of the regions
that raise the score. Resized to the image and scaled to [0, 1], it can be
laid over the radiograph or scored against a lesion mask.

Attention rollout (Abnar and Zuidema 2020) follows attention instead of
gradients, for Transformers: each layer's attention ``A`` (averaged over
heads) is mixed with the identity for the residual path, ``0.5 A + 0.5 I``,
its rows renormalised, and the layers multiplied, input layer last; the
result says how much each output token draws on each input patch.

Occlusion sensitivity (Zeiler and Fergus 2014) asks the model directly:
cover a patch of the film with a plain value and record how much the score
drops; the drops, spread over the pixels each patch covered, form the map.
It needs no gradients and no access to the layers, only many predictions.

A map is only pictures until it is scored. Where the true location is
known (the phantom's lesion masks), :func:`pointing_game` counts the maps
whose peak falls in it and :func:`mass_inside` measures the share of each
map's mass inside it; a uniform map scores the lesion's area.

Introduced in ``04_cnn.ipynb`` (Grad-CAM) and ``07_transformer.ipynb``
(rollout); ``08_evaluation_explainability.ipynb`` compares Grad-CAM with
occlusion sensitivity and scores both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grad_cam", "occlusion", "attention_maps", "attention_rollout", "pointing_game", "mass_inside"]


def grad_cam(model, images, layer: str, *, output: int = 0) -> np.ndarray:
    """Grad-CAM maps of ``model`` at convolutional layer ``layer``.

    Parameters
    ----------
    model : keras.Model
        A functional model whose output ``output`` is a probability. When it
        ends in a ``Dense`` layer with a sigmoid, the score explained is that
        layer's pre-sigmoid value (the logit), as Selvaraju et al. explain the
        class score before the softmax. The sigmoid's derivative ``p (1 - p)``
        multiplies every channel's weight alike, so it would leave the scaled
        map unchanged, except where a confident prediction saturates the
        float32 sigmoid: there its gradient is 0 and the map would be empty.
    images : array (N, H, W) or (N, H, W, 1)
        Inputs as the model takes them (float, 0-1).
    layer : str
        Name of the convolutional (or activation) layer to explain.
    output : int, default 0
        Which output column to explain.

    Returns
    -------
    ndarray (N, H, W), float32
        Each map resized to the input size and scaled to [0, 1] (all zeros
        where no location raises the score).
    """
    import keras
    import tensorflow as tf

    x = _as_batch(images)
    names = [lay.name for lay in model.layers]
    if layer not in names:
        raise ValueError(f"model {model.name!r} has no layer {layer!r}; its layers are: {', '.join(names)}.")
    head = model.layers[-1]
    logit = isinstance(head, keras.layers.Dense) and head.activation is keras.activations.sigmoid
    probe = keras.Model(model.input, [model.get_layer(layer).output, head.input if logit else model.output])
    with tf.GradientTape() as tape:
        maps, last = probe(x, training=False)
        score = (tf.matmul(last, head.kernel) + head.bias)[:, output] if logit else last[:, output]
    grads = tape.gradient(score, maps)
    alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(alpha * maps, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
    return _unit_peak(cam)


def _unit_peak(maps):
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)


def _as_batch(images):
    x = np.asarray(images, np.float32)
    return x[..., None] if x.ndim == 3 else x


def attention_maps(model, images) -> list[np.ndarray]:
    """The attention weights of every self-attention layer of ``model``.

    Parameters
    ----------
    model : keras.Model
        A functional model with ``keras.layers.MultiHeadAttention`` layers
        used as self-attention (query = key = value), such as
        :func:`medkit.models.vit`.
    images : array (N, H, W) or (N, H, W, 1)

    Returns
    -------
    list of ndarray (N, heads, T, T)
        One per attention layer, in the order the model applies them; row
        ``i`` of a head is the softmax weights token ``i`` gives every token.
    """
    import keras

    layers = [lay for lay in model.layers if isinstance(lay, keras.layers.MultiHeadAttention)]
    if not layers:
        raise ValueError(f"model {model.name!r} has no MultiHeadAttention layer; attention maps need a Transformer "
                         "such as medkit.models.vit (for a CNN use grad_cam).")
    queries = [lay.input[0] if isinstance(lay.input, (list, tuple)) else lay.input for lay in layers]
    tokens = keras.Model(model.input, queries)(_as_batch(images), training=False)
    tokens = tokens if isinstance(tokens, (list, tuple)) else [tokens]
    return [np.asarray(lay(t, t, return_attention_scores=True, training=False)[1]) for lay, t in zip(layers, tokens)]


def attention_rollout(model, images, *, residual: float = 0.5, resize: bool = True) -> np.ndarray:
    """Attention rollout maps: how much the pooled output draws on each patch.

    Parameters
    ----------
    model : keras.Model
        A Transformer whose tokens form a square grid of patches and whose
        output pools all tokens (as :func:`medkit.models.vit` does).
    images : array (N, H, W) or (N, H, W, 1)
    residual : float, default 0.5
        Weight of the identity mixed into each layer's attention for the
        residual connection.
    resize : bool, default True
        Resize the maps to the image; with ``False`` they stay on the grid of
        patches, one value per token.

    Returns
    -------
    ndarray (N, H, W), or (N, g, g) with ``resize=False``; float32
        The mean over output tokens of the rolled-out attention, resized to
        the image (bilinear) if asked, and scaled to a peak of 1.
    """
    import tensorflow as tf

    x = _as_batch(images)
    rollout = None
    for weights in attention_maps(model, x):
        a = weights.mean(axis=1)  # over heads: (N, T, T)
        a = residual * np.eye(a.shape[-1]) + (1 - residual) * a
        a /= a.sum(axis=-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout
    tokens = rollout.shape[-1]
    grid = int(round(np.sqrt(tokens)))
    if grid * grid != tokens:
        raise ValueError(f"the model has {tokens} tokens, not a square grid of patches; rollout maps need one.")
    relevance = rollout.mean(axis=1).reshape(-1, grid, grid, 1).astype(np.float32)
    if not resize:
        return _unit_peak(relevance[..., 0])
    maps = tf.image.resize(relevance, x.shape[1:3], method="bilinear")[..., 0].numpy()
    return _unit_peak(maps)


def occlusion(model, images, *, patch: int = 8, stride: int = 4, fill: float | None = None, output: int = 0,
              batch_size: int = 256) -> np.ndarray:
    """Occlusion sensitivity maps: how much the score drops when each patch is covered.

    Every ``patch`` x ``patch`` window, moved by ``stride``, is set to
    ``fill`` and the film scored again; each pixel gets the mean drop
    ``p(film) - p(occluded film)`` over the windows that covered it. The
    positive part, scaled to a peak of 1, is returned (regions whose cover
    lowers the score).

    Parameters
    ----------
    model : keras.Model
        Outputs probabilities.
    images : array (N, H, W) or (N, H, W, 1)
        Inputs as the model takes them (float, 0-1).
    patch, stride : int, default 8 and 4
        Window size and step in pixels; ``stride`` must divide ``H - patch``.
    fill : float, optional
        The covering value; default: each film's mean.
    output : int, default 0
        Which output column to explain.
    batch_size : int, default 256
        Occluded films scored per call.

    Returns
    -------
    ndarray (N, H, W), float32, in [0, 1]
    """
    x = _as_batch(images)
    n, h, w = x.shape[:3]
    if patch > min(h, w) or stride < 1 or (h - patch) % stride or (w - patch) % stride:
        raise ValueError(f"patch {patch} and stride {stride} must tile a {h}x{w} image: patch at most the image "
                         "size, and the stride a divisor of (size - patch), such as patch 8, stride 4 on 32 px.")
    corners = [(i, j) for i in range(0, h - patch + 1, stride) for j in range(0, w - patch + 1, stride)]
    base = model.predict(x, verbose=0, batch_size=batch_size)[:, output]
    values = x.mean(axis=(1, 2, 3)) if fill is None else np.full(n, fill, np.float32)
    drop, cover = np.zeros((n, h, w)), np.zeros((h, w))
    for i, j in corners:
        cover[i:i + patch, j:j + patch] += 1
    chunk = max(1, 4096 // len(corners))  # films whose occluded copies are scored together
    for start in range(0, n, chunk):
        films = slice(start, min(start + chunk, n))
        occluded = np.repeat(x[films, None], len(corners), axis=1)  # (films, windows, H, W, 1)
        for m, (i, j) in enumerate(corners):
            occluded[:, m, i:i + patch, j:j + patch] = values[films, None, None, None]
        scores = model.predict(occluded.reshape(-1, *x.shape[1:]), verbose=0, batch_size=batch_size)[:, output]
        scores = scores.reshape(-1, len(corners))
        for m, (i, j) in enumerate(corners):
            drop[films, i:i + patch, j:j + patch] += (base[films] - scores[:, m])[:, None, None]
    return _unit_peak(np.maximum(drop / np.maximum(cover, 1), 0))


def _check_maps(maps, masks):
    maps, masks = np.asarray(maps, np.float64), np.asarray(masks, bool)
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must both have shape (N, H, W); "
                         "pass one mask per map, for the finding being explained, e.g. ds.test.masks[:, 0].")
    if not masks.any(axis=(1, 2)).all():
        raise ValueError("some masks are empty; score only the films that have the finding.")
    return maps, masks


def pointing_game(maps, masks) -> np.ndarray:
    """Whether each map's peak falls inside its mask (Zhang et al. 2018).

    Parameters
    ----------
    maps : array (N, H, W)
    masks : array of bool (N, H, W), none empty

    Returns
    -------
    ndarray of bool (N,)
        Its mean is the hit rate; a random peak hits with probability equal
        to the mask's area.

    Examples
    --------
    >>> masks = np.zeros((2, 4, 4), bool); masks[:, :2, :2] = True
    >>> maps = np.zeros((2, 4, 4)); maps[0, 0, 1] = 1; maps[1, 3, 3] = 1
    >>> pointing_game(maps, masks)
    array([ True, False])
    """
    maps, masks = _check_maps(maps, masks)
    peaks = maps.reshape(len(maps), -1).argmax(axis=1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), peaks]


def mass_inside(maps, masks) -> np.ndarray:
    """The share of each map's mass that lies inside its mask.

    A uniform map scores the mask's area (``masks.mean(axis=(1, 2))``); a
    map that points only at the finding scores 1. An all-zero map scores 0.

    Examples
    --------
    >>> masks = np.zeros((1, 4, 4), bool); masks[:, :2, :2] = True
    >>> mass_inside(np.ones((1, 4, 4)), masks), mass_inside(masks * 1.0, masks)
    (array([0.25]), array([1.]))
    """
    maps, masks = _check_maps(maps, masks)
    if maps.min() < 0:
        raise ValueError("maps must be non-negative (weights, not signed scores); take their positive part first.")
    total = maps.sum(axis=(1, 2))
    return np.where(total > 0, (maps * masks).sum(axis=(1, 2)) / np.where(total > 0, total, 1), 0.0)
