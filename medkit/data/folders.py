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
    root/images*/.../*.png           the images (any depth below root)

The official NIH split keeps every patient on one side; the validation split
carved out of ``train_val_list.txt`` here is drawn by patient too, so no
patient's images leak between training and validation.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from medkit.data.core import Dataset, Split
from medkit.data.medmnist import CLASS_NAMES

__all__ = ["load_kermany", "load_nih", "detect_layout", "NIH_LABELS", "kermany_patient"]

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


def detect_layout(root: Path | str) -> str:
    """``"kermany"`` or ``"nih"``, from the files present in ``root``.

    Raises ValueError describing both layouts when neither matches.
    """
    root = Path(root)
    if any((root / name).is_file() for name in _NIH_CSV):
        return "nih"
    if (root / "train" / "NORMAL").is_dir() or (root / "train" / "PNEUMONIA").is_dir():
        return "kermany"
    raise ValueError(
        f"{root} is in no layout the kit knows. Expected either the Kermany layout "
        "(train/, val/, test/ each with NORMAL/ and PNEUMONIA/ folders of images) or NIH ChestX-ray14 "
        "(Data_Entry_2017.csv, train_val_list.txt, test_list.txt and the images). See datasets/README.md."
    )


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


def load_kermany(root: Path | str) -> Dataset:
    """List a Kermany-layout folder as a binary pneumonia dataset.

    Returns
    -------
    Dataset
        Splits hold ``paths`` and ``patients``; labels (N, 1), 1 = pneumonia.
    """
    root = Path(root)
    splits = {}
    for split in ("train", "val", "test"):
        paths, labels = [], []
        for label, cls in enumerate(("NORMAL", "PNEUMONIA")):
            folder = root / split / cls
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"missing folder {folder}; the Kermany layout has {{train,val,test}}/{{NORMAL,PNEUMONIA}}/."
                )
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            paths += [str(p) for p in files]
            labels += [label] * len(files)
        if not paths:
            raise ValueError(f"no images (.jpeg, .jpg, .png) under {root / split}.")
        splits[split] = Split(
            labels=np.array(labels, np.uint8)[:, None],
            paths=np.array(paths),
            patients=np.array([kermany_patient(p) for p in paths]),
        )
    return Dataset("kermany", "binary", ("pneumonia",), source=str(root), info={"layout": "kermany"}, **splits)


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; NIH ChestX-ray14 ships it with the official split.")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_nih(root: Path | str, *, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """List NIH ChestX-ray14 with its official, patient-level split.

    Parameters
    ----------
    root : path
        Folder with ``Data_Entry_2017.csv``, the two list files and the images.
    val_fraction : float, default 0.1
        Fraction of the training *patients* held out for validation.
    seed : int, default 0
        Seed for that patient draw.

    Returns
    -------
    Dataset
        14-label multi-label dataset; splits hold ``paths`` and ``patients``.
    """
    root = Path(root)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1; got {val_fraction!r}.")
    csv_path = next((root / n for n in _NIH_CSV if (root / n).is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"no Data_Entry_2017.csv in {root}; it lists every image with its findings.")
    rows = {}
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        needed = {"Image Index", "Finding Labels", "Patient ID"}
        if not needed <= set(reader.fieldnames or ()):
            raise ValueError(f"{csv_path} lacks the columns {', '.join(sorted(needed - set(reader.fieldnames or ())))}.")
        for row in reader:
            found = set(row["Finding Labels"].split("|")) - {"No Finding", ""}
            unknown = found - set(NIH_LABELS)
            if unknown:
                raise ValueError(f"{csv_path}: image {row['Image Index']} has unknown findings {sorted(unknown)}.")
            rows[row["Image Index"]] = ([int(n in found) for n in NIH_LABELS], row["Patient ID"])
    files = {p.name: p for p in root.rglob("*.png")}

    def split_of(names):
        missing = [n for n in names if n not in files or n not in rows]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} listed images are missing from {root} or from the csv, e.g. {missing[0]}; "
                "download all twelve image archives and unpack them under the same folder."
            )
        return Split(
            labels=np.array([rows[n][0] for n in names], np.uint8).reshape(len(names), len(NIH_LABELS)),
            paths=np.array([str(files[n]) for n in names]),
            patients=np.array([rows[n][1] for n in names]),
        )

    train_val = _read_list(root / "train_val_list.txt")
    test = _read_list(root / "test_list.txt")
    patients = sorted({rows[n][1] for n in train_val if n in rows})
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_fraction * len(patients))))
    val_patients = set(rng.choice(patients, size=n_val, replace=False).tolist())
    val = [n for n in train_val if n in rows and rows[n][1] in val_patients]
    train = [n for n in train_val if n not in val_patients and rows.get(n, (None, None))[1] not in val_patients]
    return Dataset(
        "nih",
        "multi-label",
        CLASS_NAMES["chestmnist"],
        train=split_of(train),
        val=split_of(val),
        test=split_of(test),
        source=str(root),
        info={"layout": "nih", "val_fraction": val_fraction, "seed": seed},
    )
