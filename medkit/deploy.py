"""A trained Keras model as a LiteRT flat buffer, and a runner for it that a web server can share.

Notebook 09 converts models by hand, to show what each step does; notebook
14 serves the int8 model, and needs the same conversion, plus a runner that
many request threads may call at once (a LiteRT interpreter is not
thread-safe). Both are here.
"""

from __future__ import annotations

import tempfile
import threading
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
    One interpreter serves every caller, one film at a time, behind a lock.

    Parameters
    ----------
    flatbuffer : bytes
        From :func:`to_litert` or a ``.tflite`` file.

    Attributes
    ----------
    input_shape : tuple of int
        One film's shape, e.g. ``(32, 32, 1)``.
    dtype : numpy dtype
        What the model computes in at its input: int8 for a full-integer model.
    """

    def __init__(self, flatbuffer: bytes):
        from ai_edge_litert.interpreter import Interpreter

        from medkit import quiet

        if not isinstance(flatbuffer, (bytes, bytearray)) or not flatbuffer:
            raise TypeError(f"LiteRT takes the flat buffer's bytes (from medkit.deploy.to_litert, or a .tflite file "
                            f"read with Path.read_bytes()); got {type(flatbuffer).__name__}.")
        with quiet():  # the interpreter announces its CPU delegate
            self._interpreter = Interpreter(model_content=bytes(flatbuffer))
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])
        self.dtype = np.dtype(self._input["dtype"])
        self._lock = threading.Lock()

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
        with self._lock:
            for film in x:
                self._interpreter.set_tensor(self._input["index"], film[None])
                self._interpreter.invoke()
                out.append(self._interpreter.get_tensor(self._output["index"])[0].copy())
        y = np.stack(out).astype(np.float32) if out else np.empty((0, int(self._output["shape"][-1])), np.float32)
        scale, zero = self._output["quantization"]
        if np.dtype(self._output["dtype"]) == np.int8:
            y = (y - zero) * scale
        return y.astype(np.float32)

    @classmethod
    def load(cls, path: Path | str) -> LiteRT:
        """Read a ``.tflite`` file."""
        return cls(Path(path).read_bytes())
