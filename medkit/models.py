"""Model builders used by more than one notebook and by the benchmark.

Introduced in ``01_chest_xray_data.ipynb`` (the small CNN that measures how
hard the phantom is) and built step by step in ``04_cnn.ipynb``; the ResNet
and Transformer notebooks add theirs.
"""

from __future__ import annotations

__all__ = ["small_cnn"]


def small_cnn(image_size: int, n_outputs: int = 1, *, width: int = 16, dropout: float = 0.0, name: str = "small_cnn"):
    """A four-block convolutional network: the kit's yardstick for difficulty.

    Each block is a 3x3 convolution, batch normalisation and ReLU, followed
    by 2x2 max pooling (all but the last); global average pooling and a
    sigmoid layer give one probability per label.

    Batch normalisation uses ``momentum=0.9`` rather than Keras's 0.99: on
    radiographs the early activations are small and training runs only a
    few hundred steps, too few for the slower moving averages to converge,
    and a model evaluated with unconverged statistics predicts a constant.

    Parameters
    ----------
    image_size : int
        Input is ``(image_size, image_size, 1)``, values in [0, 1].
    n_outputs : int, default 1
        Labels (sigmoid outputs).
    width : int, default 16
        Filters in the first block; doubled in the second and third.
    dropout : float, default 0
        Dropout rate before the output layer (0: no dropout layer).

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> model = small_cnn(64)
    >>> model.output_shape, model.count_params()
    ((None, 1), 60817)
    """
    import keras

    L = keras.layers
    x = inputs = keras.Input((image_size, image_size, 1), name="radiograph")
    for i, filters in enumerate((width, 2 * width, 4 * width, 4 * width)):
        x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = L.ReLU(name=f"relu{i + 1}")(x)
        if i < 3:
            x = L.MaxPooling2D(name=f"pool{i + 1}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(n_outputs, activation="sigmoid", name="probability")(x)
    return keras.Model(inputs, outputs, name=name)
