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

from companion._lazy import lazy_submodules

FAMILIES = ("gan", "vae", "rnn")

_SUBMODULES = ("gan", "vae", "rnn", "video", "toy", "wgan")

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)


def build(family, num_examples, epochs, batch_size, seed=0, **kwargs):
    """The book model of `family`, compiled for a run of `epochs` over `num_examples`.

    Each family's ``make_model`` builds its book configuration; the GAN's also
    decays both learning rates to zero over the whole run (cosine), so it needs
    the run's length in steps. Use this wherever the run's length is known (the
    command line does) so every family trains as the book configures it.

    Args:
        family: ``"gan"``, ``"vae"`` or ``"rnn"``.
        num_examples: training images a pass.
        epochs: passes over them.
        batch_size: images a step.
        seed: seed of the initialisation and the training noise.
        **kwargs: passed on to the family's ``make_model`` (e.g. ``width``).

    Returns:
        A compiled model ready for ``fit(images, epochs=epochs, batch_size=batch_size)``.

    Example:

    >>> from companion import models
    >>> model = models.build("gan", num_examples=64, epochs=2, batch_size=32, width=4)
    >>> model.sample(2, seed=0).shape
    (2, 28, 28, 1)
    """
    from companion._validation import check_choice

    module = getattr(importlib.import_module(__name__), check_choice("family", family, FAMILIES))
    if family == "gan":
        kwargs.setdefault("decay_steps", module.decay_steps_for(num_examples, epochs, batch_size))
    return module.make_model(seed=seed, **kwargs)
