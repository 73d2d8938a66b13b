"""GPU utilities on a machine without a GPU: honest reports, safe defaults."""

import numpy as np
import pytest

from medkit import gpu


@pytest.fixture
def no_gpu():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU; these tests check CPU-only behaviour")


def test_device_report_says_no_gpu(no_gpu):
    report = gpu.device_report()
    assert report.gpus == [] and report.cpu_cores >= 1
    text = str(report)
    assert "GPU: none present" in text and f"{report.cpu_cores} logical cores" in text
    assert gpu.describe_devices().endswith("no GPU")


def test_report_formats_a_gpu():
    report = gpu.DeviceReport(
        cpu_cores=8,
        gpus=[gpu.GPUInfo("/physical_device:GPU:0", "NVIDIA A100", (8, 0), 40960)],
        cuda_build=True,
        cuda_version="12.5",
        cudnn_version="9",
    )
    assert "NVIDIA A100 (/physical_device:GPU:0), compute capability 8.0, 40960 MiB" in str(report)


def test_strategy_is_created_once(monkeypatch):
    # With GPUs present, strategy() returns one MirroredStrategy for the session, so a model built under one call's
    # scope can be compiled under the next. Faked here: the logical device list names a GPU, and MirroredStrategy,
    # finding none, mirrors over the CPU.
    import tensorflow as tf

    real = tf.config.list_logical_devices
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: (
        [tf.config.LogicalDevice("/device:GPU:0", "GPU")] if kind == "GPU" else real(kind)))
    monkeypatch.setattr(gpu, "_MIRRORED", {})
    first = gpu.strategy()
    assert isinstance(first, tf.distribute.MirroredStrategy)
    assert gpu.strategy() is first


def test_strategy_and_batch_on_cpu(no_gpu):
    strat = gpu.strategy()
    assert strat.num_replicas_in_sync == 1
    assert gpu.global_batch_size(32, strat) == 32
    with pytest.raises(ValueError, match="positive"):
        gpu.global_batch_size(0)


def test_mixed_precision_stays_off_on_cpu(no_gpu):
    import keras

    try:
        assert gpu.use_mixed_precision() == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
        with pytest.raises(ValueError, match="no GPU is present"):
            gpu.use_mixed_precision(True)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_memory_growth_is_a_no_op_without_gpus(no_gpu):
    assert gpu.enable_memory_growth() == []


def test_throughput_callback_measures_each_epoch():
    import keras

    x = np.random.default_rng(0).random((64, 8)).astype("float32")
    y = (x.sum(axis=1) > 4).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    cb = gpu.ThroughputCallback(images_per_epoch=64, verbose=False)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert len(cb.images_per_second) == 3 and all(r > 0 for r in cb.images_per_second)
    with pytest.raises(ValueError, match="positive"):
        gpu.ThroughputCallback(0)
