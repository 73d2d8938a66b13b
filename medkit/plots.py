"""The kit's plots, so every notebook draws the same things the same way.

Radiographs are shown in grayscale with bright = dense, with no axes;
ground-truth masks are outlined in one colour per finding. Every function
takes an optional ``ax`` (or returns the figure) so it composes with
``fig, ax = plt.subplots(...)``.

Introduced in ``01_chest_xray_data.ipynb``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["show_images", "FINDING_COLOURS"]

#: One colour per phantom finding, used for masks and legends.
FINDING_COLOURS = {
    "pneumonia": "#d55e00",
    "nodule": "#0173b2",
    "cardiomegaly": "#de8f05",
    "effusion": "#029e73",
    "pneumothorax": "#cc78bc",
}


def show_images(images, titles=None, *, masks=None, mask_names=None, ncols: int = 8, size: float = 1.3,
                vmin: float | None = 0, vmax: float | None = None):
    """A grid of radiographs, optionally with finding masks outlined.

    Parameters
    ----------
    images : array (N, H, W)
        uint8 (shown on 0-255) or float (shown on its own range unless vmin/vmax).
    titles : sequence of str, optional
        One per image.
    masks : array of bool (N, K, H, W), optional
        Outlined in :data:`FINDING_COLOURS` by ``mask_names``.
    mask_names : sequence of str, optional
        Names of the K mask channels (default: the phantom's findings).
    ncols : int, default 8
    size : float, default 1.3
        Inches per image.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from medkit.data.phantom import FINDINGS

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W); got {images.shape}.")
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images; give one title per image.")
    if vmax is None and images.dtype == np.uint8:
        vmax = 255
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    title_lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.13 * title_lines) * nrows), squeeze=False)
    names = list(mask_names or FINDINGS)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray", vmin=vmin, vmax=vmax)
        if masks is not None:
            for k, name in enumerate(names):
                if masks[i, k].any():
                    ax.contour(masks[i, k], levels=[0.5], colors=[FINDING_COLOURS.get(name, "red")], linewidths=0.8)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    return fig
