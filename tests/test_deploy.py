"""medkit.deploy: a Keras model as a LiteRT flat buffer, run from many threads at once."""

import concurrent.futures
import threading

import keras
import numpy as np
import pytest

from medkit import deploy, models


@pytest.fixture(scope="module")
def cnn_and_films():
    keras.utils.set_random_seed(0)
    model = models.small_cnn(16, width=4)
    films = np.random.default_rng(0).random((24, 16, 16, 1), dtype=np.float32)
    return model, films, model.predict(films, verbose=0)


@pytest.fixture(scope="module")
def flat_buffers(cnn_and_films):
    model, films, _ = cnn_and_films
    return {"float32": deploy.to_litert(model, "float32"),
            "int8": deploy.to_litert(model, "int8", representative=films[:16])}


def test_float32_gives_the_keras_answers(cnn_and_films, flat_buffers):
    _, films, expected = cnn_and_films
    runner = deploy.LiteRT(flat_buffers["float32"])
    assert runner.input_shape == (16, 16, 1) and runner.dtype == np.float32
    assert np.abs(runner.predict(films) - expected).max() < 1e-5


def test_int8_quantises_the_film_and_dequantises_the_probability(cnn_and_films, flat_buffers):
    _, films, expected = cnn_and_films
    runner = deploy.LiteRT(flat_buffers["int8"])
    assert runner.dtype == np.int8
    p = runner.predict(films)
    assert p.dtype == np.float32 and p.shape == expected.shape and ((0 <= p) & (p <= 1)).all()
    assert np.abs(p - expected).max() < 0.05  # 8-bit activations: close to the float model, not equal


def test_many_threads_get_the_answers_one_thread_gets(cnn_and_films, flat_buffers):
    _, films, _ = cnn_and_films
    runner = deploy.LiteRT(flat_buffers["int8"])
    alone = runner.predict(films)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda i: runner.predict(films[i:i + 1])[0], range(len(films))))
    assert np.array_equal(np.stack(together), alone)


def test_an_empty_batch_gives_no_answers(flat_buffers):
    assert deploy.LiteRT(flat_buffers["float32"]).predict(np.zeros((0, 16, 16, 1))).shape == (0, 1)


def test_bad_input_is_refused_with_what_was_expected(cnn_and_films, flat_buffers):
    model, films, _ = cnn_and_films
    runner = deploy.LiteRT(flat_buffers["float32"])
    with pytest.raises(ValueError, match=r"shape \(16, 16, 1\).*channel axis"):
        runner.predict(films[..., 0])
    with pytest.raises(ValueError, match="precision must be one of"):
        deploy.to_litert(model, "int4")
    with pytest.raises(ValueError, match="representative"):
        deploy.to_litert(model, "int8")
    with pytest.raises(ValueError, match="representative"):
        deploy.to_litert(model, "float16", representative=films)
    with pytest.raises(TypeError, match="flat buffer"):
        deploy.LiteRT("model.tflite")


def test_a_tflite_file_loads(tmp_path, cnn_and_films, flat_buffers):
    _, films, _ = cnn_and_films
    (tmp_path / "m.tflite").write_bytes(flat_buffers["float32"])
    assert np.array_equal(deploy.LiteRT.load(tmp_path / "m.tflite").predict(films),
                          deploy.LiteRT(flat_buffers["float32"]).predict(films))


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_a_pool_of_interpreters_gives_one_interpreters_answers_bit_for_bit(cnn_and_films, flat_buffers, precision):
    _, films, _ = cnn_and_films
    alone = deploy.LiteRT(flat_buffers[precision]).predict(films)
    pool = deploy.LiteRT(flat_buffers[precision], interpreters=3)
    assert pool.interpreters == 3 and pool.input_shape == (16, 16, 1)
    with concurrent.futures.ThreadPoolExecutor(8) as threads:
        together = list(threads.map(lambda i: pool.predict(films[i:i + 1])[0], list(range(len(films))) * 4))
    assert np.array_equal(np.stack(together), np.concatenate([alone] * 4))


def test_each_interpreter_serves_one_call_at_a_time(cnn_and_films, flat_buffers):
    _, films, _ = cnn_and_films
    runner = deploy.LiteRT(flat_buffers["int8"], interpreters=2)
    held = runner._idle.get()  # a call in progress holds one interpreter: the other still answers
    assert runner.predict(films[:2]).shape == (2, 1)
    second = runner._idle.get()  # now both are lent: a call waits until one comes back
    waiting = threading.Thread(target=runner.predict, args=(films[:1],))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive(), "a call ran on an interpreter that another call held"
    runner._idle.put(held)
    waiting.join(60)
    assert not waiting.is_alive()
    runner._idle.put(second)
    assert runner._idle.qsize() == 2


@pytest.mark.parametrize("interpreters", [0, -1, 1.5, True, "2"])
def test_a_pool_size_must_be_a_positive_whole_number(flat_buffers, interpreters):
    with pytest.raises(ValueError, match="interpreters is how many films"):
        deploy.LiteRT(flat_buffers["float32"], interpreters=interpreters)
