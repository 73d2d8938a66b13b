"""Train a Keras model on a kit dataset: one call, the same on a laptop and on GPUs.

:func:`fit` does what every deep-learning notebook would otherwise repeat:
it builds the ``tf.data`` pipelines at the profile's image and batch size
(augmenting the training split only), builds and compiles the model inside
the device strategy (so one GPU, several or none need no edits) with mixed
precision where the GPU supports it (the kit's builders keep their outputs
in float32, as mixed precision requires for a stable loss), weights
the classes of a binary task, schedules the learning rate with cosine
decay, stops early on the validation AUC and keeps the best weights, and
reports throughput each epoch.

Model selection uses the validation split only; the test split is left to
the caller, once.

Introduced in ``04_cnn.ipynb``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitResult", "fit", "predict"]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : keras.Model
        With the weights of the best validation epoch.
    history : dict of str to list of float
        Per-epoch ``loss``, ``auc``, ``val_loss``, ``val_auc`` (and ``lr``).
    best_epoch : int
        1-based epoch whose weights were kept.
    seconds : float
        Wall-clock training time.
    images_per_second : list of float
        Training throughput per epoch.
    """

    model: object
    history: dict = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0
    images_per_second: list = field(default_factory=list)


def _learning_rate_log(model):
    import keras

    class LearningRateLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            opt = model.optimizer
            lr = opt.learning_rate
            value = lr(opt.iterations) if callable(lr) else lr
            logs["lr"] = float(value)

    return LearningRateLog()


def fit(build, ds, *, profile=None, image_size: int | None = None, epochs: int | None = None,
        batch_size: int | None = None, learning_rate: float = 1e-3, weight_decay: float = 0.0,
        label_smoothing: float = 0.0, augment: bool = True, class_weight: bool = True, patience: int = 4,
        checkpoint: str | None = None, seed: int = 0, verbose: bool = True) -> FitResult:
    """Train ``build()`` on ``ds.train``, selecting the epoch on ``ds.val``.

    Parameters
    ----------
    build : callable
        Returns an uncompiled ``keras.Model`` with sigmoid outputs, one per
        class; called inside the device strategy's scope.
    ds : medkit.data.Dataset
    profile : medkit.config.Profile, optional
        Default: the active profile (image size, batch size, epochs).
    image_size, epochs, batch_size : int, optional
        Override the profile.
    learning_rate : float, default 1e-3
        Peak learning rate of AdamW, decayed to 0 by a cosine over the run.
    weight_decay : float, default 0
        Decoupled weight decay (AdamW).
    label_smoothing : float, default 0
        Targets become ``y (1 - s) + s / 2``.
    augment : bool, default True
        Augment the training split (see :func:`medkit.data.pipeline.augmenter`).
    class_weight : bool, default True
        Weight the classes of a binary task so each counts equally.
    patience : int, default 4
        Stop after this many epochs without a better validation AUC.
    checkpoint : str, optional
        Also save the best model to this ``.keras`` file.
    seed : int, default 0
        Seeds weights, shuffling and augmentation.
    verbose : bool, default True
        One line per epoch: losses, AUCs, learning rate, images per second.

    Returns
    -------
    FitResult
    """
    import keras

    from medkit import config, gpu
    from medkit.data.pipeline import class_weights, pipeline

    profile = profile or config.profile()
    image_size = profile.image_size if image_size is None else image_size
    epochs = profile.epochs if epochs is None else epochs
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be at least 1; got {epochs!r} and {patience!r}.")
    if checkpoint is not None and not str(checkpoint).endswith(".keras"):
        raise ValueError(f"checkpoint must be a .keras file name; got {checkpoint!r}.")
    batch = gpu.global_batch_size(profile.batch_size if batch_size is None else batch_size)
    train = pipeline(ds.train, image_size=image_size, batch_size=batch, training=True, augment=augment, seed=seed)
    val = pipeline(ds.val, image_size=image_size, batch_size=batch)
    steps = int(np.ceil(len(ds.train) / batch)) * epochs

    keras.utils.set_random_seed(seed)
    gpu.use_mixed_precision()  # float16 compute only on GPUs with tensor cores; float32 elsewhere
    with gpu.strategy().scope():
        model = build()
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
            loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
            metrics=[keras.metrics.AUC(name="auc", multi_label=ds.task != "binary")],
        )
        # Create the optimizer's slots now. Left to Keras, they are created while
        # the training step is first traced into a graph, and TensorFlow then
        # traces it a second time; for a 13-layer ResNet that is about 3 s more
        # per fit on a 2-core CPU. The values are the same either way.
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    throughput = gpu.ThroughputCallback(len(ds.train), verbose=False)
    callbacks = [
        _learning_rate_log(model),
        throughput,
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience, restore_best_weights=True),
    ]
    if checkpoint is not None:
        callbacks.append(keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_auc", mode="max", save_best_only=True))
    if verbose:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
            f"epoch {epoch + 1:>2}/{epochs}: loss {logs['loss']:.3f}  auc {logs['auc']:.3f}  "
            f"val_loss {logs['val_loss']:.3f}  val_auc {logs['val_auc']:.3f}  lr {logs['lr']:.1e}  "
            f"{throughput.images_per_second[-1]:,.0f} images/s", flush=True)))
    weights = class_weights(ds.train.labels) if class_weight and ds.task == "binary" else None
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=epochs, class_weight=weights, callbacks=callbacks,
                        shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    best = int(np.argmax(history.history["val_auc"])) + 1
    return FitResult(model, dict(history.history), best, seconds, list(throughput.images_per_second))


def predict(model, split, *, image_size: int | None = None, batch_size: int = 256) -> np.ndarray:
    """The model's probabilities for a split, shape (N, K), in the split's order."""
    from medkit.data.pipeline import pipeline

    image_size = image_size or model.input_shape[1]
    return np.asarray(model.predict(pipeline(split, image_size=image_size, batch_size=batch_size, cache=False), verbose=0))
