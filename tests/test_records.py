"""Sharded TFRecords give back exactly what was written, and fail clearly."""

import json

import numpy as np
import pytest

from medkit import data
from medkit.data import load_nih, records, write_nih


def _all_batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_in_memory_split_round_trip(tmp_path, tiny_phantom):
    split = tiny_phantom.train
    folder = records.write_tfrecords(split, tmp_path / "rec", shards=3, class_names=tiny_phantom.class_names,
                                     verbose=False)
    index = records.records_index(folder)
    assert index["counts"] == [len(r) for r in np.array_split(np.arange(len(split)), 3)]
    assert index["class_names"] == list(tiny_phantom.class_names)
    size = split.images.shape[1]
    x, y = _all_batches(records.read_tfrecords(folder, image_size=size, batch_size=7))
    # PNG is lossless and the size is unchanged: the pixels come back exactly, in order
    np.testing.assert_array_equal(np.round(x[..., 0] * 255).astype(np.uint8), split.images)
    np.testing.assert_array_equal(y, split.labels.astype(np.float32))


def test_nih_folder_to_shards_keeps_files_labels_and_patients(tmp_path, tiny_phantom_all):
    ds = load_nih(write_nih(tiny_phantom_all, tmp_path / "nih"), val_fraction=0.25)
    folder = records.write_tfrecords(ds.test, tmp_path / "rec", shards=2, class_names=ds.class_names, verbose=False)
    import tensorflow as tf

    raw = [tf.train.Example.FromString(r.numpy())
           for name in records.records_index(folder)["shards"] for r in tf.data.TFRecordDataset(str(folder / name))]
    assert len(raw) == len(ds.test)
    for i, ex in enumerate(raw):
        f = ex.features.feature
        assert f["image"].bytes_list.value[0] == open(ds.test.paths[i], "rb").read()  # the file, not re-encoded
        assert list(f["labels"].int64_list.value) == ds.test.labels[i].tolist()
        assert f["patient"].bytes_list.value[0].decode() == ds.test.patients[i]
    x_rec, y_rec = _all_batches(records.read_tfrecords(folder, image_size=32, batch_size=8))
    x_png, y_png = _all_batches(data.pipeline(ds.test, image_size=32, batch_size=8))
    np.testing.assert_allclose(x_rec, x_png, atol=1e-6)
    np.testing.assert_array_equal(y_rec, y_png)


def test_training_reader_shuffles_but_keeps_every_image(tmp_path, tiny_phantom):
    split = tiny_phantom.train
    folder = records.write_tfrecords(split, tmp_path / "rec", shards=4, verbose=False)
    x, y = _all_batches(records.read_tfrecords(folder, image_size=32, batch_size=5, training=True, augment=False))
    means = x.mean(axis=(1, 2, 3))
    want = split.images.astype(np.float32).mean(axis=(1, 2)) / 255
    assert not np.allclose(means, want), "the training order should be shuffled"
    np.testing.assert_allclose(np.sort(means), np.sort(want), atol=1e-5)
    assert y.sum() == split.labels.sum()


def test_existing_folder_and_bad_arguments_are_refused(tmp_path, tiny_phantom):
    split = tiny_phantom.val
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        records.write_tfrecords(split, tmp_path / "taken", verbose=False)
    with pytest.raises(ValueError, match="shards must be between 1"):
        records.write_tfrecords(split, tmp_path / "a", shards=len(split) + 1, verbose=False)
    with pytest.raises(ValueError, match="class_names has 2 names"):
        records.write_tfrecords(split, tmp_path / "b", class_names=["a", "b"], verbose=False)
    with pytest.raises(FileNotFoundError, match="index.json"):
        records.read_tfrecords(tmp_path / "taken", image_size=32)


def test_interrupted_write_leaves_nothing(tmp_path, tiny_phantom, monkeypatch):
    encoded, calls = records._encoded, []

    def failing(split, i):
        calls.append(i)
        if len(calls) == 45:  # in the second shard
            raise OSError("disk full")
        return encoded(split, i)

    monkeypatch.setattr(records, "_encoded", failing)
    with pytest.raises(OSError, match="disk full"):
        records.write_tfrecords(tiny_phantom.train, tmp_path / "rec", shards=2, verbose=False)
    assert list(tmp_path.iterdir()) == [], "no shard, no index and no temporary folder may remain"


def test_missing_shard_is_reported(tmp_path, tiny_phantom):
    folder = records.write_tfrecords(tiny_phantom.val, tmp_path / "rec", shards=2, verbose=False)
    name = json.loads((folder / "index.json").read_text())["shards"][1]
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match="1 shards listed"):
        records.read_tfrecords(folder, image_size=32)
