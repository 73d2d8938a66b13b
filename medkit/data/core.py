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
