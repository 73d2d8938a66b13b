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

It changes no global state: the Keras dtype policy is restored after the
model is built, and the seed reaches the weights' initialisers and the
input pipeline without reseeding Python, NumPy or TensorFlow for the rest
of the notebook. So two fits in a row do not depend on each other, and a
learner's own random draws after a fit are the ones they would get without
it.

The training AUC that Keras logs each epoch is a running mean over
batches in *training mode* (augmented films, dropout on, batch
normalisation on batch statistics) while the weights move; the validation
AUC is measured in *inference mode* after the epoch. To compare like with
like, :class:`FitResult` also gives ``train_auc``, the training split's AUC
in inference mode with the kept weights (and, with ``track_train=True``,
the same figure after every epoch).

Model selection uses the validation split only; the test split is left to
the caller, once.

Introduced in ``04_cnn.ipynb``.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitResult", "fit", "predict", "predict_tta", "seeded"]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : keras.Model
        With the weights of the kept epoch (the best on validation, or the
        last with ``keep="last"``).
    history : dict of str to list of float
        Per-epoch ``loss`` and ``auc`` (running means in training mode),
        ``val_loss`` and ``val_auc`` (inference mode), ``lr``, and with
        ``track_train=True`` ``train_auc`` (inference mode).
    best_epoch : int
        1-based epoch whose weights were kept.
    seconds : float
        Wall-clock training time.
    images_per_second : list of float
        Training throughput per epoch.
    train_auc : float
        AUC on the training split (not augmented) in inference mode, with
        the kept weights: the figure to set beside ``val_auc``.
    val_auc : float
        Validation AUC of the kept epoch.
    """

    model: object
    history: dict = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0
    images_per_second: list = field(default_factory=list)
    train_auc: float = float("nan")
    val_auc: float = float("nan")


@contextlib.contextmanager
def seeded(seed: int):
    """Seed Python's and NumPy's global generators inside the block, and restore them after.

    Keras draws the default seed of every initialiser and dropout layer from
    Python's :mod:`random` when the layer is created, so building a model in
    this block makes its weights depend on ``seed`` alone, while the
    generators a notebook uses before and after go on as if the block had
    not run. Introduced in ``04_cnn.ipynb``.

    Examples
    --------
    >>> import random
    >>> random.seed(1)
    >>> with seeded(0):
    ...     inside = random.random()
    >>> after = random.random()
    >>> random.seed(1)
    >>> random.random() == after  # the global stream went on as if the block had not run
    True
    >>> random.seed(0)
    >>> random.random() == inside
    True
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)  # restored below; a builder may draw from NumPy's global generator
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _learning_rate_log(model):
    import keras

    class LearningRateLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            opt = model.optimizer
            lr = opt.learning_rate
            value = lr(opt.iterations) if callable(lr) else lr
            logs["lr"] = float(value)

    return LearningRateLog()


def _train_auc_log(model, train_eval, multi_label):
    """A callback adding the training split's AUC in inference mode to each epoch's logs."""
    import keras

    class TrainAUC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["train_auc"] = _auc_of(model, train_eval, multi_label)

    return TrainAUC()


def _auc_of(model, batches, multi_label):
    """AUC of ``model`` on a pipeline of (images, labels), in inference mode."""
    from medkit import evaluate

    labels = np.concatenate([y.numpy() for _, y in batches])
    scores = np.asarray(model.predict(batches, verbose=0))
    if not multi_label:
        return evaluate.auc(labels, scores)
    present = [k for k in range(labels.shape[1]) if 0 < labels[:, k].sum() < len(labels)]
    return evaluate.auc(labels[:, present], scores[:, present])


@contextlib.contextmanager
def _naming_unreadable_files(*splits):
    """Turn TensorFlow's failure to decode an image file into an error that names the file(s)."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as err:
        from medkit.data.folders import find_unreadable

        paths = [p for split in splits if not split.in_memory for p in split.paths]
        bad = find_unreadable(paths) if paths else {}
        if not bad:
            raise
        shown = "; ".join(f"{p} ({why})" for p, why in list(bad.items())[:5])
        raise ValueError(
            f"{len(bad)} image file(s) could not be decoded: {shown}{', ...' if len(bad) > 5 else ''}. Replace or "
            "delete them, or load the folder with skip_unreadable=True (medkit.data.load_kermany, load_nih)."
        ) from err


def _input_size(model):
    shape = model.input_shape
    return shape[1] if isinstance(shape, tuple) and len(shape) == 4 and shape[1] == shape[2] else None


def fit(build, ds, *, profile=None, image_size: int | None = None, epochs: int | None = None,
        batch_size: int | None = None, learning_rate: float = 1e-3, weight_decay: float = 0.0,
        label_smoothing: float = 0.0, warmup: float = 0.0, augment: bool = True, class_weight: bool = True,
        patience: int = 4, keep: str = "best", validate: str = "every epoch", track_train: bool = False,
        checkpoint: str | None = None, callbacks=(), seed: int = 0, verbose: bool = True) -> FitResult:
    """Train ``build()`` on ``ds.train``, selecting the epoch on ``ds.val``.

    Parameters
    ----------
    build : callable
        Returns an uncompiled ``keras.Model`` with sigmoid outputs, one per
        class; called inside the device strategy's scope, with Python's and
        NumPy's generators seeded by ``seed`` (see :func:`seeded`).
    ds : medkit.data.Dataset
    profile : medkit.config.Profile, optional
        Default: the active profile (batch size, epochs).
    image_size : int, optional
        Default: the model's input size. Films are resized to it.
    epochs, batch_size : int, optional
        Override the profile.
    learning_rate : float, default 1e-3
        Peak learning rate of AdamW, decayed to 0 by a cosine over the run.
    weight_decay : float, default 0
        Decoupled weight decay (AdamW).
    label_smoothing : float, default 0
        Targets become ``y (1 - s) + s / 2``.
    warmup : float, default 0
        Share of the run's steps over which the learning rate rises linearly
        from 0 to ``learning_rate`` before the cosine decay (Transformers
        usually need it; notebook 07).
    augment : bool, default True
        Augment the training split (see :func:`medkit.data.pipeline.augmenter`).
    class_weight : bool, default True
        Weight the classes of a binary task so each counts equally.
    patience : int, default 4
        With ``keep="best"``: stop after this many epochs without a better
        validation AUC.
    keep : {"best", "last"}, default "best"
        ``"best"`` keeps the weights of the best validation epoch and stops
        early; ``"last"`` trains every epoch and keeps the last, so that runs
        compared with one another stop at the same step.
    validate : {"every epoch", "at the end"}, default "every epoch"
        When to score ``ds.val``. ``"at the end"`` (only with ``keep="last"``)
        scores it once, after the last epoch: the weights are the same, the
        history has one validation entry, and a run on a small training split
        is faster (notebook 06's 37-layer network, 15 epochs of 10 steps with
        500 validation films: 29.5 s instead of 40.6 s).
    track_train : bool, default False
        Also measure the training split's AUC in inference mode after every
        epoch (``history["train_auc"]``; one extra pass over the training
        films per epoch).
    checkpoint : str, optional
        Also save the kept model to this ``.keras`` file.
    callbacks : sequence of keras.callbacks.Callback, optional
        More callbacks, run after the kit's own each epoch.
    seed : int, default 0
        Seeds the weights, the shuffling and the augmentation.
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
    epochs = profile.epochs if epochs is None else epochs
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be at least 1; got {epochs!r} and {patience!r}.")
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup is a share of the run's steps, from 0 to below 1; got {warmup!r}.")
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' (the best validation epoch) or 'last'; got {keep!r}.")
    if validate not in ("every epoch", "at the end"):
        raise ValueError(f"validate must be 'every epoch' or 'at the end'; got {validate!r}.")
    if validate == "at the end" and keep != "last":
        raise ValueError("validate='at the end' needs keep='last': keeping the best epoch compares every epoch's "
                         "validation AUC.")
    if checkpoint is not None and not str(checkpoint).endswith(".keras"):
        raise ValueError(f"checkpoint must be a .keras file name; got {checkpoint!r}.")
    batch = gpu.global_batch_size(profile.batch_size if batch_size is None else batch_size)
    steps = int(np.ceil(len(ds.train) / batch)) * epochs
    multi_label = ds.task != "binary"

    policy = keras.mixed_precision.global_policy()
    try:
        gpu.use_mixed_precision()  # float16 compute only on GPUs with tensor cores; float32 elsewhere
        with gpu.strategy().scope(), seeded(seed):
            model = build()
            warm = int(round(warmup * steps))
            schedule = (keras.optimizers.schedules.CosineDecay(0.0, decay_steps=steps - warm, warmup_target=learning_rate,
                                                               warmup_steps=warm)
                        if warm else keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps))
            model.compile(
                optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                metrics=[keras.metrics.AUC(name="auc", multi_label=multi_label)],
            )
            # Create the optimizer's slots now. Left to Keras, they are created while
            # the training step is first traced into a graph, and TensorFlow then
            # traces it a second time; for a 13-layer ResNet that is about 3 s more
            # per fit on a 2-core CPU. The values are the same either way.
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy(policy)  # the model keeps its own; later models get the caller's

    n_labels = ds.train.labels.shape[1]
    if model.output_shape[-1] != n_labels:
        raise ValueError(
            f"the model has {model.output_shape[-1]} outputs but {ds.name} has {n_labels} label column(s) "
            f"({', '.join(ds.class_names)}); build it with one sigmoid output per class, e.g. "
            f"models.small_cnn(size, {n_labels})."
        )
    model_size = _input_size(model)
    if image_size is None:
        image_size = model_size or profile.image_size
    elif model_size is not None and image_size != model_size:
        raise ValueError(f"image_size={image_size} but the model takes {model_size} px films; "
                         "leave image_size out to use the model's, or build the model for that size.")
    train = pipeline(ds.train, image_size=image_size, batch_size=batch, training=True, augment=augment, seed=seed)
    val = pipeline(ds.val, image_size=image_size, batch_size=batch)
    train_eval = pipeline(ds.train, image_size=image_size, batch_size=batch)  # not shuffled, not augmented

    throughput = gpu.ThroughputCallback(len(ds.train), verbose=False)
    extra, callbacks = list(callbacks), [_learning_rate_log(model), throughput]
    if track_train:
        callbacks.append(_train_auc_log(model, train_eval, multi_label))
    callbacks += extra
    if keep == "best":
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                                       restore_best_weights=True))
    if checkpoint is not None:
        callbacks.append(keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_auc", mode="max",
                                                         save_best_only=keep == "best"))
    if verbose:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
            f"epoch {epoch + 1:>2}/{epochs}: loss {logs['loss']:.3f}  auc {logs['auc']:.3f}  "
            + (f"train_auc {logs['train_auc']:.3f}  " if track_train else "")
            + (f"val_loss {logs['val_loss']:.3f}  val_auc {logs['val_auc']:.3f}  " if "val_auc" in logs else "")
            + f"lr {logs['lr']:.1e}  "
            f"{throughput.images_per_second[-1]:,.0f} images/s", flush=True)))
    weights = class_weights(ds.train.labels) if class_weight and ds.task == "binary" else None
    start = time.perf_counter()
    with _naming_unreadable_files(ds.train, ds.val):
        history = model.fit(train, validation_data=val, epochs=epochs, class_weight=weights, callbacks=callbacks,
                            validation_freq=1 if validate == "every epoch" else epochs, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    val_aucs = history.history["val_auc"]
    kept = int(np.argmax(val_aucs)) + 1 if keep == "best" else len(history.history["loss"])
    kept_val_auc = val_aucs[kept - 1] if keep == "best" else val_aucs[-1]  # validated every epoch or at the end
    with _naming_unreadable_files(ds.train):
        train_auc = _auc_of(model, train_eval, multi_label)
    if verbose:
        print(f"kept epoch {kept}: train_auc {train_auc:.3f} (inference mode)  val_auc {kept_val_auc:.3f}",
              flush=True)
    return FitResult(model, dict(history.history), kept, seconds, list(throughput.images_per_second),
                     train_auc=float(train_auc), val_auc=float(kept_val_auc))


def predict(model, split, *, image_size: int | None = None, batch_size: int = 256) -> np.ndarray:
    """The model's probabilities for a split, shape (N, K), in the split's order."""
    from medkit.data.pipeline import pipeline

    image_size = image_size or model.input_shape[1]
    with _naming_unreadable_files(split):
        batches = pipeline(split, image_size=image_size, batch_size=batch_size, cache=False)
        return np.asarray(model.predict(batches, verbose=0))


def predict_tta(model, split, *, image_size: int | None = None, shift: int | None = None,
                batch_size: int = 256) -> np.ndarray:
    """Probabilities averaged over the films as they are and shifted by ``shift`` pixels up, down, left and right.

    Test-time augmentation: the model sees each film five times, placed a
    little differently, as positioning varies; the mean of its five answers
    is less sensitive to where a finding falls on the pixel grid. Nothing is
    learnt from the films scored. Introduced in ``08_evaluation_explainability.ipynb``.

    Parameters
    ----------
    model : keras.Model
    split : medkit.data.Split
    image_size : int, optional
        Default: the model's input size.
    shift : int, optional
        Pixels; default one pixel per 28 of the image size.

    Returns
    -------
    ndarray (N, K)
    """
    from scipy import ndimage

    from medkit.data.pipeline import pipeline

    image_size = image_size or model.input_shape[1]
    shift = max(1, image_size // 28) if shift is None else shift
    with _naming_unreadable_files(split):
        films = np.concatenate([x.numpy() for x, _ in pipeline(split, image_size=image_size, batch_size=batch_size,
                                                               cache=False)])
    offsets = [(0, 0), (shift, 0), (-shift, 0), (0, shift), (0, -shift)]
    outputs = [model.predict(ndimage.shift(films, (0, dy, dx, 0), order=0, mode="nearest") if dy or dx else films,
                             batch_size=batch_size, verbose=0) for dy, dx in offsets]
    return np.mean(outputs, axis=0)
