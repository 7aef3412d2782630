"""Keras 3 on JAX against PyTorch, the same models timed in one process, interleaved.

    python -m benchmarks.peers                  # all three families, ~5 min on 2 cores
    python -m benchmarks.peers --images 2048 --rounds 2 --families vae

For each family (the book's DCGAN, convolutional VAE and row LSTM with their
``BOOK_CONFIG``) four runners train on the same ``mnist10k`` digits, in the
family's value range and batch size:

- ``jax_fit``: ``make_model()`` and ``model.fit(images, epochs=1, shuffle=True)``;
- ``jax_raw``: the same model's own stateless ``train_step`` in a hand-written
  ``jax.jit`` loop (state donated, batches on the device, no shuffling);
- ``torch_eager`` and ``torch_compiled``: the peers of
  :mod:`benchmarks.peers.torch_models`, without and with ``torch.compile``,
  shuffled by a ``randperm`` a epoch over an in-memory tensor.

Each runner's first epoch (compilation, tracing, warm-up) is timed apart; then
``rounds`` rounds run one epoch of each runner in turn, so a change in the
machine's load hits all four. The best and the median epoch are kept, with
the load average before each round. A second measurement times single steps
on a batch of 2 images: the fixed cost each framework adds to a step (Python
dispatch, launching the compiled program), which dominates when steps are short.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

import companion  # noqa: F401  (selects Keras' JAX backend first)
import jax
import keras
import numpy as np
import torch

from benchmarks.peers import torch_models
from companion import data
from companion.models import gan, rnn, vae

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS_JSON = ROOT / "benchmarks" / "peers_results.json"
RESULTS_MARKDOWN = ROOT / "benchmarks" / "peers_results.md"
FAMILIES = ("gan", "vae", "rnn")
RUNNERS = ("jax_fit", "jax_raw", "torch_eager", "torch_compiled")
MODULES = {"gan": gan, "vae": vae, "rnn": rnn}
TINY_BATCH, TINY_STEPS = 2, 40


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


def _decay_steps(family, images):
    """The GAN's cosine decay over the book's epochs (the other families have none)."""
    if family != "gan":
        return None
    return gan.decay_steps_for(len(images))


def keras_model(family, images):
    steps = _decay_steps(family, images)
    kwargs = {"decay_steps": steps} if steps else {}
    return MODULES[family].make_model(seed=0, **kwargs)


class JaxFit:
    """Keras ``fit``, one epoch a call, waiting for the device at the end."""

    def __init__(self, family, images):
        self.model = keras_model(family, images)
        self.images = images
        self.batch_size = MODULES[family].BOOK_CONFIG["batch_size"]

    def epoch(self, images=None, batch_size=None):
        images = self.images if images is None else images
        start = time.perf_counter()
        self.model.fit(images, batch_size=batch_size or self.batch_size, epochs=1,
                       shuffle=True, verbose=0)
        jax.block_until_ready([v.value for v in self.model.variables])
        return time.perf_counter() - start


class JaxRaw:
    """The model's own ``train_step`` in ``jax.jit(donate_argnums=0)``, data on device."""

    def __init__(self, family, images):
        model = keras_model(family, images)
        self.batch_size = MODULES[family].BOOK_CONFIG["batch_size"]
        model._symbolic_build(data_batch=images[:self.batch_size])  # as fit does
        model.optimizer.build(model.trainable_variables)
        self.state = tuple([v.value for v in variables] for variables in (
            model.trainable_variables, model.non_trainable_variables,
            model.optimizer.variables, model.metrics_variables))
        self.step = jax.jit(model.train_step, donate_argnums=0)
        self.batches = self._batches(images, self.batch_size)

    @staticmethod
    def _batches(images, batch_size):
        return [jax.device_put(images[i:i + batch_size])
                for i in range(0, len(images), batch_size)]

    def epoch(self, images=None, batch_size=None):
        batches = self.batches if images is None else self._batches(images, batch_size)
        start = time.perf_counter()
        for batch in batches:
            _, self.state = self.step(self.state, batch)
        jax.block_until_ready(self.state)
        return time.perf_counter() - start


class Torch:
    """A PyTorch peer; each epoch a fresh ``randperm`` of the in-memory images."""

    def __init__(self, family, images, compile=False):
        torch.manual_seed(0)
        self.trainer = torch_models.TRAINERS[family](
            steps=_decay_steps(family, images), compile=compile)
        self.images = torch_models.to_torch_images(images)
        self.batch_size = self.trainer.batch_size

    def epoch(self, images=None, batch_size=None):
        images = self.images if images is None else torch_models.to_torch_images(images)
        batch_size = batch_size or self.batch_size
        start = time.perf_counter()
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch_size):
            self.trainer.step(images[order[i:i + batch_size]])
        return time.perf_counter() - start


def make_runner(name, family, images):
    if name == "jax_fit":
        return JaxFit(family, images)
    if name == "jax_raw":
        return JaxRaw(family, images)
    return Torch(family, images, compile=name == "torch_compiled")


def tiny_step_ms(runner, images):
    """Median milliseconds of a step on a batch of 2: the per-step fixed cost."""
    tiny = images[:TINY_BATCH * TINY_STEPS]
    runner.epoch(tiny, TINY_BATCH)  # compile or warm up for this shape
    seconds = [runner.epoch(tiny, TINY_BATCH) for _ in range(3)]
    return 1000.0 * min(seconds) / TINY_STEPS


def benchmark_family(family, images, rounds, runners=RUNNERS, tiny=True):
    """First epoch, best and median epoch of each runner, interleaved; images/s."""
    made, first, seconds, loads = {}, {}, {name: [] for name in runners}, []
    for name in runners:
        start = time.perf_counter()
        made[name] = make_runner(name, family, images)
        first[name] = time.perf_counter() - start + made[name].epoch()
    for _ in range(rounds):
        loads.append(load_average())
        for name in runners:
            seconds[name].append(made[name].epoch())
    rows = {}
    for name in runners:
        best, median = min(seconds[name]), statistics.median(seconds[name])
        rows[name] = {"first_epoch_seconds": first[name], "epoch_seconds": seconds[name],
                      "best_seconds": best, "median_seconds": median,
                      "images_per_second": len(images) / best,
                      "median_images_per_second": len(images) / median}
        if tiny:
            rows[name]["tiny_step_ms"] = tiny_step_ms(made[name], images)
    reference = rows[runners[0]]["images_per_second"]
    for row in rows.values():
        row["relative_to_first"] = row["images_per_second"] / reference
    return {"images": len(images), "batch_size": made[runners[0]].batch_size,
            "rounds": rounds, "loads": loads, "runners": rows}


def machine():
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "keras": keras.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "jax_compilation_cache": jax.config.jax_compilation_cache_dir}


def run(families=FAMILIES, images=None, rounds=3, runners=RUNNERS, tiny=True):
    torch.set_num_threads(os.cpu_count())
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "machine": machine(), "load_start": load_average(),
        "families": {}}
    for family in families:
        digits, _ = data.load("mnist10k", "train",
                              value_range=MODULES[family].VALUE_RANGE)
        results["families"][family] = benchmark_family(
            family, digits[:images] if images else digits, rounds, runners, tiny)
    if tiny:
        results["operations"] = operation_ms()
    results["load_end"] = load_average()
    return results


LABELS = {"jax_fit": "Keras `fit` (JAX)", "jax_raw": "raw `jax.jit` loop",
          "torch_eager": "PyTorch eager", "torch_compiled": "PyTorch `torch.compile`"}
NAMES = {"gan": "DCGAN", "vae": "conv. VAE", "rnn": "row LSTM"}


def to_markdown(results):
    """The peers table: images/s (best, median), ratio to `fit`, first epoch, tiny step."""
    lines = ["| model | implementation | images/s (best) | images/s (median) | "
             "vs `fit` | first epoch (s) | step on 2 images (ms) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for family, block in results["families"].items():
        for name, row in block["runners"].items():
            tiny = row.get("tiny_step_ms")
            lines.append(
                f"| {NAMES[family]} | {LABELS[name]} | {row['images_per_second']:,.0f} | "
                f"{row['median_images_per_second']:,.0f} | {row['relative_to_first']:.2f} | "
                f"{row['first_epoch_seconds']:.1f} | "
                f"{'' if tiny is None else f'{tiny:.2f}'} |")
    machine = results["machine"]
    loads = [load[0] for block in results["families"].values() for load in block["loads"]]
    sizes = sorted({block["images"] for block in results["families"].values()})
    lines += ["", f"Measured {results['date'][:10]} on {machine['cpu_count']} CPU cores "
              f"(JAX {machine['jax']}, Keras {machine['keras']}, PyTorch "
              f"{machine['torch']} with {machine['torch_threads']} threads), "
              f"{' / '.join(f'{n:,}' for n in sizes)} training digits an epoch, "
              f"{max(b['rounds'] for b in results['families'].values())} interleaved "
              f"rounds; 1-minute load average {min(loads):.1f} to {max(loads):.1f} "
              "during the rounds."]
    if "operations" in results:
        lines += ["", "| layer, forward and backward | Keras on JAX (ms) | the book's layer on "
                  "JAX (ms) | PyTorch (ms) |", "|---|---:|---:|---:|"]
        for name, row in results["operations"].items():
            book = row.get("book_ms")
            lines.append(f"| {OPERATIONS[name][0]} | {row['jax_ms']:.2f} | "
                         f"{'same' if book is None else f'{book:.2f}'} | "
                         f"{row['torch_ms']:.2f} |")
    return "\n".join(lines) + "\n"


# name: (label, kind, batch, input side, input channels, filters, kernel, stride);
# "conv" and "conv_transpose" with Keras' "same" padding, "lstm" over 28 rows.
OPERATIONS = {
    "gan_conv_1": ("DCGAN discriminator, conv 5×5/2, 28×28×1 → 14×14×16",
                   "conv", 64, 28, 1, 16, 5, 2),
    "gan_conv_2": ("DCGAN discriminator, conv 5×5/2, 14×14×16 → 7×7×32",
                   "conv", 64, 14, 16, 32, 5, 2),
    "gan_conv_transpose_1": ("DCGAN generator, transposed conv 5×5/1, 7×7×64 → 7×7×32",
                             "conv_transpose", 64, 7, 64, 32, 5, 1),
    "gan_conv_transpose_2": ("DCGAN generator, transposed conv 5×5/2, 7×7×32 → 14×14×16",
                             "conv_transpose", 64, 7, 32, 16, 5, 2),
    "gan_conv_transpose_3": ("DCGAN generator, transposed conv 5×5/2, 14×14×16 → 28×28×1",
                             "conv_transpose", 64, 14, 16, 1, 5, 2),
    "vae_conv_1": ("VAE encoder, conv 3×3/2, 28×28×1 → 14×14×16", "conv", 64, 28, 1, 16, 3, 2),
    "vae_conv_2": ("VAE encoder, conv 3×3/2, 14×14×16 → 7×7×32", "conv", 64, 14, 16, 32, 3, 2),
    "vae_conv_transpose_1": ("VAE decoder, transposed conv 4×4/2, 7×7×32 → 14×14×32",
                             "conv_transpose", 64, 7, 32, 32, 4, 2),
    "vae_conv_transpose_2": ("VAE decoder, transposed conv 4×4/2, 14×14×32 → 28×28×1",
                             "conv_transpose", 64, 14, 32, 1, 4, 2),
    "lstm": ("row LSTM, 28 steps of 28 inputs, 128 units", "lstm", 32, 28, 28, 128, 0, 0),
}
"""The layers of the three training steps that the operation table times, at the
families' batch sizes (the DCGAN at width 16, the VAE at width 16)."""

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=FAMILIES)
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=RUNNERS)
    parser.add_argument("--images", type=int, default=None,
                        help="training digits an epoch (default: all 9,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tiny", action="store_true",
                        help="skip the per-step cost on batches of 2")
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS_JSON)
    parser.add_argument("--markdown", type=pathlib.Path, default=RESULTS_MARKDOWN)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as inductor_cache:
        # Both compilers start cold: PyTorch's inductor would otherwise reuse the
        # programs of an earlier run from its on-disk cache (JAX's persistent
        # cache is off unless `companion.environment.use_book_defaults()` runs).
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache
        results = run(args.families, args.images, args.rounds, tuple(args.runners),
                      not args.no_tiny)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    args.markdown.write_text(to_markdown(results))
    print(to_markdown(results))


# Single operations: which kernels are faster ---------------------------------------------


def _best_ms(function, repeats=20):
    function()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * min(times)


def _jax_gradient(loss, *arguments):
    step = jax.jit(jax.grad(loss, argnums=tuple(range(len(arguments)))))
    return lambda: jax.block_until_ready(step(*arguments))


def _keras_layer_gradient(layer, shape, rng):
    """Forward and backward of a built Keras layer: gradients of a random projection
    of its output with respect to its weights and its input."""
    layer.build(shape)
    x = rng.standard_normal(shape).astype("float32")
    weights = [v.value for v in layer.trainable_variables]
    state = [v.value for v in layer.non_trainable_variables]
    probe = rng.standard_normal(layer.compute_output_shape(shape)).astype("float32")

    def loss(weights, x):
        return (layer.stateless_call(weights, state, x)[0] * probe).sum()

    return _jax_gradient(loss, weights, x)


def _torch_output(module, x):
    """A module's output tensor (an LSTM returns it with its final states)."""
    out = module(x)
    return out[0] if isinstance(out, tuple) else out


def _torch_layer_gradient(module, shape, rng):
    """The same for a PyTorch module: gradients of its weights and its input."""
    x = torch.from_numpy(rng.standard_normal(shape).astype("float32")).requires_grad_()
    probe = torch.from_numpy(
        rng.standard_normal(_torch_output(module, x).shape).astype("float32"))

    def run():
        x.grad = None
        module.zero_grad()
        (_torch_output(module, x) * probe).sum().backward()
    return run


def _layers(kind, channels, filters, kernel, stride):
    """The Keras layer, the book's layer (None where it uses Keras') and PyTorch's."""
    from companion import layers

    if kind == "lstm":
        return (keras.layers.LSTM(filters, return_sequences=True), None,
                torch.nn.LSTM(channels, filters, batch_first=True))
    # PyTorch's padding that gives Keras' "same" output size (windows may sit a pixel
    # apart, which changes no cost).
    padding = (kernel - 1) // 2
    if kind == "conv":
        return (keras.layers.Conv2D(filters, kernel, strides=stride, padding="same"), None,
                torch.nn.Conv2d(channels, filters, kernel, stride, padding))
    output_padding = stride + 2 * padding - kernel
    return (keras.layers.Conv2DTranspose(filters, kernel, strides=stride, padding="same"),
            layers.Conv2DTranspose(filters, kernel, strides=stride, padding="same"),
            torch.nn.ConvTranspose2d(channels, filters, kernel, stride, padding,
                                     output_padding))


def operation_ms(repeats=20, names=None):
    """Forward and backward (gradients of the inputs and weights) of each layer of
    :data:`OPERATIONS`, alone, at its family's batch: best of `repeats`, in ms, for
    Keras' layer, the book's layer where it differs, and PyTorch's."""
    rng = np.random.default_rng(0)
    results = {}
    for name in names or OPERATIONS:
        _, kind, batch, side, channels, filters, kernel, stride = OPERATIONS[name]
        keras_layer, book_layer, torch_layer = _layers(kind, channels, filters, kernel,
                                                       stride)
        shape = (batch, side, channels) if kind == "lstm" else (batch, side, side, channels)
        torch_shape = shape if kind == "lstm" else (batch, channels, side, side)
        row = {"jax_ms": _best_ms(_keras_layer_gradient(keras_layer, shape, rng), repeats),
               "torch_ms": _best_ms(_torch_layer_gradient(torch_layer, torch_shape, rng),
                                    repeats)}
        if book_layer is not None:
            row["book_ms"] = _best_ms(_keras_layer_gradient(book_layer, shape, rng), repeats)
        results[name] = row
    return results
