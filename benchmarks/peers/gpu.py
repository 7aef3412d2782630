"""Train one family on full MNIST with its GPU configuration: speed, time to target, memory.

    python -m benchmarks.peers.gpu --family vae            # on a GPU machine
    python -m benchmarks.peers.gpu --family vae --smoke    # seconds, on any CPU

``benchmarks/gpu.sh`` runs it once a family (a fresh process each, so the
device's peak memory is the family's own) and gathers the results into
``benchmarks/gpu_results.json``, which the Performance page reads.

Each family trains as its notebook's ``DATASET = "mnist"`` branch configures it
(:data:`GPU_CONFIGS`), one ``fit`` epoch at a time. Every `eval_every` epochs
the chapter's quality figure is measured (its time not counted as training):

- DCGAN: the label entropy of 1,000 samples (:func:`companion.evaluation.sample_quality`
  with the embedded ``mnist10k`` reference classifier), target >= 0.95;
- VAE: the importance-weighted bound (k = 200) in nats on the first 1,000
  binarised MNIST test digits, target <= 100;
- row LSTM: its exact NLL on the same digits, target <= 95.

Recorded: images/s of the best epoch after the first, the first epoch's
seconds (compilation), the training seconds until the target was first met
(None if never), the device's peak memory, and the device's description.
``--smoke`` trains tiny models on 512 embedded digits for two epochs (no
download), to check the script on a CPU.
"""

import argparse
import json
import pathlib
import time

import companion  # noqa: F401  (selects Keras' JAX backend first)
import jax

from companion import data, evaluation, models

GPU_CONFIGS = {  # the notebooks' `if DATASET == "mnist":` settings
    "gan": {"epochs": 20, "batch_size": 128, "make_model": {
        "width": 64, "latent_dim": 100, "dropout": 0.3,
        "d_learning_rate": 2e-4, "g_learning_rate": 2e-4}},
    "vae": {"epochs": 50, "batch_size": 128, "make_model": {"width": 32}},
    "rnn": {"epochs": 8, "batch_size": 32, "make_model": {}},
}
TARGETS = {"gan": ("label_entropy", ">=", 0.95), "vae": ("iwae_nll", "<=", 100.0),
           "rnn": ("nll", "<=", 95.0)}
EVAL_EVERY = {"gan": 2, "vae": 5, "rnn": 1}


def quality(family, model, test, smoke=False):
    """The chapter's quality figure of a model (see the module's docstring)."""
    if family == "gan":
        samples = model.sample(100 if smoke else 1000, seed=0)
        return float(evaluation.sample_quality(samples, "mnist10k")["label_entropy"])
    if family == "vae":
        return float(-model.log_likelihood(test, num_samples=10 if smoke else 200,
                                           seed=0).mean())
    return float(-model.log_likelihood(test).mean())


def met(family, value):
    _, sense, target = TARGETS[family]
    return value >= target if sense == ">=" else value <= target


def peak_memory_bytes():
    """The device's peak memory in use; None where the backend has no figure (CPU)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def load(family, smoke, path=None):
    value_range = models.family(family).module.VALUE_RANGE
    if smoke:
        train, _ = data.load("mnist10k", "train", value_range=value_range)
        test, _ = data.load("mnist10k", "test", value_range="binary")
        return train[:512], test[:100]
    train, _ = data.load("mnist", "train", value_range=value_range, path=path)
    test, _ = data.load("mnist", "test", value_range="binary", path=path)
    return train, test[:1000]


def train(family, smoke=False, budget_seconds=140.0, path=None):
    """Train `family` epoch by epoch, for its epochs or `budget_seconds` of training."""
    config = GPU_CONFIGS[family]
    kwargs = dict(models.family(family).tiny if smoke else config["make_model"])
    epochs = 2 if smoke else config["epochs"]
    images, test = load(family, smoke, path)
    model = models.build(family, len(images), epochs, config["batch_size"], **kwargs)
    seconds, history, reached = [], [], None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.fit(images, batch_size=config["batch_size"], epochs=1, shuffle=True,
                  verbose=0)
        jax.block_until_ready([v.value for v in model.variables])
        seconds.append(time.perf_counter() - start)
        if epoch % EVAL_EVERY[family] == 0 or epoch == epochs:
            value = quality(family, model, test, smoke)
            history.append({"epoch": epoch, "train_seconds": sum(seconds),
                            TARGETS[family][0]: value})
            if reached is None and met(family, value):
                reached = {"epoch": epoch, "train_seconds": sum(seconds)}
        if sum(seconds) > budget_seconds:
            break
    steady = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {"family": family, "config": {**config, "make_model": kwargs, "epochs": epochs},
            "images": len(images), "epochs_run": len(seconds), "epoch_seconds": seconds,
            "first_epoch_seconds": seconds[0], "images_per_second": len(images) / steady,
            "target": list(TARGETS[family]), "quality": history, "target_reached": reached,
            "peak_memory_bytes": peak_memory_bytes(),
            "device": str(jax.local_devices()[0].device_kind),
            "platform": jax.default_backend(), "smoke": smoke}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=models.FAMILIES, required=True)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models on 512 embedded digits (any CPU, no download)")
    parser.add_argument("--budget-seconds", type=float, default=140.0,
                        help="stop training after this many seconds")
    parser.add_argument("--mnist", default=None,
                        help="local MNIST (.npz or IDX folder); default: Keras' cache")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    result = train(args.family, args.smoke, args.budget_seconds, args.mnist)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("family", "images_per_second",
                                            "target_reached", "peak_memory_bytes")}))


def gather(paths, out):
    """Merge per-family JSON files into one results file, by family."""
    if not paths:
        raise SystemExit("gpu.py gather: no family finished; nothing to write.")
    found = [json.loads(pathlib.Path(path).read_text()) for path in paths]
    results = {row["family"]: row for row in sorted(
        found, key=lambda row: models.FAMILIES.index(row["family"]))}
    pathlib.Path(out).write_text(json.dumps(results, indent=1) + "\n")
    pathlib.Path(out).with_suffix(".md").write_text(to_markdown(results))
    return results


NAMES = {"gan": "DCGAN", "vae": "conv. VAE", "rnn": "row LSTM"}


def to_markdown(results):
    """The GPU table the Performance page includes (``benchmarks/gpu_results.md``)."""
    lines = ["| model | device | images/s | first epoch (s) | epochs | target | "
             "reached after (training s) | peak device memory (GiB) |",
             "|---|---|---:|---:|---:|---|---:|---:|"]
    for family, row in results.items():
        name, sense, target = row["target"]
        reached = row["target_reached"]
        reached = "not reached" if reached is None else f"{reached['train_seconds']:.0f}"
        memory = row["peak_memory_bytes"]
        memory = "n/a" if memory is None else f"{memory / 2**30:.2f}"
        lines.append(
            f"| {NAMES[family]} | {row['device']} | {row['images_per_second']:,.0f} | "
            f"{row['first_epoch_seconds']:.1f} | {row['epochs_run']} | "
            f"{name} {sense} {target:g} | {reached} | {memory} |")
    smoke = any(row["smoke"] for row in results.values())
    lines += ["", "A smoke run (tiny models, CPU): not a measurement." if smoke else
              "Full MNIST (60,000 training digits), each family's GPU configuration "
              "(`benchmarks/peers/gpu.py`), one process a family."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["gather"]:
        gather(sys.argv[3:], sys.argv[2])
    else:
        main()
