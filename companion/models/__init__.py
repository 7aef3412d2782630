"""The book's generative models, one family a module.

- :mod:`companion.models.gan`: DCGAN generator, discriminator and the `GAN` model.
- :mod:`companion.models.vae`: convolutional VAE with a Bernoulli decoder.
- :mod:`companion.models.rnn`: row-by-row autoregressive `RowRNN`.
- :mod:`companion.models.video`: next-frame prediction for small videos.
- :mod:`companion.models.toy`: small MLP models for the 1-D and 2-D experiments.
- :mod:`companion.models.wgan`: WGAN-GP and a minibatch-standard-deviation
  discriminator, the mode-collapse remedies of the analysis chapter.

Every generative model has ``sample(num, seed=None)`` returning float32 numpy
images in [0, 1] of shape ``(num, 28, 28, 1)``.
"""

import importlib

_SUBMODULES = ("gan", "vae", "rnn", "video", "toy", "wgan")


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
