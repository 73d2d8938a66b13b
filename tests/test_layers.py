"""The kit's Keras layers against their definitions, and the small-data ViT (shifted patches, locality attention)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from medkit import explain, models  # noqa: E402
from medkit.layers import DiagonalShifts, LocalitySelfAttention  # noqa: E402


def _shifted(image, dy, dx):
    # The image moved by (dy, dx) pixels, zeros where nothing comes in: out[i, j] = image[i - dy, j - dx].
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def test_diagonal_shifts_are_the_image_moved_in_the_four_diagonals():
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    s = 2
    out = keras.ops.convert_to_numpy(DiagonalShifts(s)(images))
    assert out.shape == (2, 8, 8, 15)
    expected = [(0, 0), (-s, -s), (-s, s), (s, -s), (s, s)]  # itself, left-up, right-up, left-down, right-down
    for n in range(2):
        for k, (dy, dx) in enumerate(expected):
            np.testing.assert_array_equal(out[n, ..., 3 * k:3 * k + 3], _shifted(images[n], dy, dx))


@pytest.mark.parametrize("shift", [0, -1, 1.5])
def test_diagonal_shifts_refuse_a_shift_that_is_not_a_positive_whole_number(shift):
    with pytest.raises(ValueError, match="whole number of pixels"):
        DiagonalShifts(shift)


def _pair(heads=2, key_dim=4, tokens=6, dim=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(3, tokens, dim)).astype(np.float32)
    keras.utils.set_random_seed(seed)
    reference = keras.layers.MultiHeadAttention(heads, key_dim)
    reference(x, x)
    return x, reference


def test_locality_attention_without_its_changes_is_keras_attention():
    x, reference = _pair()
    layer = LocalitySelfAttention(2, 4, mask_diagonal=False)
    layer(x, x)
    layer.set_weights([np.float32(2.0)] + reference.get_weights())  # tau = sqrt(key_dim): standard attention
    out, weights = layer(x, x, return_attention_scores=True)
    ref_out, ref_weights = reference(x, x, return_attention_scores=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(ref_out), atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights), keras.ops.convert_to_numpy(ref_weights), atol=1e-6)


def test_locality_attention_is_the_softmax_of_the_scores_over_tau_without_the_diagonal():
    x, _ = _pair()
    layer = LocalitySelfAttention(2, 4)
    layer(x, x)
    layer.tau.assign(0.7)
    _, wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()  # tau first, then Keras's projections
    q = np.einsum("btd,dhk->bthk", x, wq) + bq
    k = np.einsum("btd,dhk->bthk", x, wk) + bk
    v = np.einsum("btd,dhk->bthk", x, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / 0.7
    scores[..., np.arange(6), np.arange(6)] = -np.inf  # no token attends to itself
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    expected = np.einsum("bhts,bshk->bthk", weights, v)
    expected = np.einsum("bthk,hkd->btd", expected, wo) + bo
    out, got = layer(x, x, return_attention_scores=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), weights, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, atol=1e-5)


def test_locality_attention_learns_its_temperature_and_refuses_masks():
    x, _ = _pair()
    layer = LocalitySelfAttention(2, 4)
    layer(x, x)
    assert float(keras.ops.convert_to_numpy(layer.tau)) == pytest.approx(2.0)
    assert any(w is layer.tau for w in layer.trainable_weights)
    with pytest.raises(ValueError, match="no attention_mask"):
        layer(x, x, attention_mask=np.ones((3, 6, 6), bool))


def test_small_data_vit_builds_saves_and_loads_and_gives_attention_maps(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.vit(16, spt=True, lsa=True, dim=16, depth=2, heads=2, mlp_dim=16)
    assert model.get_layer("tokens").output.shape == (None, 16, 16)  # 4 x 4 patches of 4 px, as without spt
    assert model.get_layer("patches").output.shape == (None, 16, 4 * 4 * 5)  # each patch of the film and 4 copies
    assert isinstance(model.get_layer("block1_attention"), LocalitySelfAttention)
    films = np.random.default_rng(1).random((2, 16, 16, 1)).astype(np.float32)
    path = tmp_path / "vit.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict(films, verbose=0), model.predict(films, verbose=0), atol=1e-6)
    maps = explain.attention_rollout(model, films)
    assert np.asarray(maps).shape[0] == 2
    tau = float(keras.ops.convert_to_numpy(model.get_layer("block1_attention").tau))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.train_on_batch(films, np.array([[0.0], [1.0]], np.float32))
    assert float(keras.ops.convert_to_numpy(model.get_layer("block1_attention").tau)) != tau  # learned


def test_the_first_patch_token_holds_the_pixels_of_the_first_patch():
    # With shifted patches, token 0 is projected from patch (0, 0) of the film and of its four shifted copies.
    model = models.vit(8, spt=True, dim=8, depth=1, heads=2, mlp_dim=8)
    films = np.random.default_rng(2).random((1, 8, 8, 1)).astype(np.float32)
    patches = keras.Model(model.input, model.get_layer("patches").output).predict(films, verbose=0)
    stacked = np.concatenate([films[0]] + [_shifted(films[0], dy, dx) for dy, dx in
                                           [(-2, -2), (-2, 2), (2, -2), (2, 2)]], axis=-1)
    np.testing.assert_array_equal(patches[0, 0], stacked[:4, :4].reshape(-1))
    np.testing.assert_array_equal(patches[0, 1], stacked[:4, 4:8].reshape(-1))
    np.testing.assert_array_equal(patches[0, 2], stacked[4:8, :4].reshape(-1))


def test_spt_needs_an_even_patch():
    with pytest.raises(ValueError, match="patch must be even"):
        models.vit(27, patch=3, spt=True)
