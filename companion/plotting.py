"""Plot helpers. Each returns a matplotlib figure (or writes a file); notebooks display.

Images are batches `(N, H, W, 1)` (or `(N, H, W)`) of grey levels in [0, 1]
everywhere here: :func:`image_grid` shows one as a figure, :func:`save_png`
and :func:`save_animation` write them as files, through the one encoder
:func:`grid_picture` and the atomic writer of :mod:`companion.checkpoint`.

Example:

>>> import numpy as np
>>> from companion import plotting
>>> figure = plotting.image_grid(np.zeros((8, 28, 28, 1)), columns=4)
>>> len(figure.axes)
1
"""

import math
import pathlib

import numpy as np

from companion.checkpoint import atomic_path

STYLE = {"figure.dpi": 100, "savefig.dpi": 100}
"""The book's figure style (matplotlib ``rcParams``); :func:`companion.environment.use_book_defaults` applies it."""


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def tile(images, columns=8, pad=1, pad_value=1.0):
    """Tile `(N, H, W, C)` images into one `(rows*H', columns*W', C)` array."""
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    canvas = np.full(
        (rows * (height + pad) + pad, columns * (width + pad) + pad, channels),
        pad_value, dtype="float32",
    )
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        canvas[top:top + height, left:left + width] = image
    return canvas


def image_grid(images, columns=8, title=None, size=None, labels=None):
    """Show `(N, H, W, 1)` images in [0, 1] as one grid; returns the figure.

    Args:
        images: array `(N, H, W, 1)` (or `(N, H, W)`), values in [0, 1].
        columns: images a row.
        title: figure title.
        size: figure size in inches, or None to scale with the grid.
        labels: optional row labels (one string per row), shown on the left.
    """
    plt = _pyplot()
    canvas = tile(images, columns)
    rows = math.ceil(len(images) / max(1, min(columns, len(images))))
    if size is None:
        size = (min(12, 0.6 * columns + 1), min(12, 0.6 * rows + 0.6))
    figure, axis = plt.subplots(figsize=size)
    axis.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_xticks([])
    if labels is not None:
        cell = canvas.shape[0] / rows
        axis.set_yticks([cell * (r + 0.5) for r in range(rows)], labels)
    else:
        axis.set_yticks([])
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return figure


def image_rows(rows, row_labels, title=None, columns=None):
    """Show several image sets of the same length as labelled rows of one grid."""
    stacked = np.concatenate([np.asarray(r, dtype="float32") for r in rows], axis=0)
    return image_grid(stacked, columns=columns or len(rows[0]), title=title,
                      labels=row_labels)


def plot_history(history, keys, title=None, xlabel="epoch", logy=False):
    """Plot curves from a Keras `History` (or a dict of lists); returns the figure."""
    plt = _pyplot()
    values = getattr(history, "history", history)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        if key not in values:
            raise ValueError(f"`keys` has {key!r}, which the history lacks; "
                             f"it has {sorted(values)}.")
        series = values[key]
        axis.plot(np.arange(1, len(series) + 1), series, label=key)
    axis.set_xlabel(xlabel)
    if logy:
        axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return figure


def grids_side_by_side(grids, titles, columns=8):
    """Show image sets as grids next to each other (e.g. a live model and a checkpoint).

    Args:
        grids: a list of `(N, H, W, 1)` arrays in [0, 1].
        titles: one title a grid.
        columns: images a row of each grid.

    Example:

    >>> figure = grids_side_by_side([np.zeros((4, 28, 28, 1))] * 2, ["a", "b"], columns=2)
    >>> len(figure.axes)
    2
    """
    if len(grids) != len(titles):
        raise ValueError(f"`titles` needs one title a grid ({len(grids)}); "
                         f"got {len(titles)}.")
    plt = _pyplot()
    canvases = [tile(images, columns) for images in grids]
    height = 0.6 * canvases[0].shape[0] / canvases[0].shape[1] * columns + 0.6
    figure, axes = plt.subplots(1, len(grids), figsize=(0.6 * columns * len(grids) + 1,
                                                        height))
    for axis, canvas, title in zip(np.atleast_1d(axes), canvases, titles):
        axis.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0,
                    interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_title(title)
    figure.tight_layout()
    return figure


def training_curves(record):
    """A checkpoint's training loss by epoch and its validation score by check.

    Args:
        record: a checkpoint's record (:func:`companion.pretrained.card`).

    Returns:
        A figure with two panels; the selected epoch is marked on the second.
    """
    plt = _pyplot()
    training = record["training"]
    history = training["history"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.plot(np.arange(1, len(history["loss"]) + 1), history["loss"])
    left.set_title("training loss (each epoch)")
    right.plot(history["epoch"], history["validation"], marker=".")
    right.axvline(training["selected_epoch"], color="grey", linestyle="--",
                  label=f"kept: epoch {training['selected_epoch']}")
    right.set_title(f"validation {training['validation_metric']}")
    right.legend()
    for axis in (left, right):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def sampling_steps(rows, floor=None):
    """Quality and cost of a diffusion model's samples against its integration steps.

    Args:
        rows: the ``steps`` rows of a diffusion record's sweeps
            (:func:`companion.pretrained.sweeps`): dicts with ``sampler``,
            ``steps``, ``network_calls``, ``frechet``, ``seconds_per_1000``
            (and, for Euler, ``guided_seconds_per_1000``).
        floor: the Fréchet distance of real digits, drawn as a line.

    Returns:
        A figure with two panels: Fréchet distance and seconds per 1,000
        samples, both against the network calls a sample costs.
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for index, sampler in enumerate(dict.fromkeys(row["sampler"] for row in rows)):
        own = [row for row in rows if row["sampler"] == sampler]
        calls, colour = [row["network_calls"] for row in own], f"C{index}"
        left.plot(calls, [row["frechet"] for row in own], marker="o", color=colour,
                  label=sampler)
        right.plot(calls, [row["seconds_per_1000"] for row in own], marker="o",
                   color=colour, label=f"{sampler}, guidance 1")
        if "guided_seconds_per_1000" in own[0]:
            right.plot(calls, [row["guided_seconds_per_1000"] for row in own], marker="s",
                       color=colour, linestyle="--", label=f"{sampler}, guided (doubled batch)")
    if floor is not None:
        left.axhline(floor, color="grey", linestyle=":", label="real digits (floor)")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    left.set_ylabel("Fréchet distance (log scale)")
    left.set_yscale("log")
    right.set_ylabel("seconds per 1,000 samples")
    every_count = sorted({row["network_calls"] for row in rows})
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xticks(every_count)
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("network calls a sample (steps; Heun: 2 a step)")
        axis.grid(alpha=0.3)
        axis.legend()
    left.set_yticks([tick for tick in (2, 3, 5, 10, 20, 50, 100)
                     if min(row["frechet"] for row in rows) / 2 <= tick
                     <= 2 * max(row["frechet"] for row in rows)])
    left.yaxis.set_major_formatter(ScalarFormatter())
    left.yaxis.set_minor_formatter(NullFormatter())
    figure.tight_layout()
    return figure


def guidance_tradeoff(rows):
    """Agreement with the requested digit and Fréchet distance against the guidance scale.

    Args:
        rows: the ``guidance`` rows of a diffusion record's sweeps: dicts with
            ``guidance``, ``agreement``, ``frechet``, ``precision``, ``recall``.

    Returns:
        A figure with two panels.
    """
    plt = _pyplot()
    scales = [row["guidance"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.plot(scales, [row["agreement"] for row in rows], marker="o",
              label="classifier reads the requested digit")
    left.plot(scales, [row["precision"] for row in rows], marker="s", label="precision")
    left.plot(scales, [row["recall"] for row in rows], marker="^", label="recall")
    left.set_ylabel("fraction")
    right.plot(scales, [row["frechet"] for row in rows], marker="o", color="C3")
    right.set_ylabel("Fréchet distance")
    for axis in (left, right):
        axis.set_xlabel("guidance scale w")
        axis.grid(alpha=0.3)
    left.legend()
    figure.tight_layout()
    return figure


def grid_picture(images, columns=8, scale=2):
    """A batch of grey images in [0, 1] as one grey PIL picture of a grid.

    The one encoder of the package's image files: :func:`save_png` writes
    it, and a GIF (:func:`save_animation`) is a sequence of them. The grid is
    :func:`tile`'s, as :func:`image_grid` shows it.

    Args:
        images: float images in [0, 1], `(N, H, W, 1)` or `(N, H, W)` (a
            channel axis is added, as :func:`image_grid` does). One image is
            ``image[None]``.
        columns: images per row of the grid.
        scale: each pixel becomes a `scale` x `scale` block.

    Returns:
        A ``PIL.Image.Image`` in mode ``"L"``.

    Raises:
        ValueError: for any other shape: not three or four axes, more than one
            channel, or a 3-D array ending in an axis of 1 (one image
            `(H, W, 1)` or a tiled canvas, not a batch: pass ``image[None]``).

    Example:

    >>> grid_picture(np.zeros((4, 28, 28, 1)), columns=2, scale=1).size
    (59, 59)
    >>> grid_picture(np.zeros((4, 28, 28)), columns=2, scale=1).size
    (59, 59)
    """
    from PIL import Image

    images = np.asarray(images, dtype="float32")
    if images.ndim == 3 and images.shape[-1] != 1:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(
            f"`images` must be a batch of grey images, shape (N, H, W, 1) or "
            f"(N, H, W); got shape {images.shape} (one image (H, W, 1) is "
            "`image[None]`).")
    canvas = tile(images, columns=columns)[..., 0]
    pixels = np.round(np.clip(canvas, 0.0, 1.0) * 255).astype("uint8")
    picture = Image.fromarray(pixels)  # uint8, two axes: mode "L"
    return picture.resize((picture.width * scale, picture.height * scale),
                          Image.Resampling.NEAREST)


def save_png(path, images, columns=8, scale=2):
    """Save a batch of grey images in [0, 1] as one PNG grid, atomically.

    Args:
        path: destination file.
        images: `(N, H, W, 1)` or `(N, H, W)` floats in [0, 1] (see :func:`grid_picture`).
        columns: images per row of the grid.
        scale: each pixel becomes a `scale` x `scale` block.

    Returns:
        `path`, as a `pathlib.Path`.
    """
    picture = grid_picture(images, columns=columns, scale=scale)
    path = pathlib.Path(path)
    with atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")
    return path


def save_animation(frames, path, columns=8, duration_ms=300, scale=3):
    """Write a GIF of image grids (one grid a frame) and return its path.

    Args:
        frames: sequence of `(N, H, W, 1)` (or `(N, H, W)`) arrays in [0, 1]
            (e.g. the grids a :class:`companion.training.SampleGrid` callback
            recorded), or one `(T, H, W, 1)` array for a single video (each
            frame a grid of one image).
        path: where to write the GIF (written to a temporary file, then renamed).
        columns: images a row in each grid.
        duration_ms: time a frame is shown.
        scale: integer upscaling of pixels, so small images stay visible.
    """
    if isinstance(frames, np.ndarray) and frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[:, None]  # one video: a grid of one image a frame
    frames = list(frames)
    if not frames:
        raise ValueError("`frames` is empty; record at least one grid.")
    pictures = [grid_picture(frame, columns=columns, scale=scale) for frame in frames]
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        pictures[0].save(temporary, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=duration_ms, loop=0, optimize=False)
    return path


def class_balance(labels_by_split, title="Images per class"):
    """Bar chart of class counts, one group of bars per split; returns the figure.

    Args:
        labels_by_split: dict mapping a split name to an int array of labels.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3))
    names = list(labels_by_split)
    classes = np.arange(int(max(np.max(v) for v in labels_by_split.values())) + 1)
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        counts = np.bincount(labels_by_split[name], minlength=len(classes))
        axis.bar(classes + index * width, counts, width=width, label=name)
    axis.set_xticks(classes + 0.4 - width / 2, [str(c) for c in classes])
    axis.set_xlabel("class")
    axis.set_ylabel("images")
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    return figure


def scatter_2d(points, colours=None, title=None, centres=None, limit=None):
    """Scatter plot of 2-D points (optionally coloured, with marked centres)."""
    plt = _pyplot()
    points = np.asarray(points)
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.scatter(points[:, 0], points[:, 1], c=colours, s=4, alpha=0.6,
                 cmap="tab10" if colours is not None else None)
    if centres is not None:
        centres = np.asarray(centres)
        axis.scatter(centres[:, 0], centres[:, 1], marker="x", c="black", s=60)
    if limit is not None:
        axis.set_xlim(-limit, limit)
        axis.set_ylim(-limit, limit)
    axis.set_aspect("equal")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return figure
