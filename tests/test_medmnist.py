"""MedMNIST: file names and checksums, downloads over a local server, validation of local files."""

import hashlib

import numpy as np
import pytest

from medkit.data import medmnist, write_medmnist


def _arrays(n=(6, 2, 2), size=28, k=1):
    rng = np.random.default_rng(0)
    out = {}
    for split, count in zip(("train", "val", "test"), n):
        out[f"{split}_images"] = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
        out[f"{split}_labels"] = rng.integers(0, 2, (count, k), dtype=np.uint8)
    return out


def test_official_names_urls_and_checksums():
    assert medmnist.filename("pneumoniamnist") == "pneumoniamnist.npz"
    assert medmnist.url("chestmnist", 64) == "https://zenodo.org/records/10519652/files/chestmnist_64.npz?download=1"
    assert medmnist.md5("pneumoniamnist", 28) == "28209eda62fecd6e6a2d98b1501bb15f"
    assert all(set(sizes) == {28, 64, 128, 224} for sizes in medmnist.FILES.values())
    assert all(len(h) == 32 for sizes in medmnist.FILES.values() for h in sizes.values())


@pytest.mark.parametrize("name, size, message", [("bloodmnist", 28, "unknown MedMNIST"), ("chestmnist", 32, "sizes")])
def test_unknown_dataset_or_size(name, size, message):
    with pytest.raises(ValueError, match=message):
        medmnist.url(name, size)


def test_local_file_is_validated_and_loaded(tmp_path, tiny_phantom):
    path = write_medmnist(tiny_phantom, tmp_path / "phantom.npz")
    ds = medmnist.load("pneumoniamnist", path=path)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (60, 20, 20)
    assert np.array_equal(ds.train.images, tiny_phantom.train.images)
    assert ds.task == "binary" and ds.class_names == ("pneumonia",)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("val_labels"), "lacks the keys val_labels"),
        (lambda a: a.update(train_images=a["train_images"].astype(np.float32)), "should be uint8"),
        (lambda a: a.update(test_images=a["test_images"][:, :, :20]), r"shape \(N, H, H\)"),
        (lambda a: a.update(train_labels=a["train_labels"][:3]), "one row per image"),
        (lambda a: a.update(val_labels=a["val_labels"] + 2), "should be 0 or 1"),
        (lambda a: a.update(val_images=a["val_images"][:, :14, :14]), "other splits are 28 px"),
    ],
)
def test_bad_local_files_say_what_is_wrong(tmp_path, change, message):
    arrays = _arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        medmnist.load_npz(tmp_path / "bad.npz")


def test_wrong_class_count_for_the_dataset(tmp_path):
    np.savez(tmp_path / "x.npz", **_arrays(k=3))
    with pytest.raises(ValueError, match="chestmnist has 14 classes"):
        medmnist.load_npz(tmp_path / "x.npz", "chestmnist")


def test_truncated_file_is_reported(tmp_path):
    np.savez(tmp_path / "good.npz", **_arrays())
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        medmnist.load_npz(tmp_path / "cut.npz")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no file at"):
        medmnist.load_npz("/nonexistent/pneumoniamnist.npz")


@pytest.fixture
def served_file(http_server, monkeypatch, tmp_path):
    """A MedMNIST-format file on the local server, registered with its MD5."""
    folder, base = http_server
    np.savez(folder / "pneumoniamnist.npz", **_arrays())
    digest = hashlib.md5((folder / "pneumoniamnist.npz").read_bytes()).hexdigest()
    monkeypatch.setattr(medmnist, "RECORD", base)
    monkeypatch.setitem(medmnist.FILES, "pneumoniamnist", {**medmnist.FILES["pneumoniamnist"], 28: digest})
    return folder / "pneumoniamnist.npz"


def test_download_checks_md5_and_caches(served_file, tmp_path):
    cache = tmp_path / "cache"
    path = medmnist.fetch("pneumoniamnist", cache=cache, progress=False)
    assert path == cache / "pneumoniamnist.npz" and path.read_bytes() == served_file.read_bytes()
    served_file.unlink()  # a second call uses the cache, not the network
    assert medmnist.fetch("pneumoniamnist", cache=cache, progress=False) == path
    ds = medmnist.load("pneumoniamnist", cache=cache, progress=False)
    assert len(ds.train) == 6


def test_corrupt_download_is_discarded(served_file, tmp_path):
    data = served_file.read_bytes()
    served_file.write_bytes(data[: len(data) // 2])  # the server sends a truncated file
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="does not match the official MD5") as err:
        medmnist.fetch("pneumoniamnist", cache=cache, progress=False)
    assert str(cache / "pneumoniamnist.npz") in str(err.value)
    assert not list(cache.glob("*")), "a failed download must leave nothing in the cache"


def test_offline_error_names_url_md5_and_destination(monkeypatch, tmp_path):
    monkeypatch.setattr(medmnist, "RECORD", "http://127.0.0.1:9/files")  # port 9: nothing listens
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError) as err:
        medmnist.fetch("pneumoniamnist", cache=cache, progress=False)
    message = str(err.value)
    assert "http://127.0.0.1:9/files/pneumoniamnist.npz" in message
    assert "28209eda62fecd6e6a2d98b1501bb15f" in message
    assert str(cache / "pneumoniamnist.npz") in message and "MEDKIT_DATASET" in message
    assert not list(cache.glob("*"))


def test_real_pneumoniamnist_official_split(shared_npz):
    ds = medmnist.load("pneumoniamnist", path=shared_npz)
    counts = {name: (len(s), int(s.labels.sum())) for name, s in ds.splits.items()}
    assert counts == {"train": (4708, 3494), "val": (524, 389), "test": (624, 390)}
    assert ds.train.images.shape[1:] == (28, 28) and ds.train.images.dtype == np.uint8


@pytest.mark.parametrize("bad, shown", [
    (0.5, "0.5"), (np.nan, "nan"), (2, "2"), (-1, "-1"), (np.inf, "inf"),
])
def test_labels_that_are_not_0_or_1_are_refused_not_rounded(tmp_path, bad, shown):
    arrays = _arrays()
    labels = arrays["val_labels"].astype(np.float64)
    labels[1, 0] = bad
    arrays["val_labels"] = labels
    path = tmp_path / "soft.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as refused:
        medmnist.load_npz(path)
    message = str(refused.value)
    assert str(path) in message and "val_labels" in message  # the file and the key
    assert f"1 of {labels.size} values are not: {shown}" in message  # the bad values
    assert "decide each finding" in message  # what to do
    from medkit import data

    with pytest.raises(ValueError, match="val_labels should be 0 or 1"):  # the path MEDKIT_DATASET takes too
        data.load(str(path))


def test_labels_stored_as_floats_or_booleans_load_when_they_are_0_or_1(tmp_path):
    arrays = _arrays()
    arrays["train_labels"] = arrays["train_labels"].astype(np.float32)
    arrays["test_labels"] = arrays["test_labels"].astype(bool)
    np.savez(tmp_path / "ok.npz", **arrays)
    ds = medmnist.load("pneumoniamnist", path=tmp_path / "ok.npz")
    assert np.array_equal(ds.train.labels, _arrays()["train_labels"]) and ds.train.labels.dtype == np.uint8
    assert np.array_equal(ds.test.labels, _arrays()["test_labels"])


def test_labels_that_are_text_or_a_split_without_images_are_refused(tmp_path):
    arrays = _arrays()
    arrays["train_labels"] = arrays["train_labels"].astype(str)
    np.savez(tmp_path / "text.npz", **arrays)
    with pytest.raises(ValueError, match=r"train_labels should be numbers 0 or 1; they are of type <U"):
        medmnist.load_npz(tmp_path / "text.npz")
    np.savez(tmp_path / "empty.npz", **_arrays(n=(6, 0, 2)))
    with pytest.raises(ValueError, match=r"empty.npz: val_images holds no images"):
        medmnist.load_npz(tmp_path / "empty.npz")
