"""The book's generative models, one family a module, and the registry of the families.

- :mod:`companion.models.gan`: DCGAN generator, discriminator and the `GAN` model.
- :mod:`companion.models.vae`: convolutional VAE with a Bernoulli decoder.
- :mod:`companion.models.rnn`: row-by-row autoregressive `RowRNN`.
- :mod:`companion.models.video`: next-frame prediction for small videos.
- :mod:`companion.models.toy`: small MLP models for the 1-D and 2-D experiments,
  with the packed and minibatch-standard-deviation discriminators of the
  analysis chapter's mode-collapse remedies.
- :mod:`companion.models.wgan`: WGAN-GP, a remedy for mode collapse on the loss side.
- :mod:`companion.models.diffusion`: class-conditional flow matching with a
  small U-Net and classifier-free guidance.

Every generative model has ``sample(num, seed=None)`` returning float32 numpy
images in [0, 1] of shape ``(num, 28, 28, 1)``.

:data:`REGISTRY` is the one description of the three image families the
command line, the comparison table and the benchmarks train (:data:`FAMILIES`
are its keys): each family's module, its *size* (the one ``make_model``
argument that scales the network, and what it counts), how its likelihood is
computed, and a tiny configuration for smoke tests. It is plain data and
imports no model module (nor Keras), so the command line's help reads it at
once; a test checks that each ``default_size`` equals its module's ``BOOK_CONFIG``.

Example:

>>> from companion import models
>>> models.FAMILIES
('gan', 'vae', 'rnn')
>>> models.REGISTRY["rnn"].size_argument, models.REGISTRY["rnn"].size_meaning
('units', 'recurrent units of the row LSTM')
"""

import dataclasses
import importlib

from companion._lazy import lazy_submodules
from companion._validation import check_choice

_SUBMODULES = ("gan", "vae", "rnn", "video", "toy", "wgan", "diffusion")

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family of the book, as the tools that train any family see it.

    Attributes:
        name: the key (``"gan"``, ``"vae"``, ``"rnn"``), also the module's name.
        title: its name in tables.
        size_argument: the ``make_model`` argument that sets the network's size
            (the command line's ``--size``).
        size_meaning: what that number counts, in words.
        default_size: the size of the book's model, its module's
            ``BOOK_CONFIG[size_argument]``, repeated here as plain data so
            that reading it imports no model module.
        likelihood: ``"exact"``, ``"IWAE bound"`` or ``"none"`` (no density).
        decays: its learning rates decay to zero over the run: ``make_model``
            takes ``decay_steps`` (its module's ``decay_steps_for`` counts
            them), and a resumed, longer run stretches the decay with its
            module's ``resize_schedule``.
        tiny: ``make_model`` arguments of a tiny network, for smoke tests.
    """

    name: str
    title: str
    size_argument: str
    size_meaning: str
    default_size: int
    likelihood: str
    decays: bool = False
    tiny: dict = dataclasses.field(default_factory=dict)

    @property
    def module(self):
        """The family's module, ``companion.models.<name>`` (imported on use)."""
        return importlib.import_module(f"{__name__}.{self.name}")


REGISTRY = {
    "gan": Family("gan", "GAN (DCGAN)", "width",
                  "base channel count of the generator and the discriminator",
                  16, "none", decays=True, tiny={"width": 4, "latent_dim": 8}),
    "vae": Family("vae", "VAE (convolutional)", "width",
                  "channels of the encoder's first convolution", 16, "IWAE bound",
                  tiny={"width": 4, "latent_dim": 2}),
    "rnn": Family("rnn", "autoregressive (row LSTM)", "units",
                  "recurrent units of the row LSTM", 128, "exact", tiny={"units": 8}),
}
"""The image families, in the book's order: name -> :class:`Family`."""

FAMILIES = tuple(REGISTRY)
"""The families' names: ``("gan", "vae", "rnn")``."""


def register_all():
    """Import every model module, so each saveable class is registered with Keras.

    Keras finds a class of a ``.keras`` file only once its module has been
    imported: :func:`companion.checkpoint.load_model` calls this first.
    """
    for name in _SUBMODULES:
        importlib.import_module(f"{__name__}.{name}")


def family(name, argument="family"):
    """The :class:`Family` called `name`; `ValueError` naming `argument` otherwise."""
    return REGISTRY[check_choice(argument, name, FAMILIES)]


def build(family_name, num_examples, epochs, batch_size, seed=0, **kwargs):
    """The book model of a family, compiled for a run of `epochs` over `num_examples`.

    Each family's ``make_model`` builds its book configuration; a family whose
    learning rates decay over the run (the GAN's cosine) also needs the run's
    length in steps. Use this wherever the run's length is known (the command
    line and the comparison do) so every family trains as the book configures it.

    Args:
        family_name: ``"gan"``, ``"vae"`` or ``"rnn"``.
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
    entry = family(family_name)
    if entry.decays:
        kwargs.setdefault("decay_steps", entry.module.decay_steps_for(num_examples, epochs,
                                                                      batch_size))
    return entry.module.make_model(seed=seed, **kwargs)

