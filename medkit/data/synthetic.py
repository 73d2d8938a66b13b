"""The phantom as a dataset, and written to disk in every real format.

:func:`load_phantom` draws train, validation and test splits from
independent seeds and returns the same :class:`~medkit.data.core.Dataset` as
the real loaders. The writers save a phantom dataset as a MedMNIST ``.npz``,
as Kermany folders of JPEGs, or as an NIH-style csv with PNGs, so that the
loaders can be tried, and tested, on exactly the path real data takes.

Every writer builds its output in a temporary sibling and renames it into
place at the end: an interrupted write leaves nothing half-written.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medkit.data import phantom
from medkit.data.core import Dataset, Split, Staging
from medkit.data.folders import NIH_LABELS

__all__ = ["load_phantom", "write_medmnist", "write_kermany", "write_nih"]


def load_phantom(
    sizes: tuple[int, int, int] = (4000, 500, 1000),
    *,
    image_size: int = 64,
    seed: int = 0,
    labels: str = "pneumonia",
    difficulty: float = 0.5,
    prevalence: dict | None = None,
    confounder: float | None = None,
    masks: bool = False,
    anatomy: bool = False,
    site: dict | None = None,
) -> Dataset:
    """Phantom train, validation and test splits.

    Parameters
    ----------
    sizes : (int, int, int)
        Images in the train, validation and test splits.
    image_size : int, default 64
    seed : int, default 0
        Each split gets its own stream, spawned from this seed.
    labels : {"pneumonia", "all"}
        ``"pneumonia"``: a binary task; ``"all"``: the five findings, multi-label.
    difficulty, prevalence, confounder, masks, anatomy, site
        Passed to :func:`medkit.data.phantom.generate`.

    Returns
    -------
    Dataset
        ``info`` records the arguments, the pixel spacing (mm) and, per split,
        the CTR, the marker flags, all five labels and the nodule diameters (mm);
        with ``anatomy=True`` also the heart and lung masks of every film
        (``"anatomy"``, (n, 2, size, size), in the order of ``phantom.ANATOMY``).

    Examples
    --------
    >>> ds = load_phantom((20, 5, 5), image_size=32)
    >>> ds.task, ds.class_names, ds.train.images.shape, ds.train.labels.shape
    ('binary', ('pneumonia',), (20, 32, 32), (20, 1))
    """
    if labels not in ("pneumonia", "all"):
        raise ValueError(f"labels must be 'pneumonia' (binary task) or 'all' (five findings); got {labels!r}.")
    if len(sizes) != 3:
        raise ValueError(f"sizes must give (train, val, test) counts; got {sizes!r}.")
    columns = [0] if labels == "pneumonia" else list(range(len(phantom.FINDINGS)))
    seeds = np.random.SeedSequence(seed).spawn(3)
    splits, extra = {}, {}
    for name, n, ss in zip(("train", "val", "test"), sizes, seeds):
        batch = phantom.generate(
            int(n),
            size=image_size,
            seed=int(ss.generate_state(1)[0]),
            prevalence=prevalence,
            difficulty=difficulty,
            confounder=confounder,
            masks=masks,
            anatomy=anatomy,
            site=site,
        )
        splits[name] = Split(
            labels=batch.labels[:, columns],
            images=batch.images,
            masks=batch.masks[:, columns] if masks else None,
        )
        extra[name] = {"ctr": batch.ctr, "marker": batch.marker, "all_labels": batch.labels, "nodule_mm": batch.nodule_mm}
        if anatomy:
            extra[name]["anatomy"] = batch.anatomy
    return Dataset(
        "phantom",
        "binary" if labels == "pneumonia" else "multi-label",
        tuple(phantom.FINDINGS[c] for c in columns),
        source="generated",
        info={"image_size": image_size, "seed": seed, "difficulty": difficulty, "confounder": confounder,
              "site": dict(site or {}), "pixel_spacing": phantom.pixel_spacing(image_size), **extra},
        **splits,
    )


def _require_images(dataset: Dataset) -> None:
    if not all(s.in_memory for s in dataset.splits.values()):
        raise ValueError("only in-memory datasets (the phantom, MedMNIST) can be written out.")


def write_medmnist(dataset: Dataset, path: Path | str) -> Path:
    """Save a dataset as a MedMNIST-format ``.npz`` (images uint8, labels (N, K))."""
    _require_images(dataset)
    path = Path(path)
    arrays = {}
    for name, split in dataset.splits.items():
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels.astype(np.uint8)
    with Staging(path, is_dir=False) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def _save_image(array: np.ndarray, path: Path) -> None:
    """Save a uint8 (H, W) array as a grayscale JPEG or PNG (by suffix)."""
    from PIL import Image

    Image.fromarray(array).save(path, quality=95)  # quality is read by JPEG only


def write_kermany(dataset: Dataset, root: Path | str) -> Path:
    """Save a binary dataset in the Kermany layout (JPEGs in NORMAL/PNEUMONIA folders).

    File names follow Kermany's (``personN_bacteria_M.jpeg``,
    ``IM-NNNN-0001.jpeg``), one patient per image.
    """
    _require_images(dataset)
    if dataset.task != "binary":
        raise ValueError("the Kermany layout is binary (NORMAL / PNEUMONIA); load the phantom with labels='pneumonia'.")
    root = Path(root)
    with Staging(root, is_dir=True) as tmp:
        count = 0
        for name, split in dataset.splits.items():
            for cls in ("NORMAL", "PNEUMONIA"):
                (tmp / name / cls).mkdir(parents=True)
            for image, label in zip(split.images, split.labels[:, 0]):
                count += 1
                if label:
                    file = tmp / name / "PNEUMONIA" / f"person{count}_bacteria_{count}.jpeg"
                else:
                    file = tmp / name / "NORMAL" / f"IM-{count:04d}-0001.jpeg"
                _save_image(image, file)
    return root


def write_nih(dataset: Dataset, root: Path | str, *, images_per_patient: int = 3, seed: int = 0) -> Path:
    """Save a five-finding phantom dataset in the NIH ChestX-ray14 layout.

    Images are grouped into patients of up to ``images_per_patient`` each
    (follow-up studies), train and validation images going to
    ``train_val_list.txt`` and test images to ``test_list.txt``.
    """
    _require_images(dataset)
    unknown = [c for c in dataset.class_names if c.capitalize() not in NIH_LABELS]
    if unknown:
        raise ValueError(f"these classes have no NIH label: {unknown}; NIH knows {', '.join(NIH_LABELS)}.")
    rng = np.random.default_rng(seed)
    root = Path(root)
    with Staging(root, is_dir=True) as tmp:
        (tmp / "images").mkdir()
        rows, lists = [], {"train_val_list.txt": [], "test_list.txt": []}
        patient = 0
        for name, split in dataset.splits.items():
            listed = lists["test_list.txt" if name == "test" else "train_val_list.txt"]
            i = 0
            while i < len(split):
                patient += 1
                k = int(rng.integers(1, images_per_patient + 1))
                for follow_up in range(min(k, len(split) - i)):
                    file = f"{patient:08d}_{follow_up:03d}.png"
                    _save_image(split.images[i], tmp / "images" / file)
                    found = [c.capitalize() for c, on in zip(dataset.class_names, split.labels[i]) if on]
                    rows.append([file, "|".join(found) or "No Finding", follow_up, patient])
                    listed.append(file)
                    i += 1
        with (tmp / "Data_Entry_2017.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
            writer.writerows(rows)
        for file, names in lists.items():
            (tmp / file).write_text("\n".join(names) + "\n")
    return root
