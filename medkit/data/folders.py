"""Image folders read lazily: the Kermany layout and NIH ChestX-ray14.

Full-resolution chest X-ray collections do not fit in a laptop's memory, so
these loaders only list the files and their labels; :func:`medkit.data.pipeline`
reads and decodes them batch by batch with ``tf.data``.

Kermany et al. (2018), the source of PneumoniaMNIST::

    root/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg

NIH ChestX-ray14 (Wang et al., 2017), the source of ChestMNIST::

    root/Data_Entry_2017.csv         one row per image: file, labels, patient
    root/train_val_list.txt          official training images
    root/test_list.txt               official test images
    root/images*/.../*.png           the images (any depth below root, through symbolic links too)

The csv and list files may be saved with a byte-order mark and Windows line
ends (as a spreadsheet saves "CSV UTF-8"); they are read all the same.

The official NIH split keeps every patient on one side; the validation split
carved out of ``train_val_list.txt`` here is drawn by patient too, so no
patient's images leak between training and validation. A folder whose test
list shares an image or a patient with its training list is refused: that
is leakage, however it came about.

Both loaders read every image once before returning (:func:`find_unreadable`),
so a truncated download, a stray non-image file, or an image TensorFlow's
decoder does not read (a CMYK JPEG; a GIF, BMP, TIFF or WebP file named
``.png`` or ``.jpeg``) is named, with what to do, before training starts
rather than failing deep inside TensorFlow; ``skip_unreadable=True`` leaves
such files out and reports how many. ``check=False`` defers the check to the
first read (:func:`medkit.train.fit` then names the files), except for file
names that are not valid UTF-8, which TensorFlow cannot take at all: those
are always named at once. macOS metadata files (``._name.jpeg``) are not
images and are not listed.

The Kaggle download of the Kermany set unpacks as ``chest_xray/chest_xray/``
(and a ``__MACOSX`` folder); :func:`detect_layout` looks one level down.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from medkit.data.core import Dataset, Split
from medkit.data.medmnist import CLASS_NAMES

__all__ = ["load_kermany", "load_nih", "detect_layout", "find_layout_root", "find_unreadable", "NIH_LABELS",
           "kermany_patient"]

#: NIH's spelling of the 14 findings, in ChestMNIST column order.
NIH_LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

_IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_NIH_CSV = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")


def _layout_here(root: Path) -> str | None:
    if any((root / name).is_file() for name in _NIH_CSV):
        return "nih"
    if (root / "train" / "NORMAL").is_dir() or (root / "train" / "PNEUMONIA").is_dir():
        return "kermany"
    return None


def find_layout_root(root: Path | str) -> Path:
    """The folder holding the dataset: ``root`` itself, or its one subfolder in a known layout.

    Archives often wrap the data in a folder of the same name: the Kaggle copy
    of the Kermany set unpacks as ``chest_xray/chest_xray/train/...`` beside a
    ``__MACOSX`` folder. Hidden folders and ``__MACOSX`` are ignored.

    Raises ValueError when neither ``root`` nor exactly one subfolder holds a
    known layout, naming the candidates found.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; MEDKIT_DATASET must name a .npz file or a dataset folder.")
    if _layout_here(root):
        return root
    below = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))
                   and _layout_here(p))
    if len(below) == 1:
        return below[0]
    if len(below) > 1:
        raise ValueError(f"{root} holds several datasets: {', '.join(str(p) for p in below)}; "
                         "point MEDKIT_DATASET at the one you mean.")
    raise ValueError(
        f"{root} is in no layout the kit knows, nor is any folder directly inside it. Expected either the Kermany "
        "layout (train/, val/, test/ each with NORMAL/ and PNEUMONIA/ folders of images) or NIH ChestX-ray14 "
        "(Data_Entry_2017.csv, train_val_list.txt, test_list.txt and the images). See datasets/README.md."
    )


def detect_layout(root: Path | str) -> str:
    """``"kermany"`` or ``"nih"``, from the files in ``root`` or in its one dataset subfolder.

    Raises ValueError describing both layouts when neither matches.
    """
    return _layout_here(find_layout_root(root))


def _shown(path) -> str:
    """A path as it can be printed: bytes of a file name that are not UTF-8 are shown as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _bad_name(path: str) -> str | None:
    """None if TensorFlow can take the file's name, else why not (one line)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return ("its name is not valid UTF-8, and TensorFlow takes file names as UTF-8 text: rename it, e.g. "
                "with convmv -f latin1 -t utf8 --notest, or a name in plain ASCII")
    return None


def _readable(path: str) -> str | None:
    """None if the image decodes as the pipeline will decode it, else why not and what to do (one line).

    The pipeline decodes with ``tf.io.decode_image``, which reads PNG and JPEG
    files (by their content, whatever their name) but not a GIF, BMP, TIFF or
    WebP file with a ``.png`` or ``.jpeg`` name as one grey channel, nor a
    CMYK JPEG; those are named here, with the conversion that fixes them.
    """
    from PIL import Image, UnidentifiedImageError

    bad = _bad_name(path)
    if bad:
        return bad
    try:
        with Image.open(path) as image:
            if image.format not in ("PNG", "JPEG", "MPO"):  # MPO: a JPEG with extra views, decoded as its first
                return (f"a {image.format} image, not a PNG or JPEG whatever its name says; the pipeline decodes PNG "
                        "and JPEG only: convert it, e.g. Image.open(path).convert('L').save('film.png')")
            if image.format != "PNG" and image.mode not in ("L", "RGB"):
                return (f"a {image.mode} JPEG; TensorFlow decodes grey and RGB JPEGs only: convert it, e.g. "
                        "Image.open(path).convert('L').save(path)")
            if image.format == "PNG":
                image.verify()  # reads every chunk and checks its CRC
            else:
                # Decode at 1/8 scale: the whole entropy-coded stream is still read, so a
                # truncated or corrupt file fails, at a fraction of a full decode's cost.
                image.draft("L", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        return f"{err.__class__.__name__}: {err}"
    return None


def find_unreadable(paths, *, progress: bool | None = None) -> dict[str, str]:
    """The image files among ``paths`` that cannot be decoded, with the reason for each.

    Each file is opened with Pillow and decoded (JPEGs at reduced scale, PNGs
    checked chunk by chunk), in threads, and checked to be what the pipeline's
    ``tf.io.decode_image`` reads: a PNG, or a grey or RGB JPEG, with a file
    name in UTF-8. A progress bar is shown for more than 2,000 files unless
    ``progress=False``.

    Returns
    -------
    dict of str to str
        ``{path: reason}``; empty when every file reads.
    """
    paths = [str(p) for p in paths]
    show = len(paths) > 2000 if progress is None else progress
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_readable, paths, chunksize=64)
        if show:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(paths), desc="checking images", unit="file", file=sys.stderr)
        return {p: why for p, why in zip(paths, results) if why is not None}


def _unreadable_message(bad: dict[str, str], root: Path) -> str:
    shown = "; ".join(f"{_shown(p)} ({why})" for p, why in list(bad.items())[:5])
    more = f", and {len(bad) - 5} more" if len(bad) > 5 else ""
    return (f"{len(bad)} image file(s) under {_shown(root)} cannot be read: {shown}{more}. Convert or rename them as "
            "each reason says, download or copy them again, or delete them; or load with skip_unreadable=True to "
            "leave them out (the count is reported).")


def _drop_unreadable(splits: dict, root: Path, check: bool, skip_unreadable: bool) -> dict:
    """Check every split's files; raise on unreadable ones, or drop them when asked.

    File names TensorFlow cannot take are checked even when ``check`` is False:
    they would fail before any image is read, with an error naming no file.
    """
    paths = [p for split in splits.values() for p in split["paths"]]
    if check:
        bad = find_unreadable(paths)
    else:
        bad = {p: why for p in paths if (why := _bad_name(p))}
    if bad and not skip_unreadable:
        raise ValueError(_unreadable_message(bad, root))
    if bad:
        for split in splits.values():
            keep = [i for i, p in enumerate(split["paths"]) if p not in bad]
            for key in split:
                split[key] = [split[key][i] for i in keep]
        print(f"skipped {len(bad)} unreadable image file(s) under {_shown(root)} (listed in ds.info['unreadable']).",
              file=sys.stderr)
    return {"checked": check, "unreadable": sorted(bad)}


def kermany_patient(filename: str) -> str:
    """Patient identifier encoded in a Kermany file name.

    Examples
    --------
    >>> kermany_patient("person1010_bacteria_2941.jpeg"), kermany_patient("NORMAL2-IM-1427-0001.jpeg")
    ('person1010', 'IM-1427')
    """
    stem = Path(filename).stem
    match = re.match(r"(person\d+)_", stem)
    if match:
        return match.group(1)
    match = re.search(r"(IM-\d+)", stem)
    return match.group(1) if match else stem


def load_kermany(root: Path | str, *, check: bool = True, skip_unreadable: bool = False, seed: int = 0) -> Dataset:
    """List a Kermany-layout folder as a binary pneumonia dataset.

    The folder holds one class after the other; each split is listed in a
    fixed random order (drawn with ``seed``), so that its first films are a
    sample of both classes, as in the phantom and MedMNIST.

    Parameters
    ----------
    root : path
        The folder with ``train/``, ``val/`` and ``test/``, or a folder directly
        above it (as the Kaggle archive unpacks).
    check : bool, default True
        Decode every image once now (:func:`find_unreadable`); about 5,900
        files for the full set.
    skip_unreadable : bool, default False
        Leave unreadable files out instead of raising; ``info["unreadable"]``
        lists them.
    seed : int, default 0
        The seed of the order in which each split's films are listed.

    Returns
    -------
    Dataset
        Splits hold ``paths`` and ``patients``; labels (N, 1), 1 = pneumonia.
    """
    given = Path(root)
    root = find_layout_root(given)
    if _layout_here(root) != "kermany":
        raise ValueError(f"{root} holds the NIH layout, not Kermany's; use load_nih or medkit.data.load.")
    listed = {}
    for split in ("train", "val", "test"):
        paths, labels = [], []
        for label, cls in enumerate(("NORMAL", "PNEUMONIA")):
            folder = root / split / cls
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"missing folder {folder}; the Kermany layout has {{train,val,test}}/{{NORMAL,PNEUMONIA}}/."
                )
            files = sorted(p for p in folder.iterdir()  # "._x.jpeg": macOS metadata that archives carry along
                           if p.suffix.lower() in _IMAGE_SUFFIXES and not p.name.startswith("._"))
            paths += [str(p) for p in files]
            labels += [label] * len(files)
        if not paths:
            raise ValueError(f"no images (.jpeg, .jpg, .png) under {root / split}.")
        listed[split] = {"paths": paths, "labels": labels}
    info = {"layout": "kermany", **_drop_unreadable(listed, root, check, skip_unreadable)}
    if root != given:
        info["found_in"] = str(root)
    rng = np.random.default_rng(seed)
    splits = {
        name: Split(
            labels=np.array(v["labels"], np.uint8).reshape(-1, 1),
            paths=np.array(v["paths"]),
            patients=np.array([kermany_patient(p) for p in v["paths"]]),
        ).take(rng.permutation(len(v["paths"])))
        for name, v in listed.items()
    }
    return Dataset("kermany", "binary", ("pneumonia",), source=str(root), info=info, **splits)


def _text(path: Path) -> str:
    """A text file's contents, UTF-8 with or without a byte-order mark (as spreadsheets save it)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err}); the NIH files are plain ASCII. Download it again, or "
                         "save it again as UTF-8 (or CSV UTF-8).") from err


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; NIH ChestX-ray14 ships it with the official split.")
    return [line.strip() for line in _text(path).splitlines() if line.strip()]


def _png_files(root: Path) -> dict[str, Path]:
    """Every ``.png`` file below ``root`` by name, in folders reached through symbolic links too (each folder once)."""
    files, seen = {}, set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree, or two links to one folder
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        for name in sorted(names):
            if name.endswith(".png"):
                files.setdefault(name, Path(folder) / name)
    return files


def load_nih(root: Path | str, *, val_fraction: float = 0.1, seed: int = 0, check: bool = True,
             skip_unreadable: bool = False) -> Dataset:
    """List NIH ChestX-ray14 with its official, patient-level split.

    Parameters
    ----------
    root : path
        Folder with ``Data_Entry_2017.csv``, the two list files and the images
        (or a folder directly above it).
    val_fraction : float, default 0.1
        Fraction of the training *patients* held out for validation.
    seed : int, default 0
        Seed for that patient draw.
    check : bool, default True
        Read every image once now (:func:`find_unreadable`). For the full set
        (112,120 PNGs, about 45 GB) that takes minutes; ``check=False`` defers
        it to the first read.
    skip_unreadable : bool, default False
        Leave unreadable files out instead of raising.

    Returns
    -------
    Dataset
        14-label multi-label dataset; splits hold ``paths`` and ``patients``.
    """
    root = find_layout_root(root)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1; got {val_fraction!r}.")
    csv_path = next((root / n for n in _NIH_CSV if (root / n).is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"no Data_Entry_2017.csv in {root}; it lists every image with its findings.")
    rows = {}
    reader = csv.DictReader(io.StringIO(_text(csv_path), newline=""))
    needed = {"Image Index", "Finding Labels", "Patient ID"}
    if not needed <= set(reader.fieldnames or ()):
        raise ValueError(f"{csv_path} lacks the columns {', '.join(sorted(needed - set(reader.fieldnames or ())))}; "
                         f"its first line names {', '.join(map(repr, reader.fieldnames or ()))}. Use the "
                         "Data_Entry_2017.csv that comes with the images.")
    for row in reader:
        found = set(row["Finding Labels"].split("|")) - {"No Finding", ""}
        unknown = found - set(NIH_LABELS)
        if unknown:
            raise ValueError(f"{csv_path}: image {row['Image Index']} has unknown findings {sorted(unknown)}.")
        rows[row["Image Index"]] = ([int(n in found) for n in NIH_LABELS], row["Patient ID"])
    files = _png_files(root)

    def listed(names):
        missing = [n for n in names if n not in files or n not in rows]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} listed images are missing from {root} or from the csv, e.g. {missing[0]}; "
                "download all twelve image archives and unpack them under the same folder."
            )
        return {"paths": [str(files[n]) for n in names], "labels": [rows[n][0] for n in names],
                "patients": [rows[n][1] for n in names]}

    train_val = _read_list(root / "train_val_list.txt")
    test = _read_list(root / "test_list.txt")
    _refuse_overlap(train_val, test, rows, root)
    patients = sorted({rows[n][1] for n in train_val if n in rows})
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_fraction * len(patients))))
    val_patients = set(rng.choice(patients, size=n_val, replace=False).tolist())
    val = [n for n in train_val if n in rows and rows[n][1] in val_patients]
    train = [n for n in train_val if n not in val_patients and rows.get(n, (None, None))[1] not in val_patients]
    lists = {"train": listed(train), "val": listed(val), "test": listed(test)}
    checked = _drop_unreadable(lists, root, check, skip_unreadable)
    splits = {
        name: Split(
            labels=np.array(v["labels"], np.uint8).reshape(len(v["paths"]), len(NIH_LABELS)),
            paths=np.array(v["paths"]),
            patients=np.array(v["patients"]),
        )
        for name, v in lists.items()
    }
    return Dataset(
        "nih",
        "multi-label",
        CLASS_NAMES["chestmnist"],
        source=str(root),
        info={"layout": "nih", "val_fraction": val_fraction, "seed": seed, **checked},
        **splits,
    )


def _refuse_overlap(train_val: list[str], test: list[str], rows: dict, root: Path) -> None:
    """Raise if the test list shares an image or a patient with the training list."""
    images = sorted(set(train_val) & set(test))
    if images:
        raise ValueError(
            f"{len(images)} image(s) are in both train_val_list.txt and test_list.txt under {root}, e.g. "
            f"{', '.join(images[:3])}: the test split would score films the model was trained on. Restore the "
            "official list files (they are disjoint)."
        )
    patients = sorted({rows[n][1] for n in train_val if n in rows} & {rows[n][1] for n in test if n in rows})
    if patients:
        raise ValueError(
            f"{len(patients)} patient(s) have films in both train_val_list.txt and test_list.txt under {root}, "
            f"e.g. patient {', '.join(patients[:3])}: a model could score by recognising the patient (notebook 01, "
            "section 7). The official NIH split is by patient; restore its list files."
        )
