"""Hand-crafted image features as scikit-learn transformers.

Before deep learning, image classifiers were two stages: a fixed description of
the image (features designed by hand), then a trained classifier. The two
descriptors here were the workhorses:

- **HOG**, histograms of oriented gradients (Dalal and Triggs 2005): the
  image gradient's direction, binned per small cell and weighted by its
  magnitude, with the histograms normalised over overlapping blocks of cells.
  It describes *shape*: edges and their orientation, where they are.
- **LBP**, local binary patterns (Ojala et al. 2002): each pixel's ``P``
  neighbours on a circle of radius ``R`` are thresholded at the centre value,
  giving a ``P``-bit code; histograms of the codes per tile describe
  *texture*. The "uniform" variant keeps only codes with at most two 0/1
  transitions around the circle (plus one bin for the rest) and is
  rotation-invariant.
- :class:`TileStats`, the mean and standard deviation of the intensity per
  tile: the global statistics the descriptors above improve on.

Each is a transformer (``fit`` learns nothing, ``transform`` maps images
``(N, H, W)`` to features ``(N, F)``), so it sits inside a
:class:`sklearn.pipeline.Pipeline` and is cross-validated with the classifier.
The computations themselves are scikit-image's
(:func:`skimage.feature.hog`, :func:`skimage.feature.local_binary_pattern`).

Introduced in ``02_hog_lbp_random_forest.ipynb``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import FeatureUnion

__all__ = ["HOG", "LBP", "TileStats", "hog_lbp_features", "tiles"]


def _images(X, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    if X.ndim != 3:
        raise ValueError(
            f"{name} expects a stack of grayscale images of shape (N, H, W); got shape {X.shape}. "
            "Pass split.images, not flattened pixels."
        )
    return X


def tiles(image: np.ndarray, grid: int) -> list[np.ndarray]:
    """Split ``image`` (H, W) into ``grid x grid`` tiles, row by row.

    The last row and column of tiles take the remainder when ``H`` or ``W``
    is not a multiple of ``grid``.

    Examples
    --------
    >>> [t.shape for t in tiles(np.zeros((5, 4)), 2)]
    [(2, 2), (2, 2), (3, 2), (3, 2)]
    """
    if grid < 1 or grid > min(image.shape):
        raise ValueError(f"grid must be between 1 and {min(image.shape)} for an image of shape {image.shape}; got {grid}.")
    rows = np.linspace(0, image.shape[0], grid + 1).astype(int)
    cols = np.linspace(0, image.shape[1], grid + 1).astype(int)
    return [image[r0:r1, c0:c1] for r0, r1 in zip(rows, rows[1:]) for c0, c1 in zip(cols, cols[1:])]


class HOG(TransformerMixin, BaseEstimator):
    """Histograms of oriented gradients, one vector per image.

    Parameters
    ----------
    orientations : int, default 9
        Bins of unsigned gradient direction over 0-180 degrees.
    pixels_per_cell : int, default 8
        Cell side in pixels.
    cells_per_block : int, default 2
        Block side in cells; blocks overlap by one cell and each is normalised.
    block_norm : str, default "L2-Hys"
        Block normalisation (see :func:`skimage.feature.hog`).

    Examples
    --------
    >>> HOG(pixels_per_cell=8).fit_transform(np.zeros((2, 32, 32))).shape  # (4 - 1)**2 blocks * 2*2 cells * 9
    (2, 324)
    """

    def __init__(self, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block: int = 2,
                 block_norm: str = "L2-Hys"):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm

    def fit(self, X, y=None):
        X = _images(X, "HOG")
        self.image_shape_ = X.shape[1:]
        self.layout_ = self.layout(self.image_shape_)
        return self

    def layout(self, image_shape) -> tuple[int, int, int, int, int]:
        """Shape of the feature array before flattening.

        ``(block rows, block cols, cells_per_block, cells_per_block,
        orientations)``: reshape a vector of importances to this to map it
        back onto the image.
        """
        cells = [s // self.pixels_per_cell for s in image_shape]
        blocks = [c - self.cells_per_block + 1 for c in cells]
        if min(blocks) < 1:
            raise ValueError(
                f"images of {image_shape[0]}x{image_shape[1]} px hold no block of {self.cells_per_block}x"
                f"{self.cells_per_block} cells of {self.pixels_per_cell} px; use smaller pixels_per_cell."
            )
        c = self.cells_per_block
        return (blocks[0], blocks[1], c, c, self.orientations)

    def transform(self, X):
        from skimage.feature import hog

        X = _images(X, "HOG")
        ppc, cpb = (self.pixels_per_cell,) * 2, (self.cells_per_block,) * 2
        return np.stack([
            hog(image, orientations=self.orientations, pixels_per_cell=ppc, cells_per_block=cpb,
                block_norm=self.block_norm, feature_vector=True)
            for image in X
        ]).astype(np.float32)


class LBP(TransformerMixin, BaseEstimator):
    """Histograms of uniform local binary patterns per tile.

    Parameters
    ----------
    P : int, default 8
        Neighbours on the circle.
    R : float, default 1
        Circle radius in pixels.
    grid : int, default 4
        The image is split into ``grid x grid`` tiles, one histogram each.

    Images are uint8 (0-255), or floats in [0, 1] which are rounded to 256
    levels first.

    Notes
    -----
    With ``method="uniform"`` (rotation-invariant uniform patterns) a code is
    the number of neighbours at or above the centre, ``0..P``, for uniform
    patterns and ``P + 1`` for all the others: ``P + 2`` bins per tile. Each
    histogram is normalised to sum to 1.

    Examples
    --------
    >>> LBP(P=8, grid=2).fit_transform(np.zeros((3, 16, 16), np.uint8)).shape  # 2*2 tiles * 10 bins
    (3, 40)
    """

    def __init__(self, P: int = 8, R: float = 1.0, grid: int = 4):
        self.P = P
        self.R = R
        self.grid = grid

    def fit(self, X, y=None):
        _images(X, "LBP")
        return self

    def transform(self, X):
        from skimage.feature import local_binary_pattern

        X = _images(X, "LBP")
        if X.dtype.kind == "f":  # LBP compares neighbours exactly: work on 8-bit levels, as films are stored
            X = np.round(np.clip(X, 0.0, 1.0) * 255).astype(np.uint8)
        bins = self.P + 2
        out = np.empty((len(X), self.grid * self.grid * bins), np.float32)
        for i, image in enumerate(X):
            codes = local_binary_pattern(image, self.P, self.R, method="uniform").astype(int)
            out[i] = np.concatenate([np.bincount(t.ravel(), minlength=bins) / t.size for t in tiles(codes, self.grid)])
        return out


class TileStats(TransformerMixin, BaseEstimator):
    """Mean and standard deviation of the intensity (0-1) per tile; ``grid=1`` gives global statistics.

    Examples
    --------
    >>> TileStats(grid=2).fit_transform(np.full((1, 4, 4), 255, np.uint8))
    array([[1., 0., 1., 0., 1., 0., 1., 0.]], dtype=float32)
    """

    def __init__(self, grid: int = 4):
        self.grid = grid

    def fit(self, X, y=None):
        _images(X, "TileStats")
        return self

    def transform(self, X):
        X = _images(X, "TileStats").astype(np.float32) / 255.0
        return np.stack([np.ravel([(t.mean(), t.std()) for t in tiles(image, self.grid)]) for image in X]).astype(np.float32)


def hog_lbp_features(image_size: int, *, cells: int | None = None, grid: int | None = None,
                     n_jobs: int | None = None) -> FeatureUnion:
    """HOG, LBP and tile statistics side by side, sized for ``image_size``.

    Parameters
    ----------
    image_size : int
        Side of the (square) images in pixels.
    cells : int, optional
        HOG cells across the image (cell side ``image_size // cells``).
        Default: 4 below 48 px (PneumoniaMNIST's 28), else 8.
    grid : int, optional
        Tiles across the image for the LBP histograms and intensity
        statistics. Default: as ``cells``.
    n_jobs : int, optional
        Compute the three in parallel.

    Returns
    -------
    sklearn.pipeline.FeatureUnion
        Steps ``hog``, ``lbp`` and ``intensity``.

    Examples
    --------
    >>> hog_lbp_features(28).fit_transform(np.zeros((2, 28, 28), np.uint8)).shape  # 324 HOG + 160 LBP + 32
    (2, 516)
    >>> hog_lbp_features(64).fit_transform(np.zeros((1, 64, 64), np.uint8)).shape  # 1764 + 640 + 128
    (1, 2532)
    """
    cells = cells or (4 if image_size < 48 else 8)
    grid = grid or cells
    if image_size // cells < 2:
        raise ValueError(f"{cells} HOG cells across {image_size} px leave cells under 2 px; use fewer cells.")
    return FeatureUnion(
        [
            ("hog", HOG(pixels_per_cell=image_size // cells)),
            ("lbp", LBP(grid=grid)),
            ("intensity", TileStats(grid=grid)),
        ],
        n_jobs=n_jobs,
    )
