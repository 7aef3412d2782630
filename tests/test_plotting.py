"""companion.plotting: grids, curves and GIF animations."""

import numpy as np
import pytest
from PIL import Image

from companion import plotting


def test_tile_places_every_image():
    images = np.stack([np.full((4, 5, 1), i / 10) for i in range(7)])
    canvas = plotting.tile(images, columns=3, pad=1, pad_value=1.0)
    assert canvas.shape == (3 * 5 + 1, 3 * 6 + 1, 1)
    assert canvas[1, 1, 0] == 0.0 and canvas[1 + 5, 1 + 6, 0] == pytest.approx(0.4)


def test_image_grid_returns_a_figure():
    figure = plotting.image_grid(np.zeros((10, 28, 28, 1)), columns=5, title="t")
    assert figure.axes[0].get_title() == "t"


def test_plot_history_rejects_unknown_keys():
    figure = plotting.plot_history({"loss": [3, 2, 1]}, ["loss"])
    assert len(figure.axes[0].lines) == 1
    with pytest.raises(ValueError, match="'acc'"):
        plotting.plot_history({"loss": [1]}, ["acc"])


def test_save_animation_writes_every_frame_atomically(tmp_path):
    frames = [np.full((4, 8, 8, 1), v) for v in (0.0, 0.5, 1.0)]
    path = plotting.save_animation(frames, tmp_path / "sub" / "a.gif", columns=2, scale=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        assert gif.size == (2 * (2 * 9 + 1), 2 * (2 * 9 + 1))
    assert [p.name for p in path.parent.iterdir()] == ["a.gif"]
    with pytest.raises(ValueError, match="frames"):
        plotting.save_animation([], tmp_path / "b.gif")
