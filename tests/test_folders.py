"""Folder datasets (Kermany, NIH) read back what the phantom wrote, on the user's code path."""

import numpy as np
import pytest

from medkit import data
from medkit.data import detect_layout, load_kermany, load_nih, write_kermany, write_nih


def test_kermany_round_trip(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "kermany")
    ds = load_kermany(root)
    assert detect_layout(root) == "kermany"
    for name, split in ds.splits.items():
        original = tiny_phantom.splits[name]
        assert len(split) == len(original)
        assert split.labels.sum() == original.labels.sum()
        assert all(p.endswith(".jpeg") for p in split.paths)
        assert split.patients is not None and len(set(split.patients)) == len(split)
    # the same data through load() by path, as MEDKIT_DATASET=/path would do
    assert data.load(str(root)).name == "kermany"


def test_kermany_images_decode_to_what_was_written(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "k")
    ds = load_kermany(root)
    x, y = next(iter(data.pipeline(ds.test, image_size=32, batch_size=len(ds.test))))
    # files are listed NORMAL first, then PNEUMONIA: compare each class as a set of images
    originals = tiny_phantom.test.images.astype(np.float32) / 255
    for label in (0, 1):
        got = x.numpy()[y.numpy()[:, 0] == label, ..., 0]
        want = originals[tiny_phantom.test.labels[:, 0] == label]
        assert got.shape == want.shape
        assert np.abs(np.sort(got.mean(axis=(1, 2))) - np.sort(want.mean(axis=(1, 2)))).max() < 0.02  # JPEG loss


def test_kermany_missing_folder(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "k")
    for f in (root / "val" / "NORMAL").iterdir():
        f.unlink()
    (root / "val" / "NORMAL").rmdir()
    with pytest.raises(FileNotFoundError, match="NORMAL"):
        load_kermany(root)


def test_nih_round_trip_and_patient_level_split(tmp_path, tiny_phantom_all):
    root = write_nih(tiny_phantom_all, tmp_path / "nih", images_per_patient=3)
    ds = load_nih(root, val_fraction=0.25, seed=0)
    assert ds.task == "multi-label" and len(ds.class_names) == 14
    assert len(ds.test) == 20 and len(ds.train) + len(ds.val) == 80
    train, val, test = (set(s.patients) for s in (ds.train, ds.val, ds.test))
    assert not train & val and not train & test and not val & test, "a patient on two sides leaks"
    # the phantom's five findings land in the right NIH columns
    for finding in ("pneumonia", "nodule", "cardiomegaly", "effusion", "pneumothorax"):
        col = ds.class_names.index(finding)
        src = tiny_phantom_all.class_names.index(finding)
        assert ds.test.labels[:, col].sum() == tiny_phantom_all.test.labels[:, src].sum()
    x, y = next(iter(data.pipeline(ds.val, image_size=32, batch_size=4)))
    assert x.shape[1:] == (32, 32, 1) and y.shape[1] == 14


def test_nih_missing_image_is_reported(tmp_path, tiny_phantom_all):
    root = write_nih(tiny_phantom_all, tmp_path / "nih")
    next((root / "images").glob("*.png")).unlink()
    with pytest.raises(FileNotFoundError, match="listed images are missing"):
        load_nih(root)


def test_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="Kermany layout"):
        detect_layout(tmp_path)


def test_writers_refuse_to_overwrite_and_leave_nothing_on_failure(tmp_path, tiny_phantom, tiny_phantom_all):
    target = tmp_path / "k"
    write_kermany(tiny_phantom, target)
    with pytest.raises(FileExistsError):
        write_kermany(tiny_phantom, target)
    with pytest.raises(ValueError, match="binary"):
        write_kermany(tiny_phantom_all, tmp_path / "k2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"], "no partial output may remain"
