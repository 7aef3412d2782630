"""Compiled inference shared by every model family: one program a purpose.

Sampling, decoding and scoring run as JAX programs compiled with ``jax.jit``.
A program is compiled again for every new input shape, so a model that ran
``sample(10)`` and then ``sample(1000)`` would pay twice. Here every request
is cut into chunks of one fixed size (the last one padded), so each purpose
(``"sample"``, ``"decode"``, ...) of a model compiles exactly once, whatever
the number of images asked for.

A chunk that draws random numbers gets its own key, ``fold_in(key, i)`` for
chunk ``i``, so the first images of ``sample(1000, seed=s)`` are those of
``sample(10, seed=s)``.
"""

import jax
import keras
import numpy as np

from companion._validation import check_int

#: Images a compiled call: large enough to keep two CPU cores busy, small
#: enough that the activations of a chunk stay in their caches.
CHUNK = 256


def compiled(model, purpose, function, variables):
    """`function` compiled once for `model` and `purpose`, run on the current weights.

    `function(*arguments)` is ordinary Keras code that reads `variables`
    (for example ``model.decoder(z, training=False)``); it is traced with the
    variables' values passed in (a `keras.StatelessScope`), so the compiled
    program always uses the weights the model has when it is called.

    Args:
        model: the owner; its compiled programs are kept on it.
        purpose: a name, one compiled program each (e.g. ``"sample"``).
        function: a function of JAX arrays, traced once a purpose.
        variables: the Keras variables `function` reads.

    Returns:
        A callable: ``run(*arguments)``.

    Example:

    >>> import keras, numpy as np
    >>> layer = keras.layers.Dense(2)
    >>> layer.build((None, 3))
    >>> owner = keras.layers.Layer()
    >>> run = compiled(owner, "dense", layer, layer.variables)
    >>> run(np.ones((4, 3), "float32")).shape
    (4, 2)
    """
    cache = model.__dict__.setdefault("_compiled_inference", {})
    if purpose not in cache:
        def stateless(values, *arguments):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function(*arguments)

        cache[purpose] = jax.jit(stateless)
    program = cache[purpose]
    return lambda *arguments: program([v.value for v in variables], *arguments)


def compile_count(model):
    """How many programs `model`'s compiled inference holds, summed over purposes.

    Each purpose holds one, whatever the request sizes; the tests check it.
    """
    cache = model.__dict__.get("_compiled_inference", {})
    return sum(program._cache_size() for program in cache.values())


def in_chunks(run, num, inputs=(), key=None, chunk=CHUNK):
    """``run`` over `num` examples in chunks of `chunk`, the results concatenated.

    Chunk ``i`` calls ``run(*rows)`` (or ``run(*rows, fold_in(key, i))`` when
    `key` is given), where ``rows`` are examples ``[i * chunk, (i + 1) * chunk)``
    of each array in `inputs`, the last chunk padded with zeros. Every call
    has the same shapes, so ``run`` compiles once.

    Args:
        run: a compiled function returning an array, or a tuple of arrays,
            with `chunk` rows.
        num: how many examples (>= 1).
        inputs: arrays with `num` rows each.
        key: a JAX key, or None when nothing random is drawn.
        chunk: examples a call.

    Returns:
        numpy arrays (or a tuple of them) with `num` rows.

    Example:

    >>> import numpy as np
    >>> double = lambda x: 2 * x
    >>> in_chunks(double, 5, (np.arange(5.0),), chunk=2)
    array([0., 2., 4., 6., 8.])
    """
    num, chunk = check_int("num", num), check_int("chunk", chunk)
    padded = [np.concatenate([a, np.zeros((-num % chunk,) + a.shape[1:], a.dtype)])
              for a in map(np.asarray, inputs)]
    parts = []
    for index, start in enumerate(range(0, num, chunk)):
        rows = [a[start:start + chunk] for a in padded]
        if key is not None:
            rows.append(jax.random.fold_in(key, index))
        parts.append(jax.tree.map(np.asarray, run(*rows)))
    return jax.tree.map(lambda *pieces: np.concatenate(pieces)[:num], *parts)


def seed_key(seed_generator, seed):
    """A JAX key: from the int `seed`, or (seed None) the next of `seed_generator`.

    `seed` must already be checked (see `check_seed`).
    """
    if seed is None:
        return seed_generator.next()
    return jax.random.PRNGKey(seed)
