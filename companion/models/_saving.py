"""Saving a model made of named sub-networks (the GAN's two, the VAE's two)."""

import keras


def config_with_networks(config, model, names):
    """`config` plus each sub-network in `names`, serialised for a `.keras` file."""
    for name in names:
        config[name] = keras.saving.serialize_keras_object(getattr(model, name))
    return config


def from_config_with_networks(cls, config, names):
    """Build `cls` from a config whose sub-networks `names` are serialised."""
    config = dict(config)
    for name in names:
        config[name] = keras.saving.deserialize_keras_object(config[name])
    return cls(**config)
