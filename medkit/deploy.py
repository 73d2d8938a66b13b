"""A trained Keras model as a LiteRT flat buffer, and a runner for it that a web server can share.

Notebook 09 converts models by hand, to show what each step does; notebook
14 serves the int8 model, and needs the same conversion, plus a runner that
many request threads may call at once (a LiteRT interpreter is not
thread-safe: the runner keeps a pool of them, and lends each to one caller
at a time). Both are here.
"""

from __future__ import annotations

import queue
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["PRECISIONS", "to_litert", "LiteRT"]

PRECISIONS = ("float32", "float16", "int8")


def to_litert(model, precision: str = "float32", *, representative=None) -> bytes:
    """Convert a Keras model, through a SavedModel, to a LiteRT flat buffer.

    Parameters
    ----------
    model : keras.Model
    precision : {"float32", "float16", "int8"}, default "float32"
        ``"float16"`` stores the weights in 16 bits; ``"int8"`` is
        full-integer quantisation: weights, activations, the input and the
        output are all 8-bit integers (notebook 09 explains the scales).
    representative : array, shape (N, H, W, C), optional
        Films the int8 converter runs through the network to set each
        activation's range (a few hundred training films); required for
        ``"int8"``, refused otherwise.

    Returns
    -------
    bytes
        The flat buffer; :class:`LiteRT` runs it. Introduced in
        ``09_compression_deployment.ipynb`` (written out there), used in
        ``14_serving_and_monitoring.ipynb``.
    """
    import tensorflow as tf

    from medkit import quiet

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    if (precision == "int8") != (representative is not None):
        raise ValueError("int8 conversion needs representative films (representative=x_train[:200]), and the other "
                         f"precisions take none; got precision={precision!r} with "
                         f"{'no' if representative is None else 'some'} representative films.")
    with tempfile.TemporaryDirectory(prefix="medkit-litert-") as folder:
        model.export(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if precision == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif precision == "int8":
            films = np.asarray(representative, np.float32)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([films[i:i + 1]] for i in range(len(films)))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        with warnings.catch_warnings(), quiet():  # the converter's notices, from Python and from C++
            warnings.simplefilter("ignore")
            return converter.convert()


class LiteRT:
    """Run a LiteRT flat buffer on films, from any number of threads.

    An int8 model's input is quantised, ``q = round(x / s) + z``, and its
    output dequantised, ``x = s (q - z)``, with the scales the converter
    stored, so that callers pass and get floats whatever the precision.
    A LiteRT interpreter may be used by one thread at a time, so the runner
    holds a pool of ``interpreters`` of them, all built from the same flat
    buffer: each call borrows an idle one for its whole batch (waiting while
    all are busy) and gives it back. Every interpreter computes the same
    answers, bit for bit, so which one a call gets does not matter.

    Parameters
    ----------
    flatbuffer : bytes
        From :func:`to_litert` or a ``.tflite`` file.
    interpreters : int, default 1
        How many calls can run at once. Each interpreter holds its own
        tensors (about the size of the model's activations for one film).

    Attributes
    ----------
    input_shape : tuple of int
        One film's shape, e.g. ``(32, 32, 1)``.
    dtype : numpy dtype
        What the model computes in at its input: int8 for a full-integer model.
    interpreters : int
        The size of the pool. Introduced in ``14_serving_and_monitoring.ipynb``.
    """

    def __init__(self, flatbuffer: bytes, interpreters: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        from medkit import quiet

        if not isinstance(flatbuffer, (bytes, bytearray)) or not flatbuffer:
            raise TypeError(f"LiteRT takes the flat buffer's bytes (from medkit.deploy.to_litert, or a .tflite file "
                            f"read with Path.read_bytes()); got {type(flatbuffer).__name__}.")
        if isinstance(interpreters, bool) or not isinstance(interpreters, int) or interpreters < 1:
            raise ValueError(f"interpreters is how many films can be scored at once, a whole number of at least 1 "
                             f"(e.g. the number of cores); got {interpreters!r}.")
        self._idle: queue.Queue = queue.Queue()
        with quiet():  # each interpreter announces its CPU delegate
            for _ in range(interpreters):
                interpreter = Interpreter(model_content=bytes(flatbuffer))
                interpreter.allocate_tensors()
                self._idle.put(interpreter)
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])
        self.dtype = np.dtype(self._input["dtype"])
        self.interpreters = interpreters

    def predict(self, films) -> np.ndarray:
        """Probabilities for a batch of films.

        Parameters
        ----------
        films : array, shape (N, *input_shape), floats in [0, 1]

        Returns
        -------
        ndarray, float32, shape (N, outputs)
        """
        x = np.asarray(films, np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"this model reads films of shape {self.input_shape}; got a batch of shape {x.shape}. "
                             "Resize the films, and add the channel axis (films[..., None]).")
        scale, zero = self._input["quantization"]
        if self.dtype == np.int8:
            x = np.clip(np.round(x / scale + zero), -128, 127)
        x = x.astype(self.dtype)
        out = []
        interpreter = self._idle.get()  # waits while every interpreter is lent to another call
        try:
            for film in x:
                interpreter.set_tensor(self._input["index"], film[None])
                interpreter.invoke()
                out.append(interpreter.get_tensor(self._output["index"])[0].copy())
        finally:
            self._idle.put(interpreter)
        y = np.stack(out).astype(np.float32) if out else np.empty((0, int(self._output["shape"][-1])), np.float32)
        scale, zero = self._output["quantization"]
        if np.dtype(self._output["dtype"]) == np.int8:
            y = (y - zero) * scale
        return y.astype(np.float32)

    @classmethod
    def load(cls, path: Path | str, interpreters: int = 1) -> LiteRT:
        """Read a ``.tflite`` file."""
        return cls(Path(path).read_bytes(), interpreters)
