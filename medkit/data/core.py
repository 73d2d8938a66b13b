"""The one return type for every dataset: splits, class names and task.

A :class:`Dataset` holds three :class:`Split` objects (``train``, ``val``,
``test``). A split keeps its images either in memory (the phantom and
MedMNIST: ``images`` is a uint8 array) or on disk (Kermany and NIH folders:
``paths`` lists the files, read lazily by :func:`medkit.data.pipeline`).
Labels are always an ``(N, K)`` uint8 array with one column per class name,
so binary and multi-label tasks share one code path.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Split", "Dataset", "TASKS", "Staging"]

#: The tasks a dataset can pose.
TASKS = ("binary", "multi-label")


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes
    ----------
    labels : ndarray, uint8, shape (N, K)
        1 where the class is present.
    images : ndarray, uint8, shape (N, H, W), or None
        The images, when held in memory.
    paths : ndarray of str, shape (N,), or None
        Image files, when read from disk.
    patients : ndarray of str, shape (N,), or None
        Patient identifier per image, where the source has one.
    masks : ndarray of bool, shape (N, K, H, W), or None
        Ground-truth location of each finding (phantom only).
    """

    labels: np.ndarray
    images: np.ndarray | None = None
    paths: np.ndarray | None = None
    patients: np.ndarray | None = None
    masks: np.ndarray | None = None

    def __post_init__(self):
        if (self.images is None) == (self.paths is None):
            raise ValueError("a Split holds either images (in memory) or paths (on disk), exactly one of them.")
        n = len(self.images) if self.images is not None else len(self.paths)
        if self.labels.ndim != 2 or len(self.labels) != n:
            raise ValueError(
                f"labels must have shape (N, K) with N = {n} images; got {self.labels.shape}. "
                "Reshape a vector of labels with labels[:, None]."
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        """True when ``images`` holds the pixels."""
        return self.images is not None

    def take(self, index) -> Split:
        """The films at ``index`` (an integer array), with their labels, patients and masks."""
        def pick(a):
            return None if a is None else a[index]

        return Split(labels=self.labels[index], images=pick(self.images), paths=pick(self.paths),
                     patients=pick(self.patients), masks=pick(self.masks))


@dataclass(frozen=True)
class Dataset:
    """A chest X-ray dataset with train, validation and test splits.

    Attributes
    ----------
    name : str
        ``phantom``, ``pneumoniamnist``, ``chestmnist``, ``kermany``, ``nih``.
    task : str
        ``"binary"`` (one column of labels) or ``"multi-label"``.
    class_names : tuple of str
        One per label column.
    train, val, test : Split
    source : str
        Where the data came from (a URL, a path or "generated").
    info : dict
        Anything else worth knowing (image size, licence, seed, ...).
    """

    name: str
    task: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    source: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}.")
        for split_name, split in self.splits.items():
            if split.labels.shape[1] != len(self.class_names):
                raise ValueError(
                    f"the {split_name} labels have {split.labels.shape[1]} columns but there are "
                    f"{len(self.class_names)} class names ({', '.join(self.class_names)})."
                )

    @property
    def splits(self) -> dict[str, Split]:
        """The three splits by name."""
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def image_size(self) -> int:
        """The side in pixels at which the films are used: their own size in memory, else the profile's.

        Notebooks build their models at this size, so the same cell runs on 64 px
        phantom films and on 28 px PneumoniaMNIST films.
        """
        if self.train.in_memory:
            return int(self.train.images.shape[1])
        return int(self.info.get("image_size", 64))

    def to_memory(self, image_size: int | None = None) -> Dataset:
        """The same dataset with every split's films read into memory, uint8 (N, S, S).

        Films on disk (Kermany, NIH) are decoded and resized to ``image_size``
        (default :attr:`image_size`) through :func:`medkit.data.pipeline`, so
        code written for arrays (scikit-learn, scikit-image) runs on a folder
        too. In-memory splits of that size are returned as they are.
        """
        from medkit.data.pipeline import pipeline

        size = image_size or self.image_size
        splits = {}
        for name, split in self.splits.items():
            if split.in_memory and split.images.shape[1] == size:
                splits[name] = split
                continue
            batches = pipeline(split, image_size=size, batch_size=256, cache=False)
            films = np.concatenate([x.numpy()[..., 0] for x, _ in batches]) if len(split) else np.zeros((0, size, size))
            splits[name] = Split(labels=split.labels, images=np.round(films * 255).astype(np.uint8),
                                 patients=split.patients)
        return Dataset(self.name, self.task, self.class_names, source=self.source,
                       info={**self.info, "image_size": size}, **splits)

    def subset(self, sizes, *, seed: int = 0) -> Dataset:
        """A random subset of each split, ``sizes = (train, val, test)`` films at most, in their original order.

        Examples
        --------
        >>> s = Split(labels=np.arange(10, dtype=np.uint8)[:, None] % 2, images=np.zeros((10, 4, 4), np.uint8))
        >>> small = Dataset("toy", "binary", ("pneumonia",), s, s, s).subset((4, 10, 20))
        >>> len(small.train), len(small.val), len(small.test)
        (4, 10, 10)
        """
        if len(sizes) != 3 or any(int(n) < 1 for n in sizes):
            raise ValueError(f"sizes must give three positive (train, val, test) counts; got {sizes!r}.")
        rng = np.random.default_rng(seed)
        picked = {}
        for (name, split), n in zip(self.splits.items(), sizes):
            n = min(int(n), len(split))
            picked[name] = split.take(np.sort(rng.choice(len(split), n, replace=False)))
        info = {**self.info, "subset": tuple(len(s) for s in picked.values())}
        return Dataset(self.name, self.task, self.class_names, source=self.source, info=info, **picked)

    def summary(self) -> str:
        """Split sizes and the positive count of each class, as a small table.

        Examples
        --------
        >>> import numpy as np
        >>> s = Split(labels=np.array([[0], [1], [1]], np.uint8), images=np.zeros((3, 4, 4), np.uint8))
        >>> print(Dataset("toy", "binary", ("pneumonia",), s, s, s).summary())
        toy (binary)
        split   images    pneumonia
        train        3      2 (67%)
        val          3      2 (67%)
        test         3      2 (67%)
        """
        widths = [max(len(c), 11) + 2 for c in self.class_names]
        head = f"{'split':<6}{'images':>8}" + "".join(f"{c:>{w}}" for c, w in zip(self.class_names, widths))
        rows = [f"{self.name} ({self.task})", head]
        for split_name, split in self.splits.items():
            counts = split.labels.sum(axis=0)
            cells = "".join(f"{f'{int(c)} ({c / max(len(split), 1):.0%})':>{w}}" for c, w in zip(counts, widths))
            rows.append(f"{split_name:<6}{len(split):>8}{cells}")
        return "\n".join(rows)


class Staging:
    """Write into a temporary sibling of ``target``; move it into place on success.

    A context manager yielding the temporary path (a folder if ``is_dir``,
    else a file). On an exception the temporary is deleted and ``target`` is
    never created, so an interrupted writer leaves nothing half-written.
    """

    def __init__(self, target: Path, is_dir: bool):
        self.target, self.is_dir = Path(target), is_dir

    def __enter__(self) -> Path:
        if self.target.exists():
            raise FileExistsError(f"{self.target} already exists; choose a new path or delete it first.")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.target.name}."
        if self.is_dir:
            self.tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.target.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=self.target.suffix, dir=self.target.parent)
            os.close(fd)
            self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.target)
        elif self.is_dir:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)
        return False
