"""Keras layers the kit's models need and Keras does not ship.

- :class:`PositionEmbedding`: the learned position embedding of the Vision
  Transformer (``07_transformer.ipynb``);
- :class:`DiagonalShifts` and :class:`LocalitySelfAttention`: the two changes
  that Lee, Lee and Song (2021) make to a ViT for small datasets, shifted
  patch tokenisation and locality self-attention (``models.vit(spt=True,
  lsa=True)``).

Each is registered with Keras, so a saved ``.keras`` model that uses it loads
again once this module has been imported (``medkit.models`` imports it when
it builds a ViT).
"""

from __future__ import annotations

import keras

__all__ = ["DiagonalShifts", "LocalitySelfAttention", "PositionEmbedding"]


@keras.saving.register_keras_serializable(package="medkit")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned vector to each position of a token sequence.

    Input and output ``(batch, n_tokens, dim)``; the layer holds one weight
    ``(n_tokens, dim)``, initialised from a normal distribution with standard
    deviation 0.02 (Dosovitskiy et al. 2021).

    Examples
    --------
    >>> layer = PositionEmbedding()
    >>> tuple(layer(keras.ops.zeros((2, 49, 64))).shape), layer.count_params()
    ((2, 49, 64), 3136)
    """

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(f"PositionEmbedding needs inputs (batch, n_tokens, dim) with known n_tokens and dim; "
                             f"got {input_shape}.")
        self.embedding = self.add_weight(shape=tuple(input_shape[1:]), name="embedding",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, tokens):
        return tokens + keras.ops.cast(self.embedding, tokens.dtype)[None]


@keras.saving.register_keras_serializable(package="medkit")
class DiagonalShifts(keras.layers.Layer):
    """The image and four copies moved diagonally by ``shift`` pixels, side by side on the channels.

    The first step of shifted patch tokenisation (Lee, Lee and Song 2021): the
    copies are moved left-up, right-up, left-down and right-down, filled with
    zeros where they leave the frame, and concatenated with the image, so that
    a patch cut afterwards also holds the pixels around it. Input ``(batch,
    height, width, channels)``, output ``(batch, height, width, 5 *
    channels)``, in that order: the image, then the four copies.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    >>> y = keras.ops.convert_to_numpy(DiagonalShifts(1)(x))
    >>> y.shape
    (1, 3, 3, 5)
    >>> y[0, :, :, 1]  # moved left and up: pixel (i, j) shows the image's (i + 1, j + 1)
    array([[4., 5., 0.],
           [7., 8., 0.],
           [0., 0., 0.]], dtype=float32)
    """

    def __init__(self, shift: int, **kwargs):
        super().__init__(**kwargs)
        if int(shift) != shift or shift < 1:
            raise ValueError(f"shift is a whole number of pixels, at least 1; got {shift!r}.")
        self.shift = int(shift)

    def call(self, images):
        s, ops = self.shift, keras.ops
        padded = ops.pad(images, [[0, 0], [s, s], [s, s], [0, 0]])
        height, width = images.shape[1], images.shape[2]

        def window(top, left):  # the image moved by (s - top, s - left)
            return padded[:, top:top + height, left:left + width, :]

        return ops.concatenate([images, window(2 * s, 2 * s), window(2 * s, 0), window(0, 2 * s), window(0, 0)],
                               axis=-1)

    def get_config(self):
        return {**super().get_config(), "shift": self.shift}


@keras.saving.register_keras_serializable(package="medkit")
class LocalitySelfAttention(keras.layers.MultiHeadAttention):
    """Multi-head self-attention with a learned temperature and without attention to oneself.

    Locality self-attention (Lee, Lee and Song 2021) changes two things in
    :class:`keras.layers.MultiHeadAttention`, whose projections it keeps:

    - the scores are ``Q K^T / tau`` with ``tau`` a weight learned with the
      others, initialised to ``sqrt(key_dim)``, the fixed value of standard
      attention;
    - each token's score with itself is masked out (set to minus infinity
      before the softmax), so a token attends only to the others.

    Both sharpen the attention, which on small datasets otherwise stays close
    to uniform. With ``mask_diagonal=False`` and ``tau = sqrt(key_dim)`` the
    layer computes exactly what ``MultiHeadAttention`` computes with the same
    weights. It is meant for self-attention, ``layer(x, x)`` (masking the
    diagonal means nothing between two different sequences), and takes no
    ``attention_mask``. ``return_attention_scores=True`` returns the weights
    ``(batch, heads, tokens, tokens)`` as Keras's layer does, so
    :func:`medkit.explain.attention_rollout` reads them.

    Examples
    --------
    >>> import numpy as np
    >>> layer = LocalitySelfAttention(num_heads=2, key_dim=4)
    >>> x = np.random.default_rng(0).normal(size=(1, 5, 8)).astype("float32")
    >>> out, weights = layer(x, x, return_attention_scores=True)
    >>> tuple(out.shape), float(keras.ops.max(keras.ops.diagonal(weights, axis1=-2, axis2=-1)))
    ((1, 5, 8), 0.0)
    >>> float(keras.ops.convert_to_numpy(layer.tau))  # sqrt(key_dim) to start
    2.0
    """

    def __init__(self, num_heads: int, key_dim: int, *, mask_diagonal: bool = True, **kwargs):
        super().__init__(num_heads, key_dim, **kwargs)
        self.mask_diagonal = bool(mask_diagonal)
        self._weights_dropout = keras.layers.Dropout(self.dropout)

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        self.tau = self.add_weight(shape=(), name="tau",
                                   initializer=keras.initializers.Constant(float(self.key_dim) ** 0.5))

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        ops = keras.ops
        if attention_mask is not None or use_causal_mask:
            raise ValueError("LocalitySelfAttention takes no attention_mask or causal mask; it masks the diagonal "
                             "itself (mask_diagonal=True).")
        key = value if key is None else key
        q, k, v = self.query_dense(query), self.key_dense(key), self.value_dense(value)  # (batch, tokens, heads, dim)
        scores = ops.einsum("bthd,bshd->bhts", q, k) / ops.cast(self.tau, q.dtype)
        if self.mask_diagonal:
            n = ops.shape(scores)[-1]
            scores = ops.where(ops.eye(n, dtype="bool")[None, None], ops.cast(-1e9, scores.dtype), scores)
        weights = ops.softmax(scores, axis=-1)
        mixed = ops.einsum("bhts,bshd->bthd", self._weights_dropout(weights, training=training), v)
        output = self.output_dense(mixed)
        return (output, weights) if return_attention_scores else output

    def get_config(self):
        return {**super().get_config(), "mask_diagonal": self.mask_diagonal}
