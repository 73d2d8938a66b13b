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


def test_kermany_splits_are_listed_in_a_seeded_order_not_class_by_class(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "kermany")
    first, again, other = load_kermany(root), load_kermany(root), load_kermany(root, seed=1)
    labels = first.train.labels[:, 0]
    assert 0 < labels[: len(labels) // 2].sum() < len(labels) // 2  # both classes among the first half
    assert (first.train.paths == again.train.paths).all() and (first.train.paths != other.train.paths).any()
    assert sorted(first.train.paths) == sorted(other.train.paths)
    for split in first.splits.values():  # each path keeps its label and patient
        assert all(("PNEUMONIA" in p) == bool(y) for p, y in zip(split.paths, split.labels[:, 0]))


def test_kermany_images_decode_to_what_was_written(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "k")
    ds = load_kermany(root)
    x, y = next(iter(data.pipeline(ds.test, image_size=32, batch_size=len(ds.test))))
    # compare each class as a set of images (the order of the films is not the order written)
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


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_unreadable_images_are_named_before_training(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "k")
    broken = sorted((root / "train" / "PNEUMONIA").iterdir())[0]
    _truncate(broken)
    (root / "val" / "NORMAL" / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"2 image file\(s\) under .* cannot be read: .*" + broken.name):
        load_kermany(root)
    ds = load_kermany(root, skip_unreadable=True)
    assert len(ds.train) == len(tiny_phantom.train) - 1 and len(ds.val) == len(tiny_phantom.val)
    assert ds.info["unreadable"] == sorted([str(broken), str(root / "val" / "NORMAL" / "notes.png")])
    assert str(broken) not in ds.train.paths


def test_an_unreadable_image_found_at_first_read_is_named(tmp_path, tiny_phantom):
    from medkit import models, train

    root = write_kermany(tiny_phantom, tmp_path / "k")
    broken = sorted((root / "train" / "NORMAL").iterdir())[2]
    broken.write_bytes(b"\x89PNG but not really")
    ds = load_kermany(root, check=False)
    assert not ds.info["checked"]
    with pytest.raises(ValueError, match=r"1 image file\(s\) could not be decoded: .*" + broken.name):
        train.fit(lambda: models.small_cnn(32, width=4), ds, epochs=1, batch_size=16, verbose=False)
    with pytest.raises(ValueError, match="could not be decoded"):
        train.predict(models.small_cnn(32, width=4), ds.train)


def test_the_kaggle_archive_is_found_one_level_down(tmp_path, tiny_phantom):
    outer = tmp_path / "chest_xray"
    outer.mkdir()
    (outer / "__MACOSX").mkdir()
    write_kermany(tiny_phantom, outer / "chest_xray")
    ds = data.load(str(outer))
    assert ds.name == "kermany" and ds.info["found_in"] == str(outer / "chest_xray")
    assert detect_layout(outer) == "kermany"
    write_kermany(tiny_phantom, outer / "copy")
    with pytest.raises(ValueError, match="holds several datasets"):
        detect_layout(outer)


def _rewrite_lists(root, move):
    train_val = (root / "train_val_list.txt").read_text().split()
    test = (root / "test_list.txt").read_text().split()
    train_val, test = move(train_val, test)
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")


def test_nih_lists_that_share_images_or_patients_are_refused(tmp_path, tiny_phantom_all):
    root = write_nih(tiny_phantom_all, tmp_path / "nih", images_per_patient=3)
    _rewrite_lists(root, lambda tv, te: (tv, te + tv[:2]))
    with pytest.raises(ValueError, match=r"2 image\(s\) are in both train_val_list.txt and test_list.txt"):
        load_nih(root)
    root = write_nih(tiny_phantom_all, tmp_path / "nih2", images_per_patient=3)
    # Move one follow-up film of a training patient with several films to the test list.
    rows = (root / "Data_Entry_2017.csv").read_text().splitlines()[1:]
    by_patient = {}
    for row in rows:
        file, _, _, patient = row.split(",")
        by_patient.setdefault(patient, []).append(file)
    train_val = set((root / "train_val_list.txt").read_text().split())
    film = next(files[-1] for files in by_patient.values() if len(files) > 1 and files[0] in train_val)
    _rewrite_lists(root, lambda tv, te: ([n for n in tv if n != film], te + [film]))
    with pytest.raises(ValueError, match=r"1 patient\(s\) have films in both"):
        load_nih(root)


def test_a_folder_read_into_memory_matches_its_pipeline(tmp_path, tiny_phantom):
    ds = load_kermany(write_kermany(tiny_phantom, tmp_path / "k")).to_memory(32)
    assert ds.train.in_memory and ds.train.images.shape == (60, 32, 32) and ds.train.images.dtype == np.uint8
    assert ds.image_size == 32 and ds.train.patients is not None
    x, _ = next(iter(data.pipeline(ds.test, image_size=32, batch_size=20)))
    original = load_kermany(tmp_path / "k")
    y, _ = next(iter(data.pipeline(original.test, image_size=32, batch_size=20)))
    assert np.abs(x.numpy() - y.numpy()).max() <= 0.5 / 255 + 1e-6  # only the rounding to 8 bits
    assert tiny_phantom.to_memory() is not tiny_phantom and tiny_phantom.to_memory().train is tiny_phantom.train
