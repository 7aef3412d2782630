"""Training throughput: ``fit`` against the model's own step in a raw ``jax.jit`` loop.

For each family as the book configures it (``make_model()``,
``BOOK_CONFIG["batch_size"]``) or, in quick mode, its registry's tiny
configuration (:data:`companion.models.REGISTRY`): images/s of ``fit`` and of
the raw loop, timed in alternation, each step's FLOPs and the time to sample.
"""

import statistics
import time

import companion  # noqa: F401  (selects Keras' JAX backend before keras loads)
import jax
import numpy as np

from benchmarks import report
from benchmarks.flops import xla_flops
from benchmarks.machine import load_average
from companion import comparison, data, models

FULL = {"images": None, "rounds": 5, "spe": 16}
"""A full run: every training image, five timed rounds, the steps_per_execution trial's 16."""
QUICK = {"images": 128, "rounds": 1, "spe": 2}
"""The smoke run the tests use: 128 images, one round."""


def training_images(name, limit=None):
    """The book's training digits in the family's value range (first `limit`)."""
    return data.load_images("mnist10k", "train", models.family(name).module.VALUE_RANGE,
                            limit=limit)


def _synchronising_timer():
    """An `EpochTimer` that waits for the epoch's last step before stopping the clock.

    JAX dispatches asynchronously: without waiting, an epoch could end on the
    clock before its last steps have run (the raw loop waits the same way).
    """
    from companion.training import EpochTimer

    class SynchronisingEpochTimer(EpochTimer):
        def on_epoch_end(self, epoch, logs=None):
            jax.block_until_ready([v.value for v in self.model.variables])
            super().on_epoch_end(epoch, logs)

    return SynchronisingEpochTimer()


def fit_epoch(model, images, batch_size, timer):
    """Train one epoch with ``fit`` (shuffled); `timer` records its wall time."""
    model.fit(images, batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
              callbacks=[timer])
    return timer.seconds[-1]


def model_state(model, first_batch):
    """The state tuple ``fit`` threads through ``train_step`` on JAX.

    ``(trainable, non_trainable, optimizer, metrics)`` variable values, in
    the order Keras' JAX trainer uses. A ``fit`` of zero epochs on
    `first_batch` builds what ``fit`` builds before its first step (the
    model, its metrics and its optimiser) and trains nothing.
    """
    model.fit(first_batch, batch_size=len(first_batch), epochs=0, verbose=0)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables],
            [v.value for v in model.metrics_variables])


class RawLoop:
    """The model's own ``train_step`` in a hand-written ``jax.jit`` loop.

    The computation is exactly ``fit``'s: the same stateless ``train_step``
    (model, loss, optimiser, metric updates) on the same batches, one jitted
    call a batch with the state donated, as Keras' JAX trainer does. What is
    left out is everything around the step: shuffling, slicing and copying
    each batch to the device, callbacks and Python bookkeeping. The data is
    put on the device once.

    Args:
        model: a compiled model, not yet trained.
        images: numpy training data.
        batch_size: batch size (the last batch may be smaller, as in ``fit``).

    Attributes:
        compile_seconds: wall time of the first epoch (mostly compilation).
        flops_per_step: FLOPs of one full-batch step, from XLA's cost analysis.
    """

    def __init__(self, model, images, batch_size):
        self.batches = [jax.device_put(images[i:i + batch_size])
                        for i in range(0, len(images), batch_size)]
        self.state = model_state(model, images[:batch_size])
        self.step = jax.jit(model.train_step, donate_argnums=0)
        start = time.perf_counter()
        compiled = {}
        for batch in self.batches:
            if batch.shape not in compiled:  # `self.step` reuses this compilation
                compiled[batch.shape] = self.step.lower(self.state, batch).compile()
            _, self.state = self.step(self.state, batch)
        jax.block_until_ready(self.state)
        self.compile_seconds = time.perf_counter() - start
        self.flops_per_step = xla_flops(compiled[self.batches[0].shape])

    def epoch(self):
        """Run one epoch; return its wall time in seconds."""
        start = time.perf_counter()
        for batch in self.batches:
            _, self.state = self.step(self.state, batch)
        jax.block_until_ready(self.state)
        return time.perf_counter() - start


def compare_fit_and_raw(module, kwargs, images, batch_size, rounds):
    """Time `rounds` epochs of ``fit`` and of the raw loop, interleaved.

    Each round runs one ``fit`` epoch then one raw epoch, so a change in the
    machine's load hits both alike. The first (compiling) epoch of each is
    run before and not timed.

    Returns:
        ``(fit_model, fit_seconds, raw_loop)``: fit_seconds includes the
        first epoch at index 0.
    """
    fit_model = module.make_model(seed=0, **kwargs)
    timer = _synchronising_timer()
    fit_epoch(fit_model, images, batch_size, timer)
    raw = RawLoop(module.make_model(seed=0, **kwargs), images, batch_size)
    raw.seconds = []
    for _ in range(rounds):
        fit_epoch(fit_model, images, batch_size, timer)
        raw.seconds.append(raw.epoch())
    return fit_model, list(timer.seconds), raw


def time_sampling(model, num=report.SAMPLES):
    """Seconds to draw `num` samples: the first call (with compilation) and the next."""
    start = time.perf_counter()
    first = np.asarray(model.sample(num, seed=0))
    first_seconds = time.perf_counter() - start
    start = time.perf_counter()
    np.asarray(model.sample(num, seed=1))
    seconds = time.perf_counter() - start
    return {"num": num, "seconds": seconds, "first_call_seconds": first_seconds,
            "shape": list(first.shape)}


def benchmark_family(name, quick=False, peak_gflops=None, sample=True):
    """Measure one family: fit vs raw throughput, FLOP/s, sampling speed.

    Args:
        name: ``"gan"``, ``"vae"`` or ``"rnn"``.
        quick: tiny models on 128 images (the smoke mode the tests run).
        peak_gflops: the matmul peak, for the achieved fraction.
        sample: also time drawing 1,000 samples.

    Returns:
        A dict of the measurements (see the keys written to the JSON file).
    """
    settings = QUICK if quick else FULL
    module = models.family(name).module
    kwargs = models.family(name).tiny if quick else {}
    batch_size = module.BOOK_CONFIG["batch_size"]
    images = training_images(name, settings["images"])
    result = {"family": name, "batch_size": batch_size, "images": len(images),
              "model_kwargs": kwargs, "load_before": load_average()}

    fit_model, fit_seconds, raw = compare_fit_and_raw(
        module, kwargs, images, batch_size, settings["rounds"])
    result["parameters"] = comparison.count_parameters(fit_model)
    timed_fit = fit_seconds[1:]
    fit_best, raw_best = min(timed_fit), min(raw.seconds)
    steps = -(-len(images) // batch_size)
    result.update({
        "fit_epoch_seconds": fit_seconds,
        "raw_epoch_seconds": raw.seconds,
        "fit_first_epoch_seconds": fit_seconds[0],
        "raw_compile_seconds": raw.compile_seconds,
        "fit_images_per_second": len(images) / fit_best,
        "fit_images_per_second_median": len(images) / statistics.median(timed_fit),
        "raw_images_per_second": len(images) / raw_best,
        "raw_images_per_second_median": len(images) / statistics.median(raw.seconds),
        "fit_over_raw": raw_best / fit_best,
        "steps_per_epoch": steps,
        "flops_per_step": raw.flops_per_step,
    })
    if raw.flops_per_step:
        achieved = raw.flops_per_step * steps / raw_best / 1e9
        result["raw_gflops"] = achieved
        if peak_gflops:
            result["fraction_of_peak"] = achieved / peak_gflops
    if sample:
        result["sampling"] = time_sampling(fit_model)
    result["load_after"] = load_average()
    return result


def steps_per_execution_trial(name, quick=False, steps=16):
    """fit throughput with ``steps_per_execution=steps`` (an investigation)."""
    settings = QUICK if quick else FULL
    module = models.family(name).module
    model = module.make_model(seed=0, **(models.family(name).tiny if quick else {}))
    model.steps_per_execution = steps
    model.train_function = None
    images = training_images(name, settings["images"])
    batch_size = module.BOOK_CONFIG["batch_size"]
    timer = _synchronising_timer()
    for _ in range(1 + settings["rounds"]):
        fit_epoch(model, images, batch_size, timer)
    seconds = list(timer.seconds)
    return {"steps_per_execution": steps, "epoch_seconds": seconds,
            "images_per_second": len(images) / min(seconds[1:])}
