"""The book's models against their PyTorch peers: ``python -m benchmarks.peers``.

:mod:`benchmarks.peers.torch_models` holds idiomatic PyTorch versions of the
book's three training steps (DCGAN, convolutional VAE, row LSTM) with the same
architectures, parameter counts, losses, optimisers and batch sizes;
:mod:`benchmarks.peers.timing` times them interleaved with Keras ``fit`` and a
raw ``jax.jit`` loop of the same Keras ``train_step``. PyTorch is the optional
``peers`` extra (``pip install -e ".[peers]"``): nothing else needs it.
"""
