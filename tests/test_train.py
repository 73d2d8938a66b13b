import numpy as np
import pytest

from medkit import explain, models, train


def test_fit_selects_on_validation_and_reports(tiny_phantom, tmp_path):
    ckpt = tmp_path / "best.keras"
    result = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, image_size=32, epochs=3, batch_size=16,
                       patience=3, checkpoint=str(ckpt), verbose=False)
    h = result.history
    assert len(h["loss"]) == 3 and {"auc", "val_loss", "val_auc", "lr"} <= set(h)
    assert h["lr"][-1] < h["lr"][0]  # cosine decay
    assert result.best_epoch == int(np.argmax(h["val_auc"])) + 1
    assert len(result.images_per_second) == 3 and all(r > 0 for r in result.images_per_second)
    assert ckpt.is_file()
    p = train.predict(result.model, tiny_phantom.test)
    assert p.shape == (len(tiny_phantom.test), 1) and ((0 <= p) & (p <= 1)).all()


def test_fit_refuses_bad_settings(tiny_phantom):
    with pytest.raises(ValueError, match="at least 1"):
        train.fit(lambda: models.small_cnn(32), tiny_phantom, epochs=0)
    with pytest.raises(ValueError, match=r"\.keras"):
        train.fit(lambda: models.small_cnn(32), tiny_phantom, checkpoint="best.h5")


def test_grad_cam_is_a_normalised_map_of_the_input_size(tiny_phantom):
    model = models.small_cnn(32, width=4)
    x = tiny_phantom.test.images[:3].astype(np.float32) / 255.0
    cam = explain.grad_cam(model, x, "relu4")
    assert cam.shape == (3, 32, 32) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() <= 1
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        explain.grad_cam(model, x, "conv9")


def test_small_cnn_dropout_adds_one_layer():
    plain, dropped = models.small_cnn(32), models.small_cnn(32, dropout=0.3)
    assert plain.count_params() == dropped.count_params()
    assert [lay.name for lay in dropped.layers if lay.name not in [p.name for p in plain.layers]] == ["dropout"]


def test_resnet_blocks_use_identity_or_projection_shortcuts():
    model = models.resnet(28, width=8, blocks=(1, 2))
    names = [layer.name for layer in model.layers]
    assert "stage1_block1_project" not in names  # same shape: identity shortcut
    assert "stage2_block1_project" in names and "stage2_block2_project" not in names  # halves the map: projection
    assert model.get_layer("stage2_block1_out").output.shape[1:] == (14, 14, 16)
    assert model.output_shape == (None, 1)


def test_fit_keeps_float32_without_a_capable_gpu(tiny_phantom):
    import keras

    result = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, image_size=32, epochs=1, batch_size=16,
                       verbose=False)
    assert keras.mixed_precision.global_policy().name == "float32"  # this CPU machine: no tensor cores
    assert result.model.get_layer("probability").dtype_policy.compute_dtype == "float32"
