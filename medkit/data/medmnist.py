"""MedMNIST v2 chest datasets: checked downloads and validated local files.

PneumoniaMNIST (Kermany et al., 2018; binary: normal / pneumonia) and
ChestMNIST (NIH ChestX-ray14; 14 findings, multi-label) come from the
official Zenodo record 10519652 in four sizes (28, 64, 128, 224 pixels).
Each file is downloaded once with :mod:`pooch`, which writes to a temporary
file and moves it into the cache only after its MD5 matches, so a failed or
corrupt download never leaves a half-written file behind.

A local ``.npz`` file can be used instead (a copy you already have, or one
the phantom wrote); its structure (keys, dtypes, shapes, label range) is
checked, since a local copy need not be byte-identical to the official one.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from medkit.data.core import Dataset, Split

__all__ = ["RECORD", "FILES", "CLASS_NAMES", "filename", "url", "md5", "fetch", "load_npz", "from_arrays", "load"]

#: The Zenodo record holding MedMNIST v2 (MedMNIST+ sizes included).
RECORD = "https://zenodo.org/records/10519652/files"

#: Official MD5 of each file, by dataset and image size.
FILES = {
    "pneumoniamnist": {
        28: "28209eda62fecd6e6a2d98b1501bb15f",
        64: "8f4eceb4ccffa70c672198ea285246c6",
        128: "05b46931834c231683c68f40c47b2971",
        224: "d6a3c71de1b945ea11211b03746c1fe1",
    },
    "chestmnist": {
        28: "02c8a6516a18b556561a56cbdd36c4a8",
        64: "9de6cd0b934ebb5b7426cfba5efbae16",
        128: "db107e5590b27930b62dbaf558aebee3",
        224: "45bd33e6f06c3e8cdb481c74a89152aa",
    },
}

#: Label columns of each dataset.
CLASS_NAMES = {
    "pneumoniamnist": ("pneumonia",),
    "chestmnist": (
        "atelectasis",
        "cardiomegaly",
        "effusion",
        "infiltration",
        "mass",
        "nodule",
        "pneumonia",
        "pneumothorax",
        "consolidation",
        "edema",
        "emphysema",
        "fibrosis",
        "pleural thickening",
        "hernia",
    ),
}

_SPLITS = ("train", "val", "test")


def _check_name_size(name: str, size: int) -> None:
    if name not in FILES:
        raise ValueError(f"unknown MedMNIST dataset {name!r}; the kit knows {', '.join(FILES)}.")
    if size not in FILES[name]:
        raise ValueError(f"{name} comes in sizes {', '.join(map(str, FILES[name]))}; got {size!r}.")


def filename(name: str, size: int = 28) -> str:
    """The official file name, e.g. ``pneumoniamnist_64.npz`` (28 px has no suffix).

    Examples
    --------
    >>> filename("pneumoniamnist"), filename("chestmnist", 224)
    ('pneumoniamnist.npz', 'chestmnist_224.npz')
    """
    _check_name_size(name, size)
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def url(name: str, size: int = 28) -> str:
    """The official download URL of ``name`` at ``size`` pixels."""
    return f"{RECORD}/{filename(name, size)}?download=1"


def md5(name: str, size: int = 28) -> str:
    """The official MD5 of ``name`` at ``size`` pixels."""
    _check_name_size(name, size)
    return FILES[name][size]


def fetch(name: str, size: int = 28, *, cache: Path | str | None = None, source: str | None = None,
          progress: bool = True) -> Path:
    """Download ``name`` at ``size`` into the cache (once), checking its MD5.

    Parameters
    ----------
    name : {"pneumoniamnist", "chestmnist"}
    size : {28, 64, 128, 224}
    cache : path, optional
        Cache folder; default :func:`medkit.config.data_dir`.
    source : str, optional
        Download from this URL instead of the official one (a mirror; the
        official MD5 is still required).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    Path
        The verified file in the cache.

    Raises
    ------
    RuntimeError
        When the download fails or the file does not match its MD5; the
        message names the URL, the MD5 and where to put a copy by hand.
    """
    import pooch
    import requests

    from medkit import config

    cache = Path(cache) if cache is not None else config.data_dir()
    fname = filename(name, size)
    target = source or url(name, size)
    expected = md5(name, size)
    manual = (
        f"To use the file without downloading it, get {fname} (MD5 {expected}) from {url(name, size)} "
        f"on a machine with internet access and put it at {cache / fname}, or pass its path with "
        "MEDKIT_DATASET=/path/to/file.npz."
    )
    try:
        path = pooch.retrieve(
            target,
            known_hash=f"md5:{expected}",
            fname=fname,
            path=cache,
            progressbar=progress,
        )
    except ValueError as err:  # pooch's hash mismatch; it has already removed the download
        raise RuntimeError(
            f"the file downloaded from {target} does not match the official MD5 {expected}, so it was "
            f"discarded (nothing was kept in {cache}). The download may have been cut short or the "
            f"server may have sent an error page; try again later. {manual}"
        ) from err
    except (requests.exceptions.RequestException, OSError) as err:
        raise RuntimeError(f"could not download {fname} from {target} ({err.__class__.__name__}: {err}). {manual}") from err
    return Path(path)


def load_npz(path: Path | str, name: str | None = None) -> dict[str, np.ndarray]:
    """Read a MedMNIST-format ``.npz`` file and check its structure.

    Checked: the six keys ``{train,val,test}_{images,labels}``; uint8 images
    of shape (N, H, W) with H == W, N >= 1; labels (N, K) with values 0 or 1
    only (0.5, NaN or a class number is refused, not rounded); as many labels
    as images; K equal to the dataset's class count when ``name`` is given.

    Returns
    -------
    dict
        The six arrays by key.

    Raises
    ------
    ValueError
        Naming the first problem found and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}; expected a MedMNIST-format .npz file.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable .npz file ({err.__class__.__name__}: {err}); it may be truncated or "
            "corrupt. Delete it and download it again."
        ) from err
    expected_keys = {f"{s}_{k}" for s in _SPLITS for k in ("images", "labels")}
    missing = expected_keys - set(arrays)
    if missing:
        raise ValueError(
            f"{path} lacks the keys {', '.join(sorted(missing))}; a MedMNIST file has "
            f"{', '.join(sorted(expected_keys))}. Is it the right file?"
        )
    n_classes = len(CLASS_NAMES[name]) if name else None
    size = None
    for split in _SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        where = f"{path.name}: {split}"
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
            raise ValueError(
                f"{where}_images should be uint8 of shape (N, H, H) (grayscale); got {images.dtype} {images.shape}."
            )
        if size is not None and images.shape[1] != size:
            raise ValueError(f"{where}_images are {images.shape[1]} px but other splits are {size} px.")
        size = images.shape[1]
        if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{where}_labels should have shape ({images.shape[0]}, K), one row per image; got {labels.shape}."
            )
        if n_classes is not None and labels.shape[1] != n_classes:
            raise ValueError(f"{where}_labels have {labels.shape[1]} columns; {name} has {n_classes} classes.")
        _check_labels(labels, f"{path}: {split}_labels")
        if not len(images):
            raise ValueError(f"{path}: {split}_images holds no images; every split needs at least one. Is the file "
                             "complete? Download it again, or write it again from its source.")
    return arrays


def _check_labels(labels: np.ndarray, where: str) -> None:
    """Refuse labels that are not 0 or 1, naming the values and how many: soft labels, NaN, class numbers.

    Each column is one finding, present (1) or absent (0). A value such as
    0.5 or NaN would otherwise become 0 when the labels are cast to uint8.

    Examples
    --------
    >>> _check_labels(np.array([[0], [1.0]]), "x.npz: train_labels")
    >>> _check_labels(np.array([[0], [0.5], [np.nan]]), "x.npz: train_labels")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: x.npz: train_labels should be 0 or 1 (one column per finding, 1 = present); 2 of 3 values are not: 0.5, nan. ...
    """
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{where} should be numbers 0 or 1; they are of type {labels.dtype}. Write the labels as "
                         "uint8, one column per finding.")
    bad = ~np.isin(labels, (0, 1))  # NaN is in neither
    if bad.any():
        shown = ", ".join(str(v) for v in np.unique(labels[bad])[:5].tolist())
        raise ValueError(
            f"{where} should be 0 or 1 (one column per finding, 1 = present); {int(bad.sum())} of {labels.size} "
            f"values are not: {shown}. Soft labels, NaN and class numbers cannot be used as they are: decide each "
            "finding (e.g. labels >= 0.5), or drop those rows, and write the file again; or download the official "
            "file."
        )


def load(name: str, size: int = 28, *, path: Path | str | None = None, cache: Path | str | None = None,
         progress: bool = True) -> Dataset:
    """Load PneumoniaMNIST or ChestMNIST with the official splits.

    Parameters
    ----------
    name : {"pneumoniamnist", "chestmnist"}
    size : {28, 64, 128, 224}, default 28
        Used to pick the official file when ``path`` is not given.
    path : path, optional
        A local MedMNIST-format file to use instead of downloading; its
        structure is validated.
    cache : path, optional
        Where downloads go (default :func:`medkit.config.data_dir`).
    progress : bool, default True
        Show a download progress bar.

    Returns
    -------
    Dataset
    """
    _check_name_size(name, size)
    file = Path(path) if path is not None else fetch(name, size, cache=cache, progress=progress)
    return from_arrays(load_npz(file, name), name, file, size)


def from_arrays(arrays: dict[str, np.ndarray], name: str, file: Path | str, size: int = 28) -> Dataset:
    """A :class:`Dataset` from arrays already checked by :func:`load_npz`."""
    splits = {s: Split(labels=arrays[f"{s}_labels"].astype(np.uint8), images=arrays[f"{s}_images"]) for s in _SPLITS}
    return Dataset(
        name=name,
        task="binary" if len(CLASS_NAMES[name]) == 1 else "multi-label",
        class_names=CLASS_NAMES[name],
        source=str(file),
        info={
            "image_size": int(arrays["train_images"].shape[1]),
            "licence": "CC BY 4.0",
            "url": url(name, size) if size in FILES[name] else None,  # a local file may have any size
        },
        **splits,
    )
