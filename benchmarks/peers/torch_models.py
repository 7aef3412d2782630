"""The book's three training steps written in PyTorch, as a PyTorch user would.

Same architectures, parameter counts, losses, optimisers (Adam with Keras'
epsilon 1e-7, the same learning rates, schedules and clipping) and batch
sizes as ``companion.models.gan``, ``vae`` and ``rnn`` with their
``BOOK_CONFIG``; images are NCHW, as PyTorch's convolutions expect.

Two details differ on purpose from a line-by-line port:

- **Padding.** Keras' ``padding="same"`` with stride 2 pads asymmetrically
  (more after than before); the idiomatic PyTorch ``padding=k // 2`` pads
  symmetrically, which shifts each window by one pixel: the same shapes and
  FLOPs, a different (equally good) function. ``keras_padding=True`` builds
  the exact Keras alignment instead, so :func:`copy_keras_weights` can make
  the two frameworks compute the same numbers (the test does).
- **The LSTM's bias.** ``torch.nn.LSTM`` has two bias vectors (input and
  recurrent) where Keras has one; the recurrent one is frozen at zero, so
  the trainable parameters are the same.

Weights keep PyTorch's default initialisation (Keras uses Glorot-uniform):
the same model, a different random start.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from companion.models import gan, rnn, vae

KERAS_ADAM_EPSILON = 1e-7
KERAS_BATCHNORM = {"eps": 1e-3, "momentum": 0.1}  # Keras' momentum 0.9
"""Keras' BatchNormalization defaults in PyTorch's terms (PyTorch's momentum is
the weight of the *new* batch statistics)."""


def _conv(in_channels, out_channels, kernel_size, keras_padding):
    """A stride-2 "same" convolution: 28 -> 14 -> 7."""
    if not keras_padding:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride=2,
                         padding=kernel_size // 2)
    before = (kernel_size - 2) // 2
    after = kernel_size - 2 - before
    return nn.Sequential(nn.ZeroPad2d((before, after, before, after)),
                         nn.Conv2d(in_channels, out_channels, kernel_size, stride=2))


def _conv_transpose(in_channels, out_channels, kernel_size, stride, keras_padding,
                    bias=True):
    """A "same" transposed convolution: the size times `stride`."""
    if stride == 1 or kernel_size % 2 == 0:  # both conventions agree here
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride,
                                  padding=(kernel_size - stride + 1) // 2, bias=bias)
    if not keras_padding:
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride,
                                  padding=kernel_size // 2, output_padding=stride - 1,
                                  bias=bias)
    padding = (kernel_size - stride) // 2
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride,
                           padding=padding, bias=bias),
        nn.ZeroPad2d((0, -1, 0, -1)))  # crop the last row and column


# DCGAN ---------------------------------------------------------------------------------


class Generator(nn.Module):
    """``Dense -> BN -> (4w, 7, 7) -> ConvT(2w) -> BN -> ConvT(w, x2) -> BN -> ConvT(1, x2)``.

    Leaky ReLU after each batch normalisation, tanh at the end.
    """

    def __init__(self, latent_dim=64, width=16, kernel_size=5, keras_padding=False):
        super().__init__()
        self.width = width
        self.project = nn.Linear(latent_dim, 7 * 7 * 4 * width, bias=False)
        self.project_norm = nn.BatchNorm1d(7 * 7 * 4 * width, **KERAS_BATCHNORM)
        self.body = nn.Sequential(
            _conv_transpose(4 * width, 2 * width, kernel_size, 1, keras_padding, False),
            nn.BatchNorm2d(2 * width, **KERAS_BATCHNORM), nn.LeakyReLU(0.2),
            _conv_transpose(2 * width, width, kernel_size, 2, keras_padding, False),
            nn.BatchNorm2d(width, **KERAS_BATCHNORM), nn.LeakyReLU(0.2),
            _conv_transpose(width, 1, kernel_size, 2, keras_padding),
            nn.Tanh(),
        )

    def forward(self, z):
        x = F.leaky_relu(self.project_norm(self.project(z)), 0.2)
        return self.body(x.view(-1, 4 * self.width, 7, 7))


class Discriminator(nn.Module):
    """``Conv(w, /2) -> Conv(2w, /2) -> Flatten -> Linear(1)``, leaky ReLU between."""

    def __init__(self, width=16, kernel_size=5, keras_padding=False):
        super().__init__()
        self.net = nn.Sequential(
            _conv(1, width, kernel_size, keras_padding), nn.LeakyReLU(0.2),
            _conv(width, 2 * width, kernel_size, keras_padding), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(7 * 7 * 2 * width, 1),
        )

    def forward(self, images):
        return self.net(images)


class GANLosses(nn.Module):
    """Both players' losses on one noise batch (the book's simultaneous step).

    ``g_loss = mean softplus(-D(G(z)))`` (non-saturating) and
    ``d_loss = mean softplus(-D(x)) + mean softplus(D(G(z)))`` with the fakes
    detached: :func:`companion.losses.generator_loss` and
    ``discriminator_loss``.
    """

    def __init__(self, generator, discriminator):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator

    def forward(self, real, z):
        fake = self.generator(z)
        g_loss = F.softplus(-self.discriminator(fake)).mean()
        d_loss = (F.softplus(-self.discriminator(real)).mean()
                  + F.softplus(self.discriminator(fake.detach())).mean())
        return g_loss, d_loss


class GANTrainer:
    """The book's DCGAN step: both gradients at the same weights, then both Adam steps."""

    value_range = gan.VALUE_RANGE
    config = gan.BOOK_CONFIG

    def __init__(self, steps=None, compile=False, keras_padding=False, **config):
        config = {**self.config, **config}
        self.latent_dim = config["latent_dim"]
        self.batch_size = config["batch_size"]
        self.module = GANLosses(
            Generator(config["latent_dim"], config["width"], config["kernel_size"],
                      keras_padding),
            Discriminator(config["width"], config["kernel_size"], keras_padding))
        self.g_params = list(self.module.generator.parameters())
        self.d_params = list(self.module.discriminator.parameters())
        betas = (config["beta_1"], 0.999)
        self.optimizers = [
            torch.optim.Adam(self.g_params, config["g_learning_rate"], betas=betas,
                             eps=KERAS_ADAM_EPSILON),
            torch.optim.Adam(self.d_params, config["d_learning_rate"], betas=betas,
                             eps=KERAS_ADAM_EPSILON)]
        self.schedulers = [_cosine(optimizer, steps) for optimizer in self.optimizers]
        # Each network compiled alone: one graph for both losses would be
        # freed by the first of the two backward passes.
        self.losses = GANLosses(torch.compile(self.module.generator),
                                torch.compile(self.module.discriminator)
                                ) if compile else self.module

    def step(self, real):
        z = torch.randn(real.shape[0], self.latent_dim)
        g_loss, d_loss = self.losses(real, z)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        g_loss.backward(inputs=self.g_params)
        d_loss.backward(inputs=self.d_params)
        for optimizer, scheduler in zip(self.optimizers, self.schedulers):
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        return d_loss.detach()


def _cosine(optimizer, steps):
    """Keras' ``CosineDecay(rate, steps)`` (to 0), stepped once a batch; None: constant."""
    if steps is None:
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)


# Convolutional VAE ----------------------------------------------------------------------


class VAE(nn.Module):
    """Encoder ``Conv(w)/2 -> Conv(2w)/2 -> Linear(8w) -> (mean, log_var)``,
    decoder ``Linear(7*7*2w) -> ConvT(2w)x2 -> ConvT(1)x2`` (Bernoulli logits).

    ``forward(x)`` returns the batch's mean negative ELBO in nats,
    :func:`companion.losses.vae_loss` with beta = 1.
    """

    def __init__(self, latent_dim=32, width=16, keras_padding=False):
        super().__init__()
        self.width = width
        self.encoder = nn.Sequential(
            _conv(1, width, 3, keras_padding), nn.ReLU(),
            _conv(width, 2 * width, 3, keras_padding), nn.ReLU(),
            nn.Flatten(), nn.Linear(7 * 7 * 2 * width, 8 * width), nn.ReLU())
        self.mean = nn.Linear(8 * width, latent_dim)
        self.log_var = nn.Linear(8 * width, latent_dim)
        self.project = nn.Linear(latent_dim, 7 * 7 * 2 * width)
        self.decoder = nn.Sequential(
            _conv_transpose(2 * width, 2 * width, 4, 2, keras_padding), nn.ReLU(),
            _conv_transpose(2 * width, 1, 4, 2, keras_padding))

    def decode(self, z):
        x = F.relu(self.project(z)).view(-1, 2 * self.width, 7, 7)
        return self.decoder(x)

    def forward(self, x, eps=None):
        hidden = self.encoder(x)
        mean, log_var = self.mean(hidden), self.log_var(hidden)
        if eps is None:
            eps = torch.randn_like(mean)
        logits = self.decode(mean + torch.exp(0.5 * log_var) * eps)
        reconstruction = (F.softplus(logits) - x * logits).sum((1, 2, 3))
        kl = 0.5 * (log_var.exp() + mean.square() - 1.0 - log_var).sum(1)
        return (reconstruction + kl).mean()


class VAETrainer:
    """One Adam step on the negative ELBO of a batch."""

    value_range = vae.VALUE_RANGE
    config = vae.BOOK_CONFIG

    def __init__(self, steps=None, compile=False, keras_padding=False, **config):
        config = {**self.config, **config}
        self.batch_size = config["batch_size"]
        self.module = VAE(config["latent_dim"], config["width"], keras_padding)
        self.optimizer = torch.optim.Adam(self.module.parameters(),
                                          config["learning_rate"],
                                          eps=KERAS_ADAM_EPSILON)
        self.loss = torch.compile(self.module) if compile else self.module

    def step(self, x):
        loss = self.loss(x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


# Row LSTM ---------------------------------------------------------------------------------


class RowLSTM(nn.Module):
    """Rows as time steps: ``h_t = LSTM(x_{t-1})``, logits ``V h_t + c + x_t A``.

    ``A`` (`left_kernel`) is masked strictly upper triangular, so pixel j
    reads only the pixels left of it. ``forward(images)`` returns the batch's
    mean exact negative log-likelihood in nats
    (:func:`companion.losses.autoregressive_nll`).
    """

    def __init__(self, units=128, row_size=28):
        super().__init__()
        self.lstm = nn.LSTM(row_size, units, batch_first=True)
        with torch.no_grad():  # one bias vector, as Keras: freeze the second at 0
            self.lstm.bias_hh_l0.zero_()
        self.lstm.bias_hh_l0.requires_grad_(False)
        self.readout = nn.Linear(units, row_size)
        self.left_kernel = nn.Parameter(torch.zeros(row_size, row_size))
        self.register_buffer("left_mask", torch.ones(row_size, row_size).triu(1))

    def logits(self, rows):
        above = F.pad(rows[:, :-1], (0, 0, 1, 0))  # row t reads row t - 1
        states, _ = self.lstm(above)
        return self.readout(states) + rows @ (self.left_kernel * self.left_mask)

    def forward(self, images):
        rows = images.reshape(images.shape[0], -1, self.left_kernel.shape[0])
        logits = self.logits(rows)
        return (F.softplus(logits) - rows * logits).sum((1, 2)).mean()


class RNNTrainer:
    """One Adam step on the exact NLL, each gradient clipped to norm 1 (``clipnorm``)."""

    value_range = rnn.VALUE_RANGE
    config = rnn.BOOK_CONFIG

    def __init__(self, steps=None, compile=False, keras_padding=False, **config):
        config = {**self.config, **config}
        self.batch_size = config["batch_size"]
        self.clipnorm = config["clipnorm"]
        self.module = RowLSTM(config["units"])
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, config["learning_rate"],
                                          eps=KERAS_ADAM_EPSILON)
        self.loss = torch.compile(self.module) if compile else self.module

    def step(self, images):
        loss = self.loss(images)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for param in self.params:  # Keras clips each variable's gradient alone
            nn.utils.clip_grad_norm_(param, self.clipnorm)
        self.optimizer.step()
        return loss.detach()


TRAINERS = {"gan": GANTrainer, "vae": VAETrainer, "rnn": RNNTrainer}


def count_parameters(module):
    """Trainable parameters of a PyTorch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def to_torch_images(images):
    """NHWC numpy images as an NCHW float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2))))


# Keras weights into the PyTorch modules (for the equivalence test) ----------------------


def _tensor(variable):
    return torch.from_numpy(np.array(variable, dtype="float32"))


def _hwc_to_chw(size, channels):
    """Permutation p with chw[i] = hwc[p[i]] for a square (side, side, channels) block."""
    side = math.isqrt(size // channels)
    return np.arange(size).reshape(side, side, channels).transpose(
        2, 0, 1).reshape(-1)


def _conv_weights(module, layer):
    """Copy a Keras Conv2D or Conv2DTranspose: both kernels are (kh, kw, a, b),
    PyTorch's (b, a, kh, kw)."""
    conv = next(m for m in module.modules()
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    kernel = np.array(layer.kernel, dtype="float32")
    conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
    if conv.bias is not None:
        conv.bias.copy_(_tensor(layer.bias))


def _layers(model, kind):
    import keras

    kind = getattr(keras.layers, kind)
    return [layer for layer in model.layers if isinstance(layer, kind)]


@torch.no_grad()
def copy_gan(trainer, model):
    """Copy a Keras :class:`companion.models.gan.GAN`'s weights into a `GANTrainer`."""
    g, d = trainer.module.generator, trainer.module.discriminator
    width = g.width
    dense = _layers(model.generator, "Dense")[0]
    order = _hwc_to_chw(dense.kernel.shape[1], 4 * width)
    g.project.weight.copy_(torch.from_numpy(np.array(dense.kernel).T[order].copy()))
    norms = _layers(model.generator, "BatchNormalization")
    torch_norms = [g.project_norm] + [m for m in g.body if isinstance(m, nn.BatchNorm2d)]
    for index, (norm, layer) in enumerate(zip(torch_norms, norms, strict=True)):
        pick = order if index == 0 else slice(None)
        norm.weight.copy_(_tensor(layer.gamma)[pick])
        norm.bias.copy_(_tensor(layer.beta)[pick])
        norm.running_mean.copy_(_tensor(layer.moving_mean)[pick])
        norm.running_var.copy_(_tensor(layer.moving_variance)[pick])
    transposed = [m for m in g.body if isinstance(m, (nn.ConvTranspose2d, nn.Sequential))]
    keras_transposed = _layers(model.generator, "Conv2DTranspose")
    for module, layer in zip(transposed, keras_transposed, strict=True):
        _conv_weights(module, layer)
    convs = [m for m in d.net if isinstance(m, (nn.Conv2d, nn.Sequential))]
    for module, layer in zip(convs, _layers(model.discriminator, "Conv2D"), strict=True):
        _conv_weights(module, layer)
    logit = _layers(model.discriminator, "Dense")[0]
    order = _hwc_to_chw(logit.kernel.shape[0], 2 * width)
    d.net[-1].weight.copy_(torch.from_numpy(np.array(logit.kernel)[order].T.copy()))
    d.net[-1].bias.copy_(_tensor(logit.bias))


@torch.no_grad()
def copy_vae(trainer, model):
    """Copy a Keras :class:`companion.models.vae.VAE`'s weights into a `VAETrainer`."""
    module = trainer.module
    width = module.width
    convs = [m for m in module.encoder if isinstance(m, (nn.Conv2d, nn.Sequential))]
    for conv, layer in zip(convs, _layers(model.encoder, "Conv2D"), strict=True):
        _conv_weights(conv, layer)
    hidden, mean, log_var = _layers(model.encoder, "Dense")
    order = _hwc_to_chw(hidden.kernel.shape[0], 2 * width)
    kernel = np.array(hidden.kernel)[order]
    module.encoder[-2].weight.copy_(torch.from_numpy(kernel.T.copy()))
    module.encoder[-2].bias.copy_(_tensor(hidden.bias))
    for linear, layer in ((module.mean, mean), (module.log_var, log_var)):
        linear.weight.copy_(_tensor(layer.kernel).T)
        linear.bias.copy_(_tensor(layer.bias))
    project = _layers(model.decoder, "Dense")[0]
    order = _hwc_to_chw(project.kernel.shape[1], 2 * width)
    module.project.weight.copy_(torch.from_numpy(np.array(project.kernel).T[order].copy()))
    module.project.bias.copy_(_tensor(project.bias)[order])
    transposed = [m for m in module.decoder
                  if isinstance(m, (nn.ConvTranspose2d, nn.Sequential))]
    keras_transposed = _layers(model.decoder, "Conv2DTranspose")
    for conv, layer in zip(transposed, keras_transposed, strict=True):
        _conv_weights(conv, layer)


@torch.no_grad()
def copy_rnn(trainer, model):
    """Copy a Keras LSTM :class:`companion.models.rnn.RowRNN` into an `RNNTrainer`."""
    module = trainer.module
    cell = model.recurrent.cell
    module.lstm.weight_ih_l0.copy_(_tensor(cell.kernel).T)
    module.lstm.weight_hh_l0.copy_(_tensor(cell.recurrent_kernel).T)
    module.lstm.bias_ih_l0.copy_(_tensor(cell.bias))
    module.readout.weight.copy_(_tensor(model.readout.kernel).T)
    module.readout.bias.copy_(_tensor(model.readout.bias))
    module.left_kernel.copy_(_tensor(model.left_kernel))


COPIERS = {"gan": copy_gan, "vae": copy_vae, "rnn": copy_rnn}
