"""companion.plotting: grids, curves and GIF animations."""

import re

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


def test_image_grid_labels_each_row_and_shows_the_tiled_canvas():
    images = np.stack([np.full((6, 6, 1), i / 10) for i in range(6)])
    figure = plotting.image_grid(images, columns=3, labels=["top", "bottom"])
    (axis,) = figure.axes
    (picture,) = axis.get_images()
    assert picture.get_array().shape == plotting.tile(images, 3)[..., 0].shape
    assert [t.get_text() for t in axis.get_yticklabels()] == ["top", "bottom"]
    assert list(axis.get_xticks()) == []


def test_image_rows_stacks_sets_as_labelled_rows():
    rows = [np.zeros((4, 5, 5, 1)), np.ones((4, 5, 5, 1))]
    figure = plotting.image_rows(rows, ["data", "model"], title="pairs")
    (axis,) = figure.axes
    canvas = axis.get_images()[0].get_array()
    assert canvas.shape == (2 * 6 + 1, 4 * 6 + 1)
    assert canvas[1, 1] == 0.0 and canvas[1 + 6, 1] == 1.0  # first row data, second model
    assert [t.get_text() for t in axis.get_yticklabels()] == ["data", "model"]
    assert axis.get_title() == "pairs"


def test_plot_history_draws_each_key_against_epochs_from_one():
    history = {"loss": [3.0, 2.0, 1.0], "val_loss": [4.0, 3.5, 3.0]}
    figure = plotting.plot_history(history, ["loss", "val_loss"], title="t", logy=True)
    (axis,) = figure.axes
    assert [line.get_label() for line in axis.lines] == ["loss", "val_loss"]
    assert list(axis.lines[1].get_xdata()) == [1, 2, 3]
    assert list(axis.lines[1].get_ydata()) == [4.0, 3.5, 3.0]
    assert axis.get_yscale() == "log" and axis.get_xlabel() == "epoch"


def test_class_balance_has_one_bar_per_class_and_split():
    labels = {"train": np.array([0, 0, 1, 2, 2, 2]), "test": np.array([1, 2])}
    figure = plotting.class_balance(labels)
    (axis,) = figure.axes
    heights = [[bar.get_height() for bar in container] for container in axis.containers]
    assert heights == [[2, 1, 3], [0, 1, 1]]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["0", "1", "2"]
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["train", "test"]
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("class", "images")


def test_scatter_2d_plots_points_centres_and_limits():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    figure = plotting.scatter_2d(points, colours=[0, 1, 2], centres=[[0.0, 1.0]], limit=2,
                                 title="ring")
    (axis,) = figure.axes
    dots, centres = axis.collections
    np.testing.assert_array_equal(dots.get_offsets(), points)
    np.testing.assert_array_equal(centres.get_offsets(), [[0.0, 1.0]])
    assert axis.get_xlim() == (-2, 2) and axis.get_ylim() == (-2, 2)
    assert axis.get_title() == "ring"



def test_grid_picture_tiles_a_batch_like_image_grid():
    images = np.zeros((3, 28, 28, 1), "float32")
    images[1] = 1.0
    picture = plotting.grid_picture(images, columns=3, scale=1)
    assert picture.mode == "L" and picture.size == (3 * 29 + 1, 29 + 1)
    pixels = np.asarray(picture)
    assert pixels[1, 1] == 0 and pixels[1, 1 + 29] == 255  # second image white
    np.testing.assert_array_equal(
        pixels, np.round(plotting.tile(images, columns=3)[..., 0] * 255))
    scaled = np.asarray(plotting.grid_picture(images, columns=3, scale=2))
    np.testing.assert_array_equal(scaled[::2, ::2], pixels)


def test_grid_picture_reads_n_h_w_as_a_batch_not_a_canvas():
    # (N, H, W) once came out as an N-pixel-high strip of first columns (28 x 4).
    images = np.random.default_rng(0).uniform(size=(4, 28, 28)).astype("float32")
    picture = plotting.grid_picture(images, columns=2, scale=1)
    assert picture.size == (59, 59)
    np.testing.assert_array_equal(
        np.asarray(picture), np.asarray(plotting.grid_picture(images[..., None],
                                                              columns=2, scale=1)))


@pytest.mark.parametrize("shape", [(28, 28, 1), (28, 28), (2, 28, 28, 3), (1, 2, 28, 28, 1)])
def test_grid_picture_refuses_what_is_not_a_batch_of_grey_images(shape):
    with pytest.raises(ValueError, match=r"\(N, H, W, 1\) or \(N, H, W\); got shape "
                                         + re.escape(str(shape))):
        plotting.grid_picture(np.zeros(shape, "float32"))


def test_save_png_writes_one_grey_grid_atomically(tmp_path):
    images = np.linspace(0, 1, 4 * 28 * 28, dtype="float32").reshape(4, 28, 28, 1)
    path = plotting.save_png(tmp_path / "x.png", images, columns=2, scale=2)
    with Image.open(path) as picture:
        # 2x2 tiles of 28 px with 1-px borders, doubled: (2 * 29 + 1) * 2.
        assert picture.size == (118, 118) and picture.mode == "L"
        pixels = np.asarray(picture)
    assert pixels.min() == 0 and pixels.max() == 255
    plotting.save_png(tmp_path / "y.png", images[..., 0], columns=2, scale=2)
    with Image.open(tmp_path / "y.png") as again:
        np.testing.assert_array_equal(np.asarray(again), pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png", "y.png"]


def test_save_animation_of_one_video_shows_a_frame_a_picture(tmp_path):
    video = np.stack([np.full((8, 8, 1), t / 4) for t in range(5)])  # (T, H, W, 1)
    path = plotting.save_animation(video, tmp_path / "v.gif", scale=1)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (8 + 2, 8 + 2)
    grids = [np.zeros((4, 8, 8)), np.ones((4, 8, 8))]  # (N, H, W) grids
    with Image.open(plotting.save_animation(grids, tmp_path / "g.gif", columns=2,
                                            scale=1)) as gif:
        assert gif.n_frames == 2 and gif.size == (2 * 9 + 1, 2 * 9 + 1)


def test_grids_side_by_side_shows_each_grid_with_its_title():
    grids = [np.zeros((16, 28, 28, 1)), np.ones((16, 28, 28, 1))]
    figure = plotting.grids_side_by_side(grids, ["live", "checkpoint"], columns=4)
    assert [axis.get_title() for axis in figure.axes] == ["live", "checkpoint"]
    assert figure.axes[1].images[0].get_array().shape == plotting.tile(grids[1], 4)[..., 0].shape
    with pytest.raises(ValueError, match="`titles` needs one title a grid"):
        plotting.grids_side_by_side(grids, ["only one"])


def test_training_curves_mark_the_selected_epoch():
    record = {"training": {"selected_epoch": 4, "validation_metric": "NLL (nats)",
                           "history": {"loss": [3.0, 2.0, 1.5, 1.2, 1.1],
                                       "epoch": [2, 4, 5], "validation": [2.5, 1.4, 1.6]}}}
    figure = plotting.training_curves(record)
    left, right = figure.axes
    assert list(left.lines[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert list(right.lines[0].get_ydata()) == [2.5, 1.4, 1.6]
    assert list(right.lines[1].get_xdata()) == [4, 4]  # the vertical line at the kept epoch
    assert "epoch 4" in right.get_legend().get_texts()[0].get_text()
