"""Model builders used by more than one notebook and by the benchmark.

Introduced in ``01_chest_xray_data.ipynb`` (the small CNN that measures how
hard the phantom is) and built step by step in ``04_cnn.ipynb``; ``row_lstm``
in ``05_lstm.ipynb``; ``resnet`` in ``06_resnet.ipynb``; ``vit`` in
``07_transformer.ipynb``; ``unet`` is the network of the segmentation notebook
(``11_segmentation.ipynb``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["small_cnn", "row_lstm", "residual_block", "resnet", "encoder_block", "vit", "conv_block", "unet"]


def _output_dtype():
    # Under mixed precision the probabilities (and so the loss) stay in float32; otherwise the global policy
    # holds, float32 by default or float64 where a comparison must be exact (10_scaling_gpus.ipynb).
    import keras

    return "float32" if keras.config.dtype_policy().name.startswith("mixed") else None


def small_cnn(image_size: int, n_outputs: int = 1, *, width: int = 16, dropout: float = 0.0, synchronized: bool = False,
              name: str = "small_cnn"):
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
    synchronized : bool, default False
        Batch normalisation over the global batch, its statistics summed
        across the replicas of a ``tf.distribute`` strategy, instead of over
        each replica's share (``10_scaling_gpus.ipynb``). On one replica both
        are the same.

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
        x = L.BatchNormalization(momentum=0.9, synchronized=synchronized, name=f"bn{i + 1}")(x)
        x = L.ReLU(name=f"relu{i + 1}")(x)
        if i < 3:
            x = L.MaxPooling2D(name=f"pool{i + 1}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype=_output_dtype(), name="probability")(x)
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
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype=_output_dtype(), name="probability")(h)
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

    Notes
    -----
    With TensorFlow 2.21 on CPU, training ``width=8`` at 64 px or more
    crashes the process inside oneDNN (the gradient of the strided 1x1
    projection with 8 input channels); ``width=12`` and the default 16
    trained normally at 64 px, and ``TF_ENABLE_ONEDNN_OPTS=0`` avoids the
    crash at about half the speed.

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
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype=_output_dtype(), name="probability")(x)
    return keras.Model(inputs, outputs, name=name)


def encoder_block(tokens, *, heads: int, mlp_dim: int, dropout: float = 0.0, lsa: bool = False, name: str):
    """A pre-norm Transformer encoder block on ``(batch, n_tokens, dim)`` tokens.

    ``x + MHA(LN(x))``, then ``x + MLP(LN(x))`` with a GELU hidden layer of
    ``mlp_dim`` units (Dosovitskiy et al. 2021, eqs. 2-3). The attention has
    ``heads`` heads of ``dim / heads`` dimensions each; with ``lsa=True`` it
    is :class:`medkit.layers.LocalitySelfAttention`.
    """
    import keras

    from medkit.layers import LocalitySelfAttention

    L = keras.layers
    dim = tokens.shape[-1]
    if dim % heads:
        raise ValueError(f"the token dimension {dim} must be a multiple of heads={heads}; change dim or heads.")
    y = L.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(tokens)
    attention = LocalitySelfAttention if lsa else L.MultiHeadAttention
    y = attention(heads, dim // heads, dropout=dropout, name=f"{name}_attention")(y, y)
    x = L.Add(name=f"{name}_add1")([tokens, y])
    y = L.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = L.Dense(mlp_dim, activation="gelu", name=f"{name}_mlp1")(y)
    y = L.Dense(dim, name=f"{name}_mlp2")(y)
    if dropout:
        y = L.Dropout(dropout, name=f"{name}_dropout")(y)
    return L.Add(name=f"{name}_add2")([x, y])


def vit(image_size: int, n_outputs: int = 1, *, patch: int = 4, dim: int = 64, depth: int = 4, heads: int = 4,
        mlp_dim: int = 128, dropout: float = 0.1, stem: bool = False, standardize: bool = False,
        spt: bool = False, lsa: bool = False, name: str | None = None):
    """A Vision Transformer sized for 28-64 px radiographs.

    The image is cut into ``patch`` x ``patch`` patches, each projected
    linearly to ``dim`` numbers (a strided convolution); a learned position
    embedding is added; ``depth`` :func:`encoder_block` follow; a final
    layer normalisation, the mean over tokens and sigmoid outputs close it.
    Pooling the tokens, instead of a class token, is as accurate and simpler
    (Beyer, Zhai and Kolesnikov 2022).

    With ``stem=True`` the model is a hybrid: two 3x3 convolutions with batch
    normalisation (the second with stride 2) come before the patches, so
    each token starts from local features rather than raw pixels (Xiao et
    al. 2021); the patches are then cut from the stem's half-size map.

    ``spt`` and ``lsa`` are the two changes Lee, Lee and Song (2021) make
    for small datasets. With ``spt=True`` (shifted patch tokenisation) the
    film and four copies moved diagonally by half a patch
    (:class:`medkit.layers.DiagonalShifts`) are cut into patches together;
    each patch is flattened, layer-normalised and projected to ``dim``
    numbers, so a token also sees the pixels around its patch. With
    ``lsa=True`` every block's attention is
    :class:`medkit.layers.LocalitySelfAttention`: a learned temperature, and
    no attention from a token to itself.

    Parameters
    ----------
    image_size : int
        Input is ``(image_size, image_size, 1)``; must be a multiple of
        ``patch`` (of ``2 * patch`` with the stem).
    n_outputs : int, default 1
    patch : int, default 4
    dim : int, default 64
        Token size.
    depth : int, default 4
        Encoder blocks.
    heads : int, default 4
    mlp_dim : int, default 128
    dropout : float, default 0.1
        In the attention, after each MLP and before the output layer.
    stem : bool, default False
        Convolutional stem (a hybrid model).
    standardize : bool, default False
        Standardise each film to mean 0 and variance 1 first (a layer
        normalisation over all its pixels, without scale or shift), so the
        output ignores exposure and contrast. The bench's ``vit`` row uses it.
    spt : bool, default False
        Shifted patch tokenisation; needs an even ``patch``.
    lsa : bool, default False
        Locality self-attention in every block.

    Examples
    --------
    >>> model = vit(28)
    >>> model.get_layer("tokens").output.shape, model.count_params()
    ((None, 49, 64), 138305)
    >>> vit(28, stem=True, patch=2).get_layer("tokens").output.shape
    (None, 49, 64)
    >>> vit(28, spt=True, lsa=True).get_layer("tokens").output.shape
    (None, 49, 64)
    """
    import keras

    from medkit.layers import DiagonalShifts, PositionEmbedding

    L = keras.layers
    stride = patch * (2 if stem else 1)
    if image_size % stride:
        raise ValueError(f"image_size {image_size} is not a multiple of the patch size {stride}"
                         f"{' (patch x 2, after the stem)' if stem else ''}; choose a patch that divides it.")
    if spt and patch % 2:
        raise ValueError(f"spt=True shifts the film by half a patch, so patch must be even; got patch={patch}.")
    x = inputs = keras.Input((image_size, image_size, 1), name="radiograph")
    if standardize:
        x = L.LayerNormalization(axis=(1, 2, 3), epsilon=1e-6, center=False, scale=False, name="standardise")(x)
    if stem:
        for i, s in enumerate((1, 2)):
            x = L.Conv2D(dim // 2, 3, strides=s, padding="same", use_bias=False, name=f"stem_conv{i + 1}")(x)
            x = L.BatchNormalization(momentum=0.9, name=f"stem_bn{i + 1}")(x)
            x = L.ReLU(name=f"stem_relu{i + 1}")(x)
    if spt:  # the patches of the film and its shifted copies, each flattened, normalised and projected
        x = DiagonalShifts(patch // 2, name="diagonal_shifts")(x)
        grid, channels = x.shape[1] // patch, x.shape[-1]
        x = L.Reshape((grid, patch, grid, patch, channels), name="patch_grid")(x)
        x = L.Permute((1, 3, 2, 4, 5), name="patch_order")(x)
        x = L.Reshape((grid * grid, patch * patch * channels), name="patches")(x)
        x = L.LayerNormalization(epsilon=1e-6, name="patch_norm")(x)
        x = L.Dense(dim, name="tokens")(x)
    else:
        x = L.Conv2D(dim, patch, strides=patch, name="patch_embedding")(x)
        grid = x.shape[1]
        x = L.Reshape((grid * grid, dim), name="tokens")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    for i in range(depth):
        x = encoder_block(x, heads=heads, mlp_dim=mlp_dim, dropout=dropout, lsa=lsa, name=f"block{i + 1}")
    x = L.LayerNormalization(epsilon=1e-6, name="norm")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(n_outputs, activation="sigmoid", dtype=_output_dtype(), name="probability")(x)
    return keras.Model(inputs, outputs, name=name or ("hybrid_vit" if stem else "vit"))


def conv_block(x, filters: int, *, name: str):
    """Two 3x3 convolutions, each with batch normalisation and ReLU: one level of a U-Net."""
    import keras

    L = keras.layers
    for j in (1, 2):
        x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{j}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"{name}_bn{j}")(x)
        x = L.ReLU(name=f"{name}_relu{j}")(x)
    return x


def unet(image_size: int | None, n_outputs: int = 1, *, width: int = 8, depth: int = 3, prior=None,
         name: str = "unet"):
    """A U-Net (Ronneberger et al. 2015): one probability per pixel and label.

    The encoder applies :func:`conv_block` and 2x2 max pooling ``depth``
    times, doubling the filters at each level; a bottom block follows. The
    decoder undoes each pooling with a 2x2 transposed convolution, concatenates
    the encoder's map of the same size (the skip connection, which brings back
    the detail pooling removed) and applies another :func:`conv_block`. A 1x1
    convolution with a sigmoid gives the masks. Unlike the original, the
    convolutions are padded, so the masks have the size of the input, and
    batch-normalised.

    Parameters
    ----------
    image_size : int or None
        Input is ``(image_size, image_size, 1)``, values in [0, 1]; None takes
        any size divisible by ``2 ** depth`` (the network is fully
        convolutional: it can train on tiles of one size and read whole films
        of another).
    n_outputs : int, default 1
        Masks (sigmoid outputs per pixel); labels may overlap.
    width : int, default 8
        Filters at the first level; doubled at each level below.
    depth : int, default 3
        Number of poolings; ``image_size`` must be divisible by ``2 ** depth``.
    prior : float or sequence of float, optional
        Start the output layer's bias at ``log(prior / (1 - prior))``, so that
        the untrained network predicts ``prior`` at every pixel (one value, or
        one per output: each label's share of pixels in the training masks)
        rather than 0.5 (the prior initialisation of Lin et al. 2017). None
        starts the bias at zero, as Keras does.

    Returns
    -------
    keras.Model
        Output shape ``(None, image_size, image_size, n_outputs)``.

    Examples
    --------
    >>> model = unet(64, 5)
    >>> model.output_shape, model.count_params()
    ((None, 64, 64, 5), 121773)
    >>> round(float(unet(64, prior=0.05).predict(np.zeros((1, 64, 64, 1)), verbose=0).mean()), 3)
    0.05
    >>> unet(60)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: a U-Net of depth 3 halves the film 3 times, so image_size must be divisible by 8; got 60. Resize ...
    """
    import keras

    if depth < 1:
        raise ValueError(f"depth must be at least 1 (one pooling); got {depth}.")
    if image_size is not None and (image_size < 2**depth or image_size % 2**depth):
        raise ValueError(
            f"a U-Net of depth {depth} halves the film {depth} times, so image_size must be divisible by {2**depth}; "
            f"got {image_size}. Resize the films (e.g. to {2**depth * max(1, -(-image_size // 2**depth))}) or lower depth."
        )
    if prior is not None:
        prior = np.asarray(prior, np.float64)
        prior = np.full(n_outputs, prior) if prior.ndim == 0 else prior
        if prior.shape != (n_outputs,) or not np.all((prior > 0) & (prior < 1)):
            raise ValueError(
                f"prior is the probability the untrained network predicts, one value or one per output ({n_outputs}), "
                f"each between 0 and 1 exclusive; got {prior.tolist()}. A label absent from the training masks has share 0: "
                "give it a small positive value."
            )
    L = keras.layers
    x = inputs = keras.Input((image_size, image_size, 1), name="radiograph")
    skips = []
    for level in range(1, depth + 1):
        x = conv_block(x, width * 2 ** (level - 1), name=f"down{level}")
        skips.append(x)
        x = L.MaxPooling2D(name=f"pool{level}")(x)
    x = conv_block(x, width * 2**depth, name="bottom")
    for level in range(depth, 0, -1):
        x = L.Conv2DTranspose(width * 2 ** (level - 1), 2, strides=2, name=f"up{level}")(x)
        x = L.Concatenate(name=f"skip{level}")([x, skips[level - 1]])
        x = conv_block(x, width * 2 ** (level - 1), name=f"dec{level}")
    bias = "zeros" if prior is None else keras.initializers.Constant(np.log(prior / (1 - prior)).tolist())
    outputs = L.Conv2D(n_outputs, 1, activation="sigmoid", bias_initializer=bias, dtype=_output_dtype(), name="mask")(x)
    return keras.Model(inputs, outputs, name=name)
