"""Folder datasets (Kermany, NIH) read back what the phantom wrote, on the user's code path."""

import os

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


# Files the pipeline cannot decode, caught when the folder is loaded (issue 30) -------------------------------------

def _decodes_in_tensorflow(path) -> bool:
    import tensorflow as tf

    try:
        tf.io.decode_image(tf.io.read_file(str(path)), channels=1, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        return False
    return True


def _first_image(root, split="train", cls="NORMAL"):
    return sorted((root / split / cls).iterdir())[0]


def test_a_cmyk_jpeg_is_named_at_load_time_with_how_to_convert_it(tmp_path, tiny_phantom):
    from PIL import Image

    root = write_kermany(tiny_phantom, tmp_path / "k")
    film = _first_image(root)
    Image.open(film).convert("CMYK").save(film)
    assert not _decodes_in_tensorflow(film), "TensorFlow cannot read it: without the check, training fails there"
    with pytest.raises(ValueError, match=rf"1 image file\(s\) .* cannot be read: {film} \(a CMYK JPEG.*convert\('L'\)"):
        load_kermany(root)
    ds = load_kermany(root, skip_unreadable=True)
    assert ds.info["unreadable"] == [str(film)] and len(ds.train) == len(tiny_phantom.train) - 1
    Image.open(film).convert("L").save(film)  # the conversion the message gives
    assert len(load_kermany(root).train) == len(tiny_phantom.train)


@pytest.mark.parametrize("kind", ["GIF", "BMP", "TIFF", "WEBP"])
def test_an_image_of_another_format_named_png_is_named_at_load_time(tmp_path, tiny_phantom_all, kind):
    from PIL import Image

    root = write_nih(tiny_phantom_all, tmp_path / "nih")
    film = sorted((root / "images").iterdir())[0]
    Image.open(film).save(film, format=kind)
    assert not _decodes_in_tensorflow(film)
    with pytest.raises(ValueError, match=rf"{film.name} \(a {kind} image, not a PNG or JPEG whatever its name says"):
        load_nih(root)


def test_a_file_name_that_is_not_utf8_is_named_even_without_the_check(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "k")
    film = _first_image(root)
    folder = os.fsencode(film.parent)
    try:
        os.rename(os.fsencode(film), folder + b"/caf\xe9_IM-0001-0001.jpeg")  # Latin-1 'é', as an old archive names it
    except OSError as err:
        pytest.skip(f"this file system refuses names that are not UTF-8 ({err})")
    name = os.fsdecode(folder + b"/caf\xe9_IM-0001-0001.jpeg")
    import tensorflow as tf

    with pytest.raises(ValueError, match="Error converting unicode string"):  # what TensorFlow said: no file named
        tf.constant([name])
    for check in (True, False):
        with pytest.raises(ValueError, match=r"caf\\xe9_IM-0001-0001.jpeg \(its name is not valid UTF-8.*rename it"):
            load_kermany(root, check=check)
    ds = load_kermany(root, skip_unreadable=True)
    assert name not in ds.train.paths and len(ds.train) == len(tiny_phantom.train) - 1
    x, _ = next(iter(data.pipeline(ds.train, image_size=32, batch_size=len(ds.train))))  # nothing left to fail
    assert x.shape[0] == len(ds.train)


def test_images_tensorflow_reads_are_not_refused_and_read_right(tmp_path, tiny_phantom_all):
    from PIL import Image

    root = write_nih(tiny_phantom_all, tmp_path / "nih")
    files = sorted((root / "images").iterdir())
    originals = {f.name: np.asarray(Image.open(f)) for f in files[:4]}
    Image.fromarray(originals[files[0].name].astype(np.uint16) * 257).save(files[0])  # 16-bit grey
    Image.fromarray(originals[files[1].name]).convert("P").save(files[1])  # palette
    Image.fromarray(np.stack([originals[files[2].name]] * 3 + [np.full_like(originals[files[2].name], 255)], -1)).save(
        files[2])  # RGBA
    Image.fromarray(originals[files[3].name]).save(files[3], format="JPEG", quality=100)  # a JPEG named .png
    ds = load_nih(root)
    assert sum(len(s) for s in ds.splits.values()) == len(files)
    import tensorflow as tf

    def grey(f):
        return tf.io.decode_image(tf.io.read_file(str(f)), channels=1, expand_animations=False).numpy()[..., 0]

    assert np.array_equal(grey(files[0]), originals[files[0].name])  # 16 bits scaled back to 8, not clipped
    assert np.array_equal(grey(files[2]), originals[files[2].name])
    palette = np.asarray(Image.open(files[1]).convert("L"), int)  # the palette's own rounding, as Pillow sees it
    assert np.abs(grey(files[1]).astype(int) - palette).max() <= 1
    # the same picture (TensorFlow's fast integer DCT differs from the original by a few grey levels)
    assert np.corrcoef(grey(files[3]).ravel(), originals[files[3].name].ravel())[0, 1] > 0.99


def test_truncated_and_empty_pngs_are_named(tmp_path, tiny_phantom_all):
    root = write_nih(tiny_phantom_all, tmp_path / "nih")
    files = sorted((root / "images").iterdir())
    _truncate(files[0])
    files[1].write_bytes(b"")
    with pytest.raises(ValueError, match=r"2 image file\(s\).*" + files[0].name + ".*Truncated") as refused:
        load_nih(root)
    assert files[1].name in str(refused.value)


def test_macos_metadata_files_beside_the_images_are_not_taken_for_images(tmp_path, tiny_phantom):
    root = write_kermany(tiny_phantom, tmp_path / "k")
    film = _first_image(root)
    (film.parent / f"._{film.name}").write_bytes(b"\0\5\26\7AppleDouble")
    ds = load_kermany(root)
    assert len(ds.train) == len(tiny_phantom.train) and not any("/._" in p for p in ds.train.paths)


def test_an_nih_images_folder_reached_through_a_symbolic_link_is_found(tmp_path, tiny_phantom_all):
    root = write_nih(tiny_phantom_all, tmp_path / "nih")
    elsewhere = tmp_path / "disk2"
    elsewhere.mkdir()
    (root / "images").rename(elsewhere / "images")
    (root / "images").symlink_to(elsewhere / "images", target_is_directory=True)
    (elsewhere / "images" / "loop").symlink_to(root, target_is_directory=True)  # a link back up must not loop
    ds = load_nih(root)
    assert sum(len(s) for s in ds.splits.values()) == 100
    assert all(p.startswith(str(root / "images")) for p in ds.test.paths)
    x, _ = next(iter(data.pipeline(ds.test, image_size=32, batch_size=4)))
    assert x.shape == (4, 32, 32, 1)


def test_an_nih_csv_and_lists_saved_with_a_byte_order_mark_are_read(tmp_path, tiny_phantom_all):
    plain = load_nih(write_nih(tiny_phantom_all, tmp_path / "plain"))
    root = write_nih(tiny_phantom_all, tmp_path / "bom")
    for name in ("Data_Entry_2017.csv", "train_val_list.txt", "test_list.txt"):
        text = (root / name).read_text()
        (root / name).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())  # as Excel saves CSV UTF-8
    ds = load_nih(root)
    for name, split in ds.splits.items():
        assert np.array_equal(split.labels, plain.splits[name].labels)
        assert [os.path.basename(p) for p in split.paths] == [os.path.basename(p) for p in plain.splits[name].paths]


def test_an_nih_csv_that_is_not_utf8_or_lacks_columns_says_so(tmp_path, tiny_phantom_all):
    root = write_nih(tiny_phantom_all, tmp_path / "nih")
    csv_path = root / "Data_Entry_2017.csv"
    text = csv_path.read_text()
    csv_path.write_bytes(text.replace("Patient ID", "Patient Nr").encode())
    with pytest.raises(ValueError, match=r"lacks the columns Patient ID; its first line names 'Image Index'"):
        load_nih(root)
    csv_path.write_bytes(text.encode() + "00000999_000.png,Hernia,0,Müller\n".encode("latin-1"))
    with pytest.raises(ValueError, match="Data_Entry_2017.csv is not UTF-8 text"):
        load_nih(root)
