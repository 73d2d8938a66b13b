"""Model builders used by more than one notebook and by the benchmark.

Introduced in ``01_chest_xray_data.ipynb`` (the small CNN that measures how
hard the phantom is) and built step by step in ``04_cnn.ipynb``; ``row_lstm``
in ``05_lstm.ipynb``. The ResNet and Transformer notebooks add theirs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["small_cnn", "row_lstm", "residual_block", "resnet"]


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
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(inputs, outputs, name=name)


def row_lstm(image_size: int, n_outputs: int = 1, *, units: int = 64, train_images=None, name: str = "row_lstm"):
    """An LSTM that reads a radiograph top to bottom, one row per time step.

    The image ``(H, W, 1)`` becomes a sequence of ``H`` vectors of ``W``
    pixels; the LSTM's last hidden state feeds a sigmoid layer.

    Parameters
    ----------
    image_size : int
        Input is ``(image_size, image_size, 1)``, values in [0, 1].
    n_outputs : int, default 1
    units : int, default 64
        Size of the hidden and cell state.
    train_images : array (N, image_size, image_size) of uint8, optional
        If given, a first layer standardises every pixel with the mean and
        standard deviation of these (training) images. The LSTM's gates
        saturate on raw pixels, whose level varies far more across the film
        than with disease; notebook 05 shows the difference.

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> model = row_lstm(28)
    >>> model.output_shape, model.count_params()  # 4 * (64 * (28 + 64) + 64) + 65
    ((None, 1), 23873)
    """
    import keras

    L = keras.layers
    inputs = keras.Input((image_size, image_size, 1), name="radiograph")
    x = inputs
    if train_images is not None:
        pixels = np.asarray(train_images, np.float32) / 255.0
        if pixels.shape[1:] != (image_size, image_size):
            raise ValueError(f"train_images must have shape (N, {image_size}, {image_size}); got {pixels.shape}.")
        mean, std = pixels.mean(axis=0)[..., None], pixels.std(axis=0)[..., None] + 1e-3
        x = L.Normalization(axis=(1, 2, 3), mean=mean, variance=std**2, name="standardise")(x)
    rows = L.Reshape((image_size, image_size), name="rows")(x)
    h = L.LSTM(units, name="lstm")(rows)
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype="float32", name="probability")(h)
    return keras.Model(inputs, outputs, name=name)


def residual_block(x, filters: int, stride: int = 1, *, name: str):
    """Two 3x3 convolutions with batch normalisation, added to a shortcut: ``ReLU(F(x) + s(x))``.

    The shortcut ``s`` is the identity when the shape is unchanged, and a
    strided 1x1 convolution with batch normalisation (a projection) when the
    block halves the map or changes the number of channels (He et al. 2016).
    """
    import keras

    L = keras.layers
    y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = L.BatchNormalization(momentum=0.9, name=f"{name}_bn1")(y)
    y = L.ReLU(name=f"{name}_relu1")(y)
    y = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = L.BatchNormalization(momentum=0.9, name=f"{name}_bn2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_project")(x)
        shortcut = L.BatchNormalization(momentum=0.9, name=f"{name}_project_bn")(shortcut)
    return L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([y, shortcut]))


def resnet(image_size: int, n_outputs: int = 1, *, width: int = 16, blocks=(2, 2, 2), dropout: float = 0.2,
           name: str = "resnet"):
    """A ResNet sized for 28-64 px radiographs.

    A 3x3 stem, then one stage per entry of ``blocks`` (each of that many
    :func:`residual_block`; every stage after the first halves the map and
    doubles the channels), global average pooling, dropout and sigmoid outputs.
    The default has 6 blocks, 13 weighted layers.

    Parameters
    ----------
    image_size : int
    n_outputs : int, default 1
    width : int, default 16
        Channels of the stem and the first stage.
    blocks : sequence of int, default (2, 2, 2)
    dropout : float, default 0.2

    Examples
    --------
    >>> model = resnet(28)
    >>> model.output_shape, model.count_params()
    ((None, 1), 175505)
    """
    import keras

    L = keras.layers
    inputs = keras.Input((image_size, image_size, 1), name="radiograph")
    x = L.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = L.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    for stage, count in enumerate(blocks):
        for b in range(count):
            stride = 2 if stage > 0 and b == 0 else 1
            x = residual_block(x, width * 2**stage, stride, name=f"stage{stage + 1}_block{b + 1}")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(inputs, outputs, name=name)
