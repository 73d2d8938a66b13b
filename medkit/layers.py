"""Keras layers the kit's models need and Keras does not ship.

Only :class:`PositionEmbedding` so far: the learned position embedding of
the Vision Transformer (``07_transformer.ipynb``). It is registered with
Keras, so a saved ``.keras`` model that uses it loads again once this module
has been imported (``medkit.models`` imports it when it builds a ViT).
"""

from __future__ import annotations

import keras

__all__ = ["PositionEmbedding"]


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
