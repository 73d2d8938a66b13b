"""GPU training utilities that also run, and say so, on a CPU-only machine.

A training script that scales from a laptop to a multi-GPU server needs four
things, each here:

1. know what it runs on (:func:`device_report`);
2. let TensorFlow take GPU memory as needed instead of all at once
   (:func:`enable_memory_growth`);
3. use float16 arithmetic where the GPU has tensor cores, compute
   capability 7.0 or newer (:func:`use_mixed_precision`), and never on a CPU,
   where it is slower;
4. copy the model onto every local GPU and split each batch between them
   (:func:`strategy`, a :class:`tf.distribute.MirroredStrategy`), with the
   global batch scaled by the number of replicas (:func:`global_batch_size`).

:class:`ThroughputCallback` prints images per second for each epoch, the
number to watch when tuning any of the above.

Introduced in ``00_setup.ipynb``; in depth in ``10_scaling_gpus.ipynb``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

__all__ = [
    "GPUInfo",
    "DeviceReport",
    "device_report",
    "describe_devices",
    "enable_memory_growth",
    "use_mixed_precision",
    "strategy",
    "global_batch_size",
    "ThroughputCallback",
]


@dataclass(frozen=True)
class GPUInfo:
    """One GPU as TensorFlow sees it.

    Attributes
    ----------
    name : str
        TensorFlow's device name, e.g. ``/physical_device:GPU:0``.
    model : str
        The product name, e.g. ``NVIDIA A100-SXM4-40GB``.
    compute_capability : tuple of int or None
        ``(major, minor)``; mixed precision pays off from ``(7, 0)``.
    memory_mib : int or None
        Total memory in MiB, from ``nvidia-smi`` when it is installed.
    """

    name: str
    model: str
    compute_capability: tuple[int, int] | None
    memory_mib: int | None


@dataclass(frozen=True)
class DeviceReport:
    """What this machine offers TensorFlow.

    Attributes
    ----------
    cpu_cores : int
        Logical CPU cores.
    gpus : list of GPUInfo
        Empty on a CPU-only machine.
    cuda_build : bool
        Whether this TensorFlow was built with CUDA.
    cuda_version, cudnn_version : str or None
        The versions TensorFlow was built against.
    """

    cpu_cores: int
    gpus: list[GPUInfo] = field(default_factory=list)
    cuda_build: bool = False
    cuda_version: str | None = None
    cudnn_version: str | None = None

    def __str__(self) -> str:
        lines = [f"CPU: {self.cpu_cores} logical cores"]
        if not self.gpus:
            lines.append("GPU: none present; training runs on the CPU")
            if not self.cuda_build:
                lines.append("     (this TensorFlow has no CUDA support; on a GPU machine install the 'gpu' extra)")
        for gpu in self.gpus:
            cc = ".".join(map(str, gpu.compute_capability)) if gpu.compute_capability else "unknown"
            mem = f"{gpu.memory_mib} MiB" if gpu.memory_mib else "memory unknown"
            lines.append(f"GPU: {gpu.model} ({gpu.name}), compute capability {cc}, {mem}")
        if self.cuda_build:
            lines.append(f"TensorFlow built with CUDA {self.cuda_version} and cuDNN {self.cudnn_version}")
        return "\n".join(lines)


def _nvidia_smi_memory() -> list[int]:
    """Total memory per GPU in MiB, or [] without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return [int(line) for line in out.split() if line.strip().isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


def device_report() -> DeviceReport:
    """Describe the CPU, every GPU and TensorFlow's CUDA build.

    Returns
    -------
    DeviceReport
        Print it for a readable summary.
    """
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    memory = _nvidia_smi_memory()
    gpus = []
    for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(dev)
        gpus.append(
            GPUInfo(
                name=dev.name,
                model=details.get("device_name", "unknown GPU"),
                compute_capability=details.get("compute_capability"),
                memory_mib=memory[i] if i < len(memory) else None,
            )
        )
    return DeviceReport(
        cpu_cores=os.cpu_count() or 1,
        gpus=gpus,
        cuda_build=bool(build.get("is_cuda_build", False)),
        cuda_version=build.get("cuda_version"),
        cudnn_version=build.get("cudnn_version"),
    )


def describe_devices() -> str:
    """One short phrase for the setup line, e.g. ``"CPU ×2, no GPU"``."""
    report = device_report()
    if not report.gpus:
        return f"CPU ×{report.cpu_cores}, no GPU"
    names = sorted({g.model for g in report.gpus})
    return f"GPU ×{len(report.gpus)} ({', '.join(names)})"


def enable_memory_growth() -> list[str]:
    """Let TensorFlow allocate GPU memory as needed rather than all up front.

    Must run before any GPU is used; returns the GPUs it was set on (none on
    a CPU-only machine). If a GPU was already initialised, raises
    RuntimeError saying so.
    """
    import tensorflow as tf

    done = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as err:
            raise RuntimeError(
                f"could not enable memory growth on {gpu.name}: {err}. Call "
                "medkit.gpu.enable_memory_growth() before building any model (restart the kernel and run it first)."
            ) from err
        done.append(gpu.name)
    return done


def use_mixed_precision(enable: bool | None = None) -> str:
    """Switch Keras to ``mixed_float16`` where the hardware gains from it.

    Parameters
    ----------
    enable : bool, optional
        None (default) decides: on only when every GPU has compute capability
        7.0 or newer (tensor cores). False forces float32. True forces mixed
        precision and raises ValueError when no GPU is present, since on a
        CPU it is slower and less accurate.

    Returns
    -------
    str
        The global policy now in force, ``"mixed_float16"`` or ``"float32"``.
    """
    import keras

    report = device_report()
    capable = bool(report.gpus) and all(g.compute_capability and g.compute_capability >= (7, 0) for g in report.gpus)
    if enable is True and not report.gpus:
        raise ValueError(
            "mixed precision was requested but no GPU is present; on a CPU float16 is slower, not faster. "
            "Call use_mixed_precision() without arguments to decide automatically."
        )
    policy = "mixed_float16" if (enable is True or (enable is None and capable)) else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def strategy():
    """A distribution strategy over the local GPUs.

    Returns a :class:`tf.distribute.MirroredStrategy` when at least one GPU
    is present (one replica per GPU, gradients summed across them) and the
    default strategy otherwise, so ``with strategy().scope():`` works
    everywhere. Every call returns the same strategy: variables belong to
    the strategy that created them, so a model built under one call's scope
    can be trained again under the next.
    """
    import tensorflow as tf

    gpus = tuple(device.name for device in tf.config.list_logical_devices("GPU"))
    if not gpus:
        return tf.distribute.get_strategy()
    if gpus not in _MIRRORED:
        _MIRRORED[gpus] = tf.distribute.MirroredStrategy()
    return _MIRRORED[gpus]


_MIRRORED = {}  # one MirroredStrategy per set of GPUs, created on first use


def global_batch_size(per_replica: int, strat=None) -> int:
    """The batch to feed a strategy: ``per_replica`` times the replica count.

    Examples
    --------
    >>> global_batch_size(64)  # one replica on a CPU-only machine
    64
    """
    if per_replica < 1:
        raise ValueError(f"per_replica must be a positive number of images; got {per_replica!r}.")
    strat = strat or strategy()
    return per_replica * strat.num_replicas_in_sync


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class ThroughputCallback(_keras_callback_base()):
    """Keras callback: training images per second, each epoch.

    Parameters
    ----------
    images_per_epoch : int
        Number of training images one epoch sees (the training set size).
    verbose : bool, default True
        Print one line per epoch.

    Attributes
    ----------
    images_per_second : list of float
        One value per finished epoch.
    """

    def __init__(self, images_per_epoch: int, verbose: bool = True):
        super().__init__()
        if images_per_epoch < 1:
            raise ValueError(f"images_per_epoch must be a positive count; got {images_per_epoch!r}.")
        self.images_per_epoch = int(images_per_epoch)
        self.verbose = verbose
        self.images_per_second: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        rate = self.images_per_epoch / max(seconds, 1e-9)
        self.images_per_second.append(rate)
        if self.verbose:
            print(f"epoch {epoch + 1}: {rate:,.0f} images/s ({seconds:.1f} s)")
