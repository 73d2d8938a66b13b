import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from medkit import plots  # noqa: E402
from medkit.data import phantom  # noqa: E402


def test_show_images_outlines_each_present_finding():
    batch = phantom.generate(4, size=32, seed=2, masks=True)
    fig = plots.show_images(batch.images, ["a", "b", "c", "d"], masks=batch.masks, ncols=2)
    axes = fig.axes
    assert len(axes) == 4
    for ax, labels in zip(axes, batch.labels):
        assert len(ax.images) == 1
        assert len(ax.collections) >= int(labels.sum())  # one contour set per finding present
    matplotlib.pyplot.close(fig)


def test_show_images_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(N, H, W\)"):
        plots.show_images(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="one title per image"):
        plots.show_images(np.zeros((2, 4, 4)), ["only one"])
