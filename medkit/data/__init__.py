"""Chest X-ray data: the phantom, MedMNIST, and image folders, behind one call.

>>> from medkit import data
>>> ds = data.load("phantom", sizes=(40, 10, 10))
>>> ds.name, ds.task, len(ds.train), ds.train.images.shape[1:]
('phantom', 'binary', 40, (64, 64))

:func:`load` reads ``MEDKIT_DATASET`` and ``MEDKIT_PROFILE`` when called
without arguments, so a notebook runs unchanged on the phantom, on
PneumoniaMNIST or on a folder of real images. See ``datasets/README.md``
for each dataset's source, licence and layout.
"""

from __future__ import annotations

from pathlib import Path

from medkit import config
from medkit.data import dicom, medmnist, phantom, records
from medkit.data.core import Dataset, Split
from medkit.data.folders import detect_layout, load_kermany, load_nih
from medkit.data.pipeline import augmenter, class_weights, pipeline
from medkit.data.synthetic import load_phantom, write_kermany, write_medmnist, write_nih

__all__ = [
    "Dataset",
    "Split",
    "load",
    "load_phantom",
    "load_kermany",
    "load_nih",
    "dicom",
    "medmnist",
    "phantom",
    "records",
    "pipeline",
    "augmenter",
    "class_weights",
    "write_medmnist",
    "write_kermany",
    "write_nih",
]


def load(name: str | None = None, *, profile: str | None = None, path: str | Path | None = None,
         seed: int = 0, **phantom_options) -> Dataset:
    """Load the chosen dataset with the profile's sizes.

    Parameters
    ----------
    name : str, optional
        ``phantom``, ``pneumoniamnist``, ``chestmnist``, or a path to a
        MedMNIST ``.npz`` file or a Kermany or NIH folder. Default:
        ``MEDKIT_DATASET``, else ``phantom``.
    profile : str, optional
        ``cpu`` or ``gpu``; default ``MEDKIT_PROFILE``, else ``cpu``.
    path : path, optional
        For ``pneumoniamnist`` and ``chestmnist``: a local copy of the file to
        validate and use instead of downloading.
    seed : int, default 0
        Phantom seed; NIH validation-split seed; the seed of a real dataset's subset.
    **phantom_options
        ``sizes=(train, val, test)`` works for every dataset: the phantom draws
        that many films, a real dataset keeps a random subset of each split
        (:meth:`Dataset.subset`). The rest (``labels``, ``difficulty``, ``prevalence``,
        ``confounder``, ``masks``, ``anatomy``, ``site``, ``image_size``) describe what
        only the phantom draws: given with another dataset, they are an error
        that says to load the phantom by name.

    Returns
    -------
    Dataset
    """
    chosen = config.dataset(name)
    prof = config.profile(profile)
    if chosen == "phantom":
        phantom_options.setdefault("sizes", prof.phantom_split)
        phantom_options.setdefault("image_size", prof.image_size)
        return load_phantom(seed=seed, **phantom_options)
    sizes = phantom_options.pop("sizes", None)
    if phantom_options:
        raise ValueError(
            f"options {sorted(phantom_options)} describe what only the phantom draws, not {chosen!r}. For a "
            "section that needs them (masks, five findings, the marker), load the phantom by name: "
            "data.load('phantom', ...)."
        )
    ds = _load_real(chosen, prof, path, seed)
    return ds.subset(sizes, seed=seed) if sizes is not None else ds


def _load_real(chosen, prof, path, seed):
    if chosen in medmnist.FILES:
        return medmnist.load(chosen, prof.medmnist_size, path=path)
    target = Path(chosen)
    if target.is_file():
        arrays = medmnist.load_npz(target)
        k = arrays["train_labels"].shape[1]
        guess = {1: "pneumoniamnist", 14: "chestmnist"}.get(k)
        if guess is None:
            raise ValueError(
                f"{target} has {k} label columns; the kit reads chest files with 1 (PneumoniaMNIST) or 14 (ChestMNIST)."
            )
        return medmnist.from_arrays(arrays, guess, target, size=arrays["train_images"].shape[1])
    layout = detect_layout(target)
    ds = load_kermany(target) if layout == "kermany" else load_nih(target, seed=seed)
    ds.info["image_size"] = prof.image_size  # films on disk are resized to the profile's size
    return ds
