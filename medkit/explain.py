"""Where a network looks: Grad-CAM.

Grad-CAM (Selvaraju et al. 2017) weights each feature map ``A_k`` of a
convolutional layer by how much the output ``y`` grows with it, averaged over
the map, ``alpha_k = mean_ij dy / dA_k[i, j]``, and keeps the positive part
of the weighted sum, ``ReLU(sum_k alpha_k A_k)``: a coarse map of the regions
that raise the score. Resized to the image and scaled to [0, 1], it can be
laid over the radiograph or scored against a lesion mask.

Introduced in ``04_cnn.ipynb``; ``08_evaluation_explainability.ipynb``
compares it with occlusion sensitivity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grad_cam"]


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

    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[..., None]
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
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0).astype(np.float32)
