import re

import numpy as np
import pytest

from medkit import explain, models, train


def _prediction_recorder(split):
    """A callback recording the model's predictions for ``split`` after every epoch (in ``.per_epoch``)."""
    import keras

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.per_epoch = []

        def on_epoch_end(self, epoch, logs=None):
            self.per_epoch.append(train.predict(self.model, split))

    return Record()


def test_fit_keeps_the_weights_of_the_best_validation_epoch(tiny_phantom, tmp_path):
    ckpt = tmp_path / "best.keras"
    record = _prediction_recorder(tiny_phantom.val)
    result = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=4, batch_size=16, patience=4,
                       checkpoint=str(ckpt), callbacks=[record], verbose=False)
    h = result.history
    assert len(h["loss"]) == 4 and {"auc", "val_loss", "val_auc", "lr"} <= set(h)
    assert h["lr"][-1] < h["lr"][0]  # cosine decay
    assert len(result.images_per_second) == 4 and all(r > 0 for r in result.images_per_second)
    # The returned model predicts what it predicted after the kept epoch, and that epoch had the best val AUC.
    kept = train.predict(result.model, tiny_phantom.val)
    matches = [i + 1 for i, p in enumerate(record.per_epoch) if np.allclose(p, kept, atol=1e-6)]
    assert result.best_epoch in matches and h["val_auc"][result.best_epoch - 1] == max(h["val_auc"])
    assert result.val_auc == max(h["val_auc"])
    assert len({round(float(p.sum()), 4) for p in record.per_epoch}) > 1, "the weights must change between epochs"
    import keras

    np.testing.assert_allclose(train.predict(keras.models.load_model(ckpt), tiny_phantom.val), kept, atol=1e-6)
    p = train.predict(result.model, tiny_phantom.test)
    assert p.shape == (len(tiny_phantom.test), 1) and ((0 <= p) & (p <= 1)).all()


def test_fit_keep_last_trains_every_epoch_and_keeps_the_last(tiny_phantom):
    record = _prediction_recorder(tiny_phantom.val)
    result = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=3, batch_size=16, patience=1,
                       keep="last", callbacks=[record], verbose=False)
    assert len(result.history["loss"]) == 3 and result.best_epoch == 3
    np.testing.assert_allclose(train.predict(result.model, tiny_phantom.val), record.per_epoch[-1], atol=1e-6)
    with pytest.raises(ValueError, match="keep must be"):
        train.fit(lambda: models.small_cnn(32), tiny_phantom, keep="first")


def test_fit_validated_at_the_end_trains_the_same_weights(tiny_phantom):
    def run(validate):
        return train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=3, batch_size=16,
                         keep="last", validate=validate, seed=3, verbose=validate == "at the end")

    every, once = run("every epoch"), run("at the end")
    assert len(every.history["val_auc"]) == 3 and len(once.history["val_auc"]) == 1
    for a, b in zip(every.model.get_weights(), once.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert once.val_auc == every.history["val_auc"][-1] and once.best_epoch == 3
    with pytest.raises(ValueError, match="needs keep='last'"):
        train.fit(lambda: models.small_cnn(32), tiny_phantom, validate="at the end")
    with pytest.raises(ValueError, match="validate must be"):
        train.fit(lambda: models.small_cnn(32), tiny_phantom, keep="last", validate="never")


def test_fit_reports_the_training_auc_in_inference_mode(tiny_phantom):
    from medkit import evaluate

    result = train.fit(lambda: models.small_cnn(32, width=4, dropout=0.5), tiny_phantom, epochs=2, batch_size=16,
                       track_train=True, verbose=False)
    expected = evaluate.auc(tiny_phantom.train.labels, train.predict(result.model, tiny_phantom.train))
    assert result.train_auc == pytest.approx(expected, abs=1e-9)
    assert len(result.history["train_auc"]) == 2
    assert result.history["train_auc"][result.best_epoch - 1] == pytest.approx(expected, abs=1e-9)


def test_fit_changes_no_global_state(tiny_phantom):
    import random

    import keras

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    policy = keras.mixed_precision.global_policy().name
    train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=1, batch_size=16, seed=7, verbose=False)
    assert (np.random.random(), random.random()) == expected
    assert keras.mixed_precision.global_policy().name == policy


def test_fit_restores_the_dtype_policy_after_building_in_mixed_precision(tiny_phantom, monkeypatch):
    # As on a GPU with tensor cores: the model computes in float16, later models get the caller's policy.
    import keras

    from medkit import gpu

    monkeypatch.setattr(gpu, "use_mixed_precision", lambda enable=None: keras.mixed_precision.set_global_policy(
        "mixed_float16") or "mixed_float16")
    result = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=1, batch_size=16, verbose=False)
    assert result.model.get_layer("conv1").dtype_policy.compute_dtype == "float16"
    assert result.model.get_layer("probability").dtype_policy.compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert models.small_cnn(32).get_layer("conv1").dtype_policy.compute_dtype == "float32"


def test_fit_is_repeatable_from_its_seed_alone(tiny_phantom):
    import random

    def weights(seed):
        random.seed(seed * 31 + 5)  # global state that must not matter
        np.random.seed(seed * 17 + 3)
        model = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=1, batch_size=16, seed=seed,
                          verbose=False).model
        return np.concatenate([w.ravel() for w in model.get_weights()])

    first = weights(3)
    np.testing.assert_allclose(weights(3), first, atol=1e-6)
    assert not np.allclose(weights(4), first, atol=1e-3)


def test_fit_takes_the_image_size_from_the_model_and_checks_the_outputs(tiny_phantom):
    result = train.fit(lambda: models.small_cnn(28, width=4), tiny_phantom, epochs=1, batch_size=16, verbose=False)
    assert result.model.input_shape[1:3] == (28, 28)  # 32 px films resized to the model's 28 px
    with pytest.raises(ValueError, match="image_size=32 but the model takes 28 px"):
        train.fit(lambda: models.small_cnn(28), tiny_phantom, image_size=32, epochs=1)
    with pytest.raises(ValueError, match="the model has 5 outputs but phantom has 1 label column"):
        train.fit(lambda: models.small_cnn(32, 5), tiny_phantom, epochs=1)


def test_fit_traces_the_training_step_once(tiny_phantom):
    # The optimizer is built before fitting; left to Keras, its variables would be created during the first trace
    # and TensorFlow would trace the training step a second time. Python code in train_step runs once per trace.
    traces = []

    def build():
        model = models.small_cnn(32, width=4)
        step = model.train_step
        model.train_step = lambda data: (traces.append(1), step(data))[1]
        return model

    train.fit(build, tiny_phantom, epochs=2, batch_size=16, patience=2, verbose=False)
    assert len(traces) == 1


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


def test_grad_cam_explains_the_logit_so_a_saturated_sigmoid_still_has_a_map(tiny_phantom):
    model = models.small_cnn(32, width=4)
    x = tiny_phantom.test.images[:3].astype(np.float32) / 255.0
    before = explain.grad_cam(model, x, "relu4")
    head = model.get_layer("probability")
    kernel, bias = head.get_weights()
    # Without the map changing shape: p (1 - p) scales every channel's weight alike.
    head.set_weights([kernel, bias + 3.0])
    np.testing.assert_allclose(explain.grad_cam(model, x, "relu4"), before, atol=1e-5)
    # A bias so large that the float32 sigmoid is exactly 1: its gradient is 0, the logit's is not.
    head.set_weights([kernel, bias + 60.0])
    assert (model.predict(x, verbose=0) == 1.0).all()
    np.testing.assert_allclose(explain.grad_cam(model, x, "relu4"), before, atol=1e-5)


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


def test_unet_masks_have_the_film_size_and_skips_join_equal_maps():
    model = models.unet(32, 5, width=4, depth=2)
    assert model.output_shape == (None, 32, 32, 5)
    for level, size in ((1, 32), (2, 16)):
        skip = model.get_layer(f"skip{level}").output.shape[1:]
        assert skip == (size, size, 2 * 4 * 2 ** (level - 1)), "the upsampled map and the encoder's, concatenated"
    masks = model.predict(np.random.default_rng(0).random((2, 32, 32, 1), np.float32), verbose=0)
    assert masks.shape == (2, 32, 32, 5) and ((masks > 0) & (masks < 1)).all()


def test_unet_without_a_size_reads_films_of_any_multiple_of_its_poolings():
    model = models.unet(None, 2, width=4, depth=2)
    for size in (16, 40):
        assert model.predict(np.zeros((1, size, size, 1), np.float32), verbose=0).shape == (1, size, size, 2)


@pytest.mark.parametrize("size, depth, message",
                         [(60, 3, "divisible by 8; got 60"), (0, 3, "divisible by 8; got 0"), (64, 0, "at least 1")])
def test_unet_says_which_sizes_it_takes(size, depth, message):
    with pytest.raises(ValueError, match=message):
        models.unet(size, depth=depth)


def test_unet_prior_sets_the_untrained_networks_probability_per_pixel():
    films = np.random.default_rng(0).random((2, 16, 16, 1), np.float32)
    with_prior = models.unet(16, 3, width=4, depth=2, prior=0.01)
    assert np.allclose(with_prior.get_layer("mask").bias.numpy(), np.log(0.01 / 0.99))
    assert models.unet(16, 3, width=4, depth=2).predict(films, verbose=0).mean() > 0.2, "bias 0 by default"
    assert with_prior.predict(films, verbose=0).mean() < 0.1


def test_unet_prior_per_output():
    model = models.unet(16, 3, width=4, depth=2, prior=[0.5, 0.1, 0.001])
    assert np.allclose(model.get_layer("mask").bias.numpy(), [0, np.log(1 / 9), np.log(0.001 / 0.999)], atol=1e-6)


@pytest.mark.parametrize("prior, shown", [(0, "[0.0, 0.0]"), (1, "[1.0, 1.0]"), (-0.5, "[-0.5, -0.5]"),
                                          ([0.1, 0.0], "[0.1, 0.0]"), ([0.1, 0.1, 0.1], "[0.1, 0.1, 0.1]")])
def test_unet_refuses_a_prior_that_is_not_a_probability_per_output(prior, shown):
    with pytest.raises(ValueError, match=re.escape(f"one per output (2), each between 0 and 1 exclusive; got {shown}")):
        models.unet(16, 2, depth=2, prior=prior)


def _capable_gpu():
    from medkit import gpu

    report = gpu.device_report()
    return bool(report.gpus) and all(g.compute_capability and g.compute_capability >= (7, 0) for g in report.gpus)


@pytest.mark.skipif(_capable_gpu(), reason="this machine's GPUs have tensor cores, so fit trains in mixed precision")
def test_fit_keeps_float32_without_a_capable_gpu(tiny_phantom):
    import keras

    result = train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=1, batch_size=16, verbose=False)
    assert keras.mixed_precision.global_policy().name == "float32"  # this CPU machine: no tensor cores
    assert result.model.get_layer("probability").dtype_policy.compute_dtype == "float32"


def test_vit_tokens_and_hybrid_stem():
    plain, hybrid = models.vit(28), models.vit(28, stem=True, patch=2)
    assert plain.get_layer("tokens").output.shape == (None, 49, 64)
    assert hybrid.get_layer("tokens").output.shape == (None, 49, 64)
    assert "stem_conv1" in [lay.name for lay in hybrid.layers] and "stem_conv1" not in [lay.name for lay in plain.layers]
    with pytest.raises(ValueError, match="not a multiple of the patch size 8"):
        models.vit(28, stem=True, patch=4)
    with pytest.raises(ValueError, match="multiple of heads=3"):
        models.vit(28, heads=3)


def test_standardised_vit_ignores_exposure_and_contrast():
    # Each film is standardised first, so a brighter or flatter copy of it gets the same prediction.
    x = np.random.default_rng(2).random((4, 16, 16, 1)).astype("float32")
    model = models.vit(16, patch=4, dim=16, depth=1, heads=2, mlp_dim=16, standardize=True)
    np.testing.assert_allclose(model.predict(0.5 * x + 0.2, verbose=0), model.predict(x, verbose=0), atol=1e-4)
    plain = models.vit(16, patch=4, dim=16, depth=1, heads=2, mlp_dim=16)
    assert model.count_params() == plain.count_params()  # no weights in the standardisation
    assert not np.allclose(plain.predict(0.5 * x + 0.2, verbose=0), plain.predict(x, verbose=0), atol=1e-4)


def test_vit_saves_and_reloads_with_its_position_embedding(tmp_path):
    import keras

    model = models.vit(16, patch=4, dim=16, depth=1, heads=2, mlp_dim=16)
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    model.save(tmp_path / "vit.keras")
    again = keras.models.load_model(tmp_path / "vit.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_attention_maps_are_softmax_rows_and_rollout_is_a_map():
    model = models.vit(16, patch=4, dim=16, depth=2, heads=2, mlp_dim=16)
    x = np.random.default_rng(0).random((3, 16, 16)).astype("float32")
    maps = explain.attention_maps(model, x)
    assert [m.shape for m in maps] == [(3, 2, 16, 16)] * 2
    np.testing.assert_allclose(maps[0].sum(axis=-1), 1, atol=1e-5)
    roll = explain.attention_rollout(model, x)
    assert roll.shape == (3, 16, 16) and roll.max() == pytest.approx(1) and roll.min() >= 0
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        explain.attention_rollout(models.small_cnn(16, width=4), x)


def test_rollout_of_identity_attention_is_uniform():
    # With residual=1 every layer is the identity, so each patch counts the same.
    model = models.vit(16, patch=4, dim=16, depth=2, heads=2, mlp_dim=16)
    x = np.random.default_rng(0).random((1, 16, 16)).astype("float32")
    np.testing.assert_allclose(explain.attention_rollout(model, x, residual=1.0), 1, atol=1e-6)


def test_rollout_on_the_patch_grid_is_the_product_of_the_layers():
    # With residual=0 the rollout is A2 @ A1 (heads averaged), pooled over output tokens.
    model = models.vit(16, patch=4, dim=16, depth=2, heads=2, mlp_dim=16)
    x = np.random.default_rng(1).random((2, 16, 16)).astype("float32")
    a1, a2 = (m.mean(axis=1) for m in explain.attention_maps(model, x))
    expected = (a2 @ a1).mean(axis=1).reshape(2, 4, 4)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    grid = explain.attention_rollout(model, x, residual=0.0, resize=False)
    assert grid.shape == (2, 4, 4)
    np.testing.assert_allclose(grid, expected, atol=1e-5)
    assert explain.attention_rollout(model, x, residual=0.0).shape == (2, 16, 16)


def _corner_reader(size=16):
    # A model that only reads the top-left quarter: p = sigmoid(sum of those pixels - bias).
    import keras

    model = keras.Sequential([keras.Input((size, size, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    region = np.zeros((size, size), bool)
    region[: size // 2, : size // 2] = True
    model.layers[-1].set_weights([region.reshape(-1, 1).astype("float32") * 0.2, np.array([-3.0], "float32")])
    return model, region


def test_occlusion_finds_the_only_region_the_model_reads():
    model, region = _corner_reader()
    x = np.random.default_rng(7).uniform(0.5, 1.0, (3, 16, 16)).astype("float32")
    maps = explain.occlusion(model, x, patch=4, stride=2, fill=0.0)
    assert maps.shape == (3, 16, 16) and maps.max() == pytest.approx(1) and maps.min() >= 0
    assert maps[:, ~region].max() < 0.5  # windows that only touch other pixels change nothing
    assert explain.pointing_game(maps, np.repeat(region[None], 3, 0)).all()
    assert (explain.mass_inside(maps, np.repeat(region[None], 3, 0)) > 0.8).all()
    with pytest.raises(ValueError, match="must tile"):
        explain.occlusion(model, x, patch=5, stride=2)


def test_map_scores_refuse_mismatched_or_empty_masks():
    maps = np.ones((2, 8, 8))
    with pytest.raises(ValueError, match="must both have shape"):
        explain.mass_inside(maps, np.ones((2, 4, 4), bool))
    with pytest.raises(ValueError, match="some masks are empty"):
        explain.pointing_game(maps, np.zeros((2, 8, 8), bool))
    with pytest.raises(ValueError, match="non-negative"):
        explain.mass_inside(-maps, np.ones((2, 8, 8), bool))


def test_predict_tta_averages_the_shifted_films(tiny_phantom):
    from scipy import ndimage

    model = models.small_cnn(32, width=4)
    plain = train.predict(model, tiny_phantom.test)
    tta = train.predict_tta(model, tiny_phantom.test, shift=2)
    x = tiny_phantom.test.images[..., None].astype(np.float32) / 255.0
    by_hand = np.mean([model.predict(ndimage.shift(x, (0, dy, dx, 0), order=0, mode="nearest"), verbose=0)
                       for dy, dx in [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]], axis=0)
    np.testing.assert_allclose(tta, by_hand, atol=1e-6)
    assert tta.shape == plain.shape and not np.allclose(tta, plain, atol=1e-7)


def test_fit_warms_the_learning_rate_up_then_decays_it(tiny_phantom):
    record = []

    import keras

    class LearningRates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            opt = self.model.optimizer
            record.append(float(opt.learning_rate(opt.iterations) if callable(opt.learning_rate) else opt.learning_rate))

    train.fit(lambda: models.small_cnn(32, width=4), tiny_phantom, epochs=4, batch_size=16, learning_rate=1e-3,
              warmup=0.25, keep="last", callbacks=[LearningRates()], verbose=False)
    steps = len(record)  # 4 batches per epoch, 16 steps; 4 of warm-up
    assert steps == 16 and record[0] == 0.0
    np.testing.assert_allclose(record[:5], [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3], rtol=1e-5)
    assert all(a >= b for a, b in zip(record[4:], record[5:])) and record[-1] < 1e-4
    with pytest.raises(ValueError, match="warmup is a share"):
        train.fit(lambda: models.small_cnn(32), tiny_phantom, warmup=1.5)


@pytest.mark.parametrize("policy, output", [("float32", "float32"), ("mixed_float16", "float32"), ("float64", "float64")])
def test_builders_keep_probabilities_in_float32_under_mixed_precision_only(policy, output):
    # Under mixed precision the loss must not be computed in float16; in float64 (notebook 10's exact comparison
    # of two workers with one process) nothing may round to float32.
    import keras

    keras.config.set_dtype_policy(policy)
    try:
        for build in (models.small_cnn, models.resnet, models.vit):
            model = build(32)
            assert model.get_layer("probability").dtype_policy.compute_dtype == output, build.__name__
            assert model(np.zeros((1, 32, 32, 1), policy.removeprefix("mixed_"))).dtype == output, build.__name__
    finally:
        keras.config.set_dtype_policy("float32")


def test_synchronized_batch_norm_is_the_same_on_one_replica():
    import keras

    x = np.random.default_rng(0).random((8, 32, 32, 1), dtype=np.float32)
    outputs = []
    for synchronized in (False, True):
        keras.utils.set_random_seed(0)
        model = models.small_cnn(32, synchronized=synchronized)
        assert all(model.get_layer(f"bn{i}").synchronized is synchronized for i in range(1, 5))
        outputs.append(np.asarray(model(x, training=True)))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
