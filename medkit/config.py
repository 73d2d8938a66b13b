"""Profiles, dataset choice and the data directory, read from the environment.

Three environment variables steer every notebook without editing it:

``MEDKIT_PROFILE``
    ``cpu`` (default) sizes images, data and epochs so that every notebook
    runs in minutes on a 2-core laptop; ``gpu`` uses larger images, more data
    and more epochs.
``MEDKIT_DATASET``
    ``phantom`` (default, generated on the fly), ``pneumoniamnist``,
    ``chestmnist``, or a path: a MedMNIST-style ``.npz`` file or a folder in
    the Kermany or NIH ChestX-ray14 layout.
``MEDKIT_DATA_DIR``
    Where downloads are cached (default ``datasets/cache/`` in the kit).

Introduced in ``00_setup.ipynb``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "PROFILES", "DATASETS", "profile", "dataset", "data_dir"]


@dataclass(frozen=True)
class Profile:
    """How big the work is: image size, data size, batch size and epochs.

    Attributes
    ----------
    name : str
        ``"cpu"`` or ``"gpu"``.
    image_size : int
        Side in pixels of phantom and folder-dataset images.
    medmnist_size : int
        Which official MedMNIST size to load (28, 64, 128 or 224).
    phantom_split : tuple of int
        Number of phantom images in the train, validation and test splits.
    batch_size : int
        Images per training step.
    epochs : int
        Upper bound on training epochs (early stopping may end sooner).
    """

    name: str
    image_size: int
    medmnist_size: int
    phantom_split: tuple[int, int, int]
    batch_size: int
    epochs: int


PROFILES = {
    "cpu": Profile("cpu", image_size=64, medmnist_size=28, phantom_split=(4000, 500, 1000), batch_size=64, epochs=15),
    "gpu": Profile("gpu", image_size=128, medmnist_size=224, phantom_split=(20000, 2000, 4000), batch_size=128, epochs=40),
}

#: Dataset names accepted by ``MEDKIT_DATASET`` besides a path.
DATASETS = ("phantom", "pneumoniamnist", "chestmnist")

_KIT_ROOT = Path(__file__).resolve().parents[1]


def profile(name: str | None = None) -> Profile:
    """The active profile: ``name``, else ``MEDKIT_PROFILE``, else ``cpu``.

    Examples
    --------
    >>> profile("cpu").image_size
    64
    """
    chosen = name or os.environ.get("MEDKIT_PROFILE") or "cpu"
    try:
        return PROFILES[chosen.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown profile {chosen!r} (from MEDKIT_PROFILE or the argument); "
            f"expected one of {', '.join(PROFILES)}. Unset MEDKIT_PROFILE to use 'cpu'."
        ) from None


def dataset(name: str | None = None) -> str:
    """The active dataset: ``name``, else ``MEDKIT_DATASET``, else ``phantom``.

    A path is returned as an absolute path after checking it exists.

    Examples
    --------
    >>> dataset("PneumoniaMNIST")
    'pneumoniamnist'
    """
    chosen = (name or os.environ.get("MEDKIT_DATASET") or "phantom").strip()
    if chosen.lower() in DATASETS:
        return chosen.lower()
    path = Path(chosen).expanduser()
    if path.exists():
        return str(path.resolve())
    raise ValueError(
        f"unknown dataset {chosen!r} (from MEDKIT_DATASET or the argument): it is neither one of "
        f"{', '.join(DATASETS)} nor an existing file or folder. Check the spelling or the path; "
        "datasets/README.md lists what the kit can load."
    )


def data_dir() -> Path:
    """Folder for downloaded datasets: ``MEDKIT_DATA_DIR``, else ``datasets/cache/`` in a checkout of the kit.

    When medkit is installed outside its repository (``%pip install`` on
    Colab or Kaggle), the default is the user's cache folder (``~/.cache/medkit``
    on Linux). The folder is created. When a default folder cannot be written
    (a read-only checkout or home), a ``medkit`` folder in the system's
    temporary directory is used instead, with a warning; a ``MEDKIT_DATA_DIR``
    that cannot be written is an error.
    """
    env = os.environ.get("MEDKIT_DATA_DIR")
    if env:
        path = Path(env).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(
                f"MEDKIT_DATA_DIR={env!r} cannot be created ({err.strerror}); set it to a folder you can write, "
                "or unset it to use the kit's default."
            ) from err
        return path
    # A checkout of the kit has its pyproject.toml beside datasets/; an installed kit sits in site-packages,
    # where a folder named datasets may be another package's (Hugging Face's, which Colab ships).
    if (_KIT_ROOT / "pyproject.toml").is_file() and (_KIT_ROOT / "datasets").is_dir():
        path = _KIT_ROOT / "datasets" / "cache"
    else:
        import pooch

        path = Path(pooch.os_cache("medkit"))
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "not writable")
    except OSError as err:
        import tempfile
        import warnings

        fallback = Path(tempfile.gettempdir()) / "medkit"
        warnings.warn(
            f"the data cache {path} cannot be written ({err.strerror}); downloads go to {fallback}, which the "
            "system may empty. Set MEDKIT_DATA_DIR to a folder you can write to keep them.",
            stacklevel=2,
        )
        fallback.mkdir(parents=True, exist_ok=True)
        path = fallback
    return path
