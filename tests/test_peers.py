"""The PyTorch peers of benchmarks/peers compute what the book's Keras models compute.

The model tests are skipped without PyTorch (the optional ``peers`` extra).
With the Keras weights copied in (and Keras' padding alignment), each peer's
loss on a fixed batch equals the Keras loss to float32 rounding: the same
architecture, the same formula, the same computation. The last test checks
the Performance page's sentences against the stored run (no PyTorch needed).
"""

import json

import keras
import numpy as np
import pytest
from keras import ops

from companion import losses
from companion.models import gan, rnn, vae

try:
    import torch

    from benchmarks.peers import torch_models
except ImportError:  # the optional `peers` extra
    torch = None

needs_torch = pytest.mark.skipif(
    torch is None, reason="PyTorch is the optional `peers` extra: pip install -e '.[peers]'")

MODULES = {"gan": gan, "vae": vae, "rnn": rnn}


def _keras_count(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def _images(family, count=16):
    rng = np.random.default_rng(0)
    images = (rng.random((count, 28, 28, 1)) < 0.3).astype("float32")
    return 2.0 * images - 1.0 if MODULES[family].VALUE_RANGE == "symmetric" else images


def _peer(family, model):
    trainer = torch_models.TRAINERS[family](keras_padding=True)
    torch_models.COPIERS[family](trainer, model)
    return trainer


@needs_torch
@pytest.mark.parametrize("family", ["gan", "vae", "rnn"])
def test_parameter_counts_agree(family):
    trainer = torch_models.TRAINERS[family]()
    assert torch_models.count_parameters(trainer.module) == _keras_count(
        MODULES[family].make_model(seed=0))


@needs_torch
def test_gan_losses_agree_with_copied_weights():
    model = gan.make_model(seed=0)
    trainer = _peer("gan", model)
    real = _images("gan")
    z = np.random.default_rng(1).standard_normal((16, model.latent_dim)).astype("float32")
    fake = model.generator(z, training=True)
    expected = (losses.generator_loss(model.discriminator(fake)),
                losses.discriminator_loss(model.discriminator(real),
                                          model.discriminator(fake)))
    found = trainer.module(torch_models.to_torch_images(real), torch.from_numpy(z))
    np.testing.assert_allclose([float(x.detach()) for x in found],
                               [float(x) for x in expected], rtol=1e-4)


@needs_torch
def test_vae_loss_agrees_with_copied_weights():
    model = vae.make_model(seed=0)
    trainer = _peer("vae", model)
    x = _images("vae")
    eps = np.random.default_rng(1).standard_normal((16, model.latent_dim)).astype("float32")
    mean, log_var = model.encoder(x)
    logits = model.decoder(mean + ops.exp(0.5 * log_var) * eps)
    expected = float(losses.vae_loss(x, logits, mean, log_var))
    found = float(trainer.module(torch_models.to_torch_images(x),
                                 eps=torch.from_numpy(eps)).detach())
    assert found == pytest.approx(expected, rel=1e-4)


@needs_torch
def test_rnn_loss_agrees_with_copied_weights():
    model = rnn.make_model(seed=0)
    # A non-zero left kernel, so the strictly-upper-triangular mask is exercised.
    left = np.random.default_rng(2).normal(size=(28, 28)).astype("float32")
    model.left_kernel.assign(left)
    trainer = _peer("rnn", model)
    images = _images("rnn")
    rows = ops.reshape(images, (-1, 28, 28))
    expected = float(ops.mean(losses.autoregressive_nll(
        rows, ops.reshape(model(images), (-1, 28, 28)))))
    found = float(trainer.module(torch_models.to_torch_images(images)).detach())
    assert found == pytest.approx(expected, rel=1e-4)


@needs_torch
@pytest.mark.parametrize("family", ["gan", "vae", "rnn"])
def test_a_training_step_runs_and_lowers_nothing_to_nan(family):
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    trainer = torch_models.TRAINERS[family](steps=10)
    loss = trainer.step(torch_models.to_torch_images(_images(family, 8)))
    assert torch.isfinite(loss)


@needs_torch
def test_the_timing_command_writes_a_table(tmp_path):
    from benchmarks.peers import timing

    json_path, markdown_path = tmp_path / "peers.json", tmp_path / "peers.md"
    timing.main(["--families", "vae", "--images", "128", "--rounds", "1", "--no-tiny",
                 "--runners", "jax_raw", "torch_eager",
                 "--json", str(json_path), "--markdown", str(markdown_path)])
    rows = [line for line in markdown_path.read_text().splitlines()
            if line.startswith("| conv. VAE")]
    assert len(rows) == 2 and "PyTorch eager" in rows[1]
    block = json.loads(json_path.read_text())["families"]["vae"]
    assert block["images"] == 128 and block["runners"]["jax_raw"]["relative_to_first"] == 1.0
