"""medkit: helpers for the chest X-ray machine-learning notebooks.

Every notebook starts with::

    import medkit
    cfg = medkit.setup()

which quiets TensorFlow's start-up messages, seeds every random generator,
sets the plot style and prints one line saying what the notebook will run
on. Importing medkit changes nothing; only :func:`setup` does.

Subpackages: :mod:`medkit.data` (the phantom and the real datasets),
:mod:`medkit.gpu` (devices, mixed precision, distribution),
:mod:`medkit.bench` (``python -m medkit.bench``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medkit import config
from medkit.config import Profile

__version__ = "0.1.0"
__all__ = ["setup", "Setup", "quiet", "startup_log", "__version__"]

#: What TensorFlow's C++ runtime wrote to stderr while :func:`setup` imported
#: it (start-up notices such as "Could not find cuda drivers"); kept here
#: rather than printed into every notebook. Empty until setup() runs.
startup_log = ""

_STYLE = Path(__file__).with_name("medkit.mplstyle")


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` chose; notebooks read sizes and epochs from here.

    Attributes
    ----------
    profile : Profile
        Image size, data size, batch size and epochs.
    dataset : str
        ``phantom``, ``pneumoniamnist``, ``chestmnist`` or a path.
    seed : int
        The seed given to Python, NumPy and TensorFlow.
    devices : str
        A short description of the compute devices.
    """

    profile: Profile
    dataset: str
    seed: int
    devices: str


def _quiet_tensorflow() -> None:
    """Environment settings that only work before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ info, warnings and errors
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # keep oneDNN, silence its notice
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _capture_fd2():
    """Collect what native code writes to file descriptor 2 inside the block.

    TensorFlow's C++ runtime logs through abseil before abseil's logging is
    initialised, which ignores TF_CPP_MIN_LOG_LEVEL and goes straight to the
    process's stderr, where Jupyter shows it under the cell. Python errors are
    unaffected: they are raised as usual.
    """
    captured = {"text": ""}
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured["text"] = sink.read().decode(errors="replace")


@contextlib.contextmanager
def quiet():
    """Hide what native code prints to stderr inside the block.

    The TensorFlow Lite converter and the LiteRT interpreter print notices
    from C++ (``fully_quantize: ...``, ``Created TensorFlow Lite XNNPACK
    delegate``) that no setting turns off; Jupyter would show them under the
    cell. Python warnings and errors are not affected, and if the block
    raises, the hidden text is printed before the error, so nothing is lost.
    Introduced in ``09_compression_deployment.ipynb``.

    Examples
    --------
    >>> with quiet():
    ...     _ = os.write(2, b"a native notice, not shown")
    """
    captured = {"text": ""}
    try:
        with _capture_fd2() as captured:
            yield
    except BaseException:
        sys.stderr.write(captured["text"])
        raise


def setup(seed: int = 0, *, profile: str | None = None, dataset: str | None = None, verbose: bool = True) -> Setup:
    """Prepare a notebook: quiet logs, seed everything, set the plot style.

    Parameters
    ----------
    seed : int, default 0
        Seeds Python's ``random``, NumPy's global generator and TensorFlow
        (through :func:`keras.utils.set_random_seed`); TensorFlow's op
        determinism is switched on so that a rerun gives the same numbers.
    profile, dataset : str, optional
        Override ``MEDKIT_PROFILE`` and ``MEDKIT_DATASET`` (see
        :mod:`medkit.config`).
    verbose : bool, default True
        Print the one-line summary.

    Returns
    -------
    Setup
        The profile, dataset, seed and devices in use.
    """
    chosen_profile = config.profile(profile)
    chosen_dataset = config.dataset(dataset)
    if "tensorflow" in sys.modules:
        already = True
    else:
        already = False
        _quiet_tensorflow()

    global startup_log
    if not already:
        with _capture_fd2() as captured:
            import tensorflow  # noqa: F401  (first import: its C++ start-up notices are captured)
        startup_log = captured["text"]

    import keras
    import matplotlib
    import numpy as np
    import tensorflow as tf
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    matplotlib.style.use(_STYLE)

    from medkit import gpu

    devices = gpu.describe_devices()
    result = Setup(profile=chosen_profile, dataset=chosen_dataset, seed=seed, devices=devices)
    if verbose:
        shown = chosen_dataset if len(chosen_dataset) < 40 else "…" + chosen_dataset[-38:]
        print(
            f"medkit {__version__} | Python {platform.python_version()} | TensorFlow {tf.__version__} | "
            f"Keras {keras.__version__} | {devices} | profile {chosen_profile.name} | dataset {shown} | seed {seed}"
        )
        if already:
            print("note: TensorFlow was imported before medkit.setup(), so its start-up messages were not silenced.")
    return result
