"""Sharded TFRecord files: a dataset too large for memory, read as a stream.

NIH ChestX-ray14 holds 112,120 films of 1024 x 1024 pixels, about 45 GB. A
pipeline that opens one PNG per image spends much of its time on file system
calls; one that loads everything into memory does not fit. TFRecord files
are the middle way: each *shard* is one file holding thousands of records
back to back, so the reader streams large sequential reads, several shards
at once, and shuffles by interleaving shards and then within a buffer.

One record is a ``tf.train.Example`` with three features:

``image``
    The encoded image (the original PNG or JPEG bytes when the split is on
    disk, so nothing is decoded or re-compressed; PNG for in-memory images).
``labels``
    The (K,) label vector as integers.
``patient``
    The patient identifier (empty when the source has none), so that a
    patient-level analysis is still possible after sharding.

A folder of shards also holds ``index.json``: the shard names, the number of
records in each, and the class names, so a reader needs nothing else.

Introduced in ``10_scaling_gpus.ipynb``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medkit.data.core import Split, Staging
from medkit.data.pipeline import finish

__all__ = ["write_tfrecords", "read_tfrecords", "records_index", "example", "parse"]

INDEX = "index.json"


def example(image_bytes: bytes, labels, patient: str = ""):
    """One record: a ``tf.train.Example`` of encoded image, labels and patient.

    Parameters
    ----------
    image_bytes : bytes
        A PNG or JPEG file's contents.
    labels : array-like of int, shape (K,)
    patient : str, default ""

    Returns
    -------
    tf.train.Example
        Serialise it with ``.SerializeToString()``.
    """
    import tensorflow as tf

    feature = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        "image": feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "labels": feature(int64_list=tf.train.Int64List(value=[int(v) for v in np.ravel(labels)])),
        "patient": feature(bytes_list=tf.train.BytesList(value=[patient.encode()])),
    }))


def _encoded(split: Split, i: int) -> bytes:
    """Image ``i`` of a split as encoded bytes: the file as it is, or a PNG."""
    if not split.in_memory:
        return Path(split.paths[i]).read_bytes()
    import tensorflow as tf

    return tf.io.encode_png(split.images[i][..., None]).numpy()


def write_tfrecords(split: Split, folder: Path | str, *, shards: int = 8, class_names=None,
                    verbose: bool = True) -> Path:
    """Write a split as ``shards`` TFRecord files and an ``index.json``.

    Parameters
    ----------
    split : Split
        In memory (images are PNG-encoded) or on disk (files are copied as
        they are, already compressed).
    folder : path
        Must not exist yet. The shards are written into a temporary sibling
        and moved into place at the end, so an interrupted run leaves no
        half-written folder.
    shards : int, default 8
        Number of files. Aim for shards of 100 MB or more on real data, and
        at least as many shards as the readers that will read them in
        parallel.
    class_names : sequence of str, optional
        Recorded in the index (default ``class0``, ``class1``, ...).
    verbose : bool, default True
        One line per shard written.

    Returns
    -------
    Path
        ``folder``.
    """
    import tensorflow as tf

    n, k = split.labels.shape
    if not 1 <= shards <= n:
        raise ValueError(f"shards must be between 1 and the number of images ({n}); got {shards!r}.")
    class_names = list(class_names) if class_names is not None else [f"class{j}" for j in range(k)]
    if len(class_names) != k:
        raise ValueError(f"class_names has {len(class_names)} names but the labels have {k} columns.")
    folder = Path(folder)
    names, counts = [], []
    with Staging(folder, is_dir=True) as tmp:
        for s, rows in enumerate(np.array_split(np.arange(n), shards)):
            name = f"shard-{s:05d}-of-{shards:05d}.tfrecord"
            with tf.io.TFRecordWriter(str(tmp / name)) as writer:
                for i in rows:
                    patient = str(split.patients[i]) if split.patients is not None else ""
                    writer.write(example(_encoded(split, i), split.labels[i], patient).SerializeToString())
            names.append(name)
            counts.append(len(rows))
            if verbose:
                size = (tmp / name).stat().st_size
                print(f"shard {s + 1}/{shards}: {len(rows)} images, {size / 1e6:.1f} MB", flush=True)
        index = {"shards": names, "counts": counts, "class_names": class_names}
        (tmp / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return folder


def records_index(folder: Path | str) -> dict:
    """The ``index.json`` of a folder written by :func:`write_tfrecords`."""
    path = Path(folder) / INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"no {INDEX} in {folder}: it is not a folder written by medkit.data.records.write_tfrecords "
            "(or the write did not finish). Write the shards again."
        )
    return json.loads(path.read_text())


def parse(serialized, num_classes: int):
    """Decode serialised records back to ``(image uint8 (H, W, 1), labels float32 (K,))``."""
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.FixedLenFeature([num_classes], tf.int64),
        "patient": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    record = tf.io.parse_single_example(serialized, spec)
    image = tf.io.decode_image(record["image"], channels=1, expand_animations=False)
    return image, tf.cast(record["labels"], tf.float32)


def read_tfrecords(folder: Path | str, *, image_size: int, batch_size: int = 64, training: bool = False,
                   augment: bool | None = None, seed: int = 0, cache: bool | str = False,
                   shuffle_buffer: int = 10_000, parallel_reads: int | None = None):
    """Stream a folder of shards as batches, like :func:`medkit.data.pipeline`.

    Parameters
    ----------
    folder : path
        Written by :func:`write_tfrecords`.
    image_size, batch_size, training, augment, seed
        As in :func:`medkit.data.pipeline`. When training, the order of the
        shards is shuffled each epoch too.
    cache : bool or str, default False
        Off by default: sharded data is for data that does not fit in memory.
        A file path caches decoded images on disk.
    shuffle_buffer : int, default 10000
        Images held for shuffling when training.
    parallel_reads : int, optional
        Shards read at once (default: tf.data chooses).

    Returns
    -------
    tf.data.Dataset
        Images float32 (B, image_size, image_size, 1) in [0, 1]; labels float32 (B, K).
    """
    import tensorflow as tf

    index = records_index(folder)
    files = [str(Path(folder) / name) for name in index["shards"]]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} shards listed in {INDEX} are missing, e.g. {missing[0]}.")
    num_classes = len(index["class_names"])
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=parallel_reads or tf.data.AUTOTUNE,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda r: parse(r, num_classes), num_parallel_calls=tf.data.AUTOTUNE)
    return finish(ds, image_size=image_size, batch_size=batch_size, training=training, augment=augment, seed=seed,
                  cache=cache, shuffle_buffer=min(shuffle_buffer, sum(index["counts"])))
