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

Introduced in ``04_cnn.ipynb`` (Grad-CAM) and ``07_transformer.ipynb``
(rollout); ``08_evaluation_explainability.ipynb`` compares Grad-CAM with
occlusion sensitivity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grad_cam", "attention_maps", "attention_rollout"]


def grad_cam(model, images, layer: str, *, output: int = 0) -> np.ndarray:
    """Grad-CAM maps of ``model`` at convolutional layer ``layer``.

    Parameters
    ----------
    model : keras.Model
        A functional model whose output ``output`` is a probability.
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
    probe = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        maps, prob = probe(x, training=False)
        score = prob[:, output]
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
