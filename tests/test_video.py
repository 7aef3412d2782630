"""companion.models.video: next-frame prediction with a fully connected LSTM.

The model is a fully connected LSTM (Srivastava et al. 2015), not a
convolutional one: dense layers encode each frame, an LSTM reads the codes, and
a dense readout gives a distribution over shifts that moves the last frame (a
dynamic filter). These tests pin causality, the rollout, the shift
operation against a closed form, the loss, training and serialisation, and
the constant-velocity baseline against known shifts, bounces and still videos.
"""

import random
import re

import numpy as np
import pytest

from companion.models import video  # first: selects the JAX backend
import keras  # noqa: E402
from companion import inference  # noqa: E402

FRAME = (8, 8, 1)


def _videos(num, frames, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((num, frames) + FRAME).astype("float32")


@pytest.fixture(scope="module")
def model():
    return video.make_model(frame_shape=FRAME, units=8, code_size=16, seed=1)


def test_prediction_of_a_frame_uses_only_earlier_frames(model):
    videos = _videos(2, 5)
    base = model.predict_next(videos)
    assert base.shape == (2, 4) + FRAME and ((base > 0) & (base < 1)).all()
    for t in range(1, 4):
        changed = videos.copy()
        changed[:, t:] = 1.0 - changed[:, t:]
        predicted = model.predict_next(changed)
        # prediction k is of frame k+1 from frames 0..k: unchanged for k < t.
        np.testing.assert_array_equal(predicted[:, :t], base[:, :t])
        assert np.abs(predicted[:, t:] - base[:, t:]).max() > 1e-6


def test_rollout_of_one_step_equals_the_one_step_prediction(model):
    videos = _videos(3, 4, seed=1)
    one_step = model.predict_next(videos)
    for known in (1, 3):
        rolled = model.rollout(videos[:, :known], steps=1)
        np.testing.assert_allclose(rolled[:, 0], one_step[:, known - 1], atol=1e-5)


def test_rollout_feeds_its_own_predictions_back(model):
    videos = _videos(2, 3, seed=2)
    rolled = model.rollout(videos, steps=3)
    assert rolled.shape == (2, 3) + FRAME
    # Frame 2 of the rollout = one-step prediction after appending frame 1
    # (and a dummy last frame: predict_next predicts frames 2..T of its input).
    extended = np.concatenate([videos, rolled[:, :1], 0 * rolled[:, :1]], axis=1)
    np.testing.assert_allclose(rolled[:, 1], model.predict_next(extended)[:, -1],
                               atol=1e-5)


def test_the_predicted_frame_is_the_last_frame_moved_by_the_shift_mixture():
    tiny = video.NextFramePredictor(frame_shape=FRAME, units=4, code_size=4, max_shift=2)
    frame = np.zeros((1,) + FRAME, "float32")
    frame[0, 3, 3] = 1.0
    # One-hot vertical shift +1 and horizontal shift +2 (index k is shift k - 2):
    logits = np.full((1, 10), -1e4, "float32")
    logits[0, 2 + 1] = logits[0, 5 + 2 + 2] = 0.0
    moved = np.asarray(tiny._move(frame, logits))
    expected = np.full((1,) + FRAME, video.FLOOR / 2, "float32")
    expected[0, 4, 5] = 1 - video.FLOOR / 2
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    # Equal weights on shifts 0 and +1 along each axis: the pixel's mass splits
    # into four quarters, and content shifted out of the frame is lost (black).
    logits = np.full((1, 10), -1e4, "float32")
    logits[0, [2, 3, 7, 8]] = 0.0
    corner = np.zeros((1,) + FRAME, "float32")
    corner[0, -1, -1] = 1.0
    moved = (np.asarray(tiny._move(corner, logits)) - video.FLOOR / 2) / (1 - video.FLOOR)
    assert moved.sum() == pytest.approx(0.25, abs=1e-5)
    assert moved[0, -1, -1, 0] == pytest.approx(0.25, abs=1e-5)


def test_loss_is_the_mean_binary_cross_entropy_and_fit_lowers_it():
    videos = _still_squares()
    model = video.make_model(frame_shape=FRAME, units=8, code_size=16,
                             learning_rate=0.03)
    p = model.predict_next(videos)
    target = videos[:, 1:]
    bce = -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
    assert model.evaluate(videos, verbose=0) == pytest.approx(bce, rel=1e-4)
    model.fit(videos, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(videos, verbose=0) < 0.5 * bce


def _mean_cross_entropy(model, videos):
    p = model.predict_next(videos).astype("float64")
    target = videos[:, 1:]
    return -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))


def test_evaluate_and_validation_report_the_mean_cross_entropy():
    train, held_out = _videos(6, 4, seed=4), _videos(7, 4, seed=5)
    model = video.make_model(frame_shape=FRAME, units=8, code_size=16, seed=2,
                             learning_rate=0.0)
    exact = _mean_cross_entropy(model, held_out)
    # Batches of 3, 3 and 1 videos: the mean is over videos, not over batches.
    assert model.evaluate(held_out, batch_size=3, verbose=0) == pytest.approx(
        exact, rel=1e-5)
    # A learning rate of 0 keeps the weights: the training loss is exact too.
    history = model.fit(train, validation_data=held_out, epochs=1, batch_size=4,
                        verbose=0).history
    assert history["loss"][0] == pytest.approx(_mean_cross_entropy(model, train),
                                               rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(exact, rel=1e-5)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(train, validation_data=(held_out, held_out), verbose=0)
    with pytest.raises(ValueError, match="validation_data.*frames"):
        model.fit(train, validation_data=held_out[:, :1], verbose=0)
    with pytest.raises(ValueError, match="videos only"):
        model.evaluate(held_out, held_out, verbose=0)


def test_save_and_load_round_trip(model, tmp_path):
    model.fit(_videos(4, 3, seed=6), epochs=1, batch_size=4, verbose=0)  # optimiser state
    path = tmp_path / "video.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    videos = _videos(2, 3, seed=3)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.rollout(videos, 2), model.rollout(videos, 2),
                               atol=1e-6)
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() > 0
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))


def test_seed_none_draws_fresh_weights_reproducibly():
    def kernel():
        model = video.NextFramePredictor(frame_shape=FRAME, units=4, code_size=4,
                                         seed=None)
        model.build()
        return np.asarray(model.encoder.kernel)

    keras.utils.set_random_seed(3)
    first = kernel()
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(kernel(), first)
    assert not np.array_equal(kernel(), first)


def _still_squares(num=8, frames=4):
    videos = np.zeros((num, frames) + FRAME, "float32")
    videos[:, :, 2:5, 2:5] = 1.0      # a still square: easy to predict
    return videos


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_predicts_float32_frames(policy, dtype_policy):
    videos = _still_squares()
    with dtype_policy(policy):
        model = video.make_model(frame_shape=FRAME, units=8, code_size=16,
                                 learning_rate=0.03)
        assert model.compute_dtype == policy.removeprefix("mixed_")
        losses = model.fit(videos, epochs=5, batch_size=8, verbose=0).history["loss"]
        predicted = model.predict_next(videos)
        rolled = model.rollout(videos[:, :2], steps=3)
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0]
    for frames in (predicted, rolled):
        assert frames.dtype == np.float32 and ((frames > 0) & (frames < 1)).all()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_float16_scales_the_loss_so_the_step_keeps_its_size(sgd_step):
    # The LossScaleOptimizer divides every gradient by its loss scale (2**15
    # at first): the train step must have multiplied the loss by it.
    videos = _videos(8, 4, seed=7)
    make = lambda: video.NextFramePredictor(frame_shape=FRAME, units=8, code_size=16, seed=2)
    exact, mixed = (sgd_step(make, videos, policy) for policy in ("float32", "mixed_float16"))
    assert np.linalg.norm(mixed) / np.linalg.norm(exact) == pytest.approx(1.0, abs=0.05)
    assert mixed @ exact / (np.linalg.norm(mixed) * np.linalg.norm(exact)) > 0.99


def test_inference_compiles_one_program_a_purpose_whatever_the_request_size():
    model = video.make_model(frame_shape=FRAME, units=8, code_size=16, seed=1)
    for num in (1, 7, 300):
        videos = _videos(num, 4, seed=num)
        assert model.predict_next(videos).shape == (num, 3) + FRAME
        # Two context frames and three steps, or three and two: one length of scan.
        assert model.rollout(videos[:, :2], steps=3).shape == (num, 3) + FRAME
        assert model.rollout(videos[:, :3], steps=2).shape == (num, 2) + FRAME
    assert inference.compile_count(model) == 2    # predict_next and rollout
    # Each video's prediction is its own, whatever the others in its chunk.
    videos = _videos(300, 4, seed=8)
    np.testing.assert_array_equal(model.rollout(videos, 2)[:10],
                                  model.rollout(videos[:10], 2))
    np.testing.assert_array_equal(model.predict_next(videos)[:10],
                                  model.predict_next(videos[:10]))


SEED_ERROR = re.escape("`seed` must be None or an integer in [0, 4294967295]; got")


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_every_seed_is_checked_the_same_way(seed):
    for make in (video.NextFramePredictor, video.make_model):
        with pytest.raises(ValueError, match=SEED_ERROR):
            make(frame_shape=FRAME, units=4, code_size=4, seed=seed)


def test_the_largest_seed_works():
    model = video.make_model(frame_shape=FRAME, units=4, code_size=4, seed=2**32 - 1)
    assert model.rollout(_videos(1, 2), steps=1).shape == (1, 1) + FRAME


def _next_global_random_values():
    """The next draw of Python's, NumPy's and Keras' global random generators."""
    return (random.random(), np.random.random(), np.asarray(keras.random.uniform((3,))))


def test_make_model_changes_no_global_random_state():
    keras.utils.set_random_seed(7)
    expected = _next_global_random_values()
    keras.utils.set_random_seed(7)
    made = video.make_model(frame_shape=FRAME, units=8, code_size=16, seed=5)
    again = video.make_model(frame_shape=FRAME, units=8, code_size=16, seed=5)
    found = _next_global_random_values()
    assert found[:2] == expected[:2]
    np.testing.assert_array_equal(found[2], expected[2])
    # The seed alone fixes the weights (every variable, the seed states included).
    for first, second in zip(made.weights, again.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    other = video.make_model(frame_shape=FRAME, units=8, code_size=16, seed=6)
    assert not np.array_equal(np.asarray(other.encoder.kernel),
                              np.asarray(made.encoder.kernel))


def test_bad_input_raises(model):
    with pytest.raises(ValueError, match="shape"):
        model.predict_next(np.zeros((2, 3, 28, 28, 1), "float32"))
    with pytest.raises(ValueError, match="frames"):
        model.predict_next(np.zeros((2, 1) + FRAME, "float32"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.rollout(np.full((1, 2) + FRAME, 2.0, "float32"), steps=1)
    with pytest.raises(ValueError, match="steps"):
        model.rollout(np.zeros((1, 2) + FRAME, "float32"), steps=0)
    with pytest.raises(ValueError, match="videos only"):
        model.fit(_videos(2, 3), _videos(2, 3))
    with pytest.raises(ValueError, match="`videos` must be a numeric array"):
        model.predict_next([[0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="seed"):
        video.NextFramePredictor(seed=-1)
    with pytest.raises(ValueError, match="frame_shape"):
        video.NextFramePredictor(frame_shape=(8, 8))
    with pytest.raises(ValueError, match="max_shift"):
        video.NextFramePredictor(max_shift=-1)
    assert video.VALUE_RANGE == "unit"


def _moving_square(shift, frames=4, size=16, start=(5, 5)):
    """One video of a 3x3 square moving by `shift` a frame on a size x size canvas
    (no border reached), as a (1, frames, size, size, 1) array."""
    video_ = np.zeros((1, frames, size, size, 1), "float32")
    for t in range(frames):
        row, col = start[0] + t * shift[0], start[1] + t * shift[1]
        video_[0, t, row:row + 3, col:col + 3] = np.linspace(0.2, 1.0, 9).reshape(3, 3, 1)
    return video_


@pytest.mark.parametrize("shift", [(1, 2), (0, -1), (2, 0), (1, 1)])
def test_constant_velocity_is_exact_on_a_known_shift(shift):
    truth = _moving_square(shift, frames=5)
    predicted = video.constant_velocity(truth[:, :3], steps=2, object_size=3)
    np.testing.assert_array_equal(predicted, truth[:, 3:])


def test_constant_velocity_bounces_the_square_as_the_data_does():
    from companion import data

    videos = data.moving_digits(64, frames=20, split="test", seed=3)
    predicted = video.constant_velocity(videos[:, :10], steps=10)
    future = videos[:, 10:]
    error = np.mean((predicted - future) ** 2, axis=(2, 3, 4))
    copy_last = np.mean((videos[:, 9:10] - future) ** 2, axis=(2, 3, 4))
    # Nearly every digit bounces within ten frames; the misses are digits that
    # bounced between frames 9 and 10, whose last shift is not their velocity.
    assert (error.max(axis=1) == 0).mean() > 0.75
    assert error.mean() < 0.25 * copy_last.mean()


def test_constant_velocity_reflects_the_square_at_the_border():
    # A 3x3 square at columns 9, 11 moves right by 2: 13 is the last column the
    # square's corner can reach (16 - 3), so 15 is reflected to 11, then 9, 7.
    truth = _moving_square((0, 2), frames=2, start=(5, 9))
    predicted = video.constant_velocity(truth, steps=5, object_size=3)
    corners = [int(np.argmax(frame[6, :, 0] > 0)) for frame in predicted[0]]
    assert corners == [13, 11, 9, 7, 5]
    np.testing.assert_array_equal(predicted[0, 1], truth[0, 1])   # back at column 11


def test_constant_velocity_copies_a_still_video_and_a_single_frame():
    still = np.repeat(_videos(3, 1, seed=9), 4, axis=1)     # random frames, no motion
    for context in (still, still[:, :1]):
        predicted = video.constant_velocity(context, steps=3, object_size=4)
        np.testing.assert_array_equal(predicted, np.repeat(still[:, -1:], 3, axis=1))


def test_constant_velocity_reads_only_the_last_two_frames():
    truth = _moving_square((1, 1), frames=5)
    noisy = truth.copy()
    noisy[:, 0] = np.random.default_rng(4).random(noisy.shape[2:])
    np.testing.assert_array_equal(video.constant_velocity(noisy[:, :3], 2, object_size=3),
                                  truth[:, 3:])


def test_constant_velocity_rejects_bad_input():
    context = np.zeros((2, 3) + FRAME, "float32")
    with pytest.raises(ValueError, match=r"`context` must have shape \(N, T, H, W, C\)"):
        video.constant_velocity(np.zeros((2, 8, 8, 1)), steps=1)
    with pytest.raises(ValueError, match="`context` needs at least 1 frames"):
        video.constant_velocity(context[:, :0], steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        video.constant_velocity(context + 2, steps=1)
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1; got 0"):
        video.constant_velocity(context, steps=0)
    with pytest.raises(ValueError, match="`object_size` must be at most .* 8; got 9"):
        video.constant_velocity(context, steps=1, object_size=9)
    with pytest.raises(ValueError, match="`max_shift` must be an integer >= 0; got -1"):
        video.constant_velocity(context, steps=1, object_size=4, max_shift=-1)
    with pytest.raises(ValueError, match="`context` must be a numeric array"):
        video.constant_velocity([[0.0], [0.0, 1.0]], steps=1)


def test_ink_ratio_is_one_for_a_clean_move_and_falls_for_a_blend():
    truth = np.zeros((2, 3, 6, 6, 1))
    truth[:, :, 2, 2] = 1.0
    assert np.allclose(video.ink_ratio(truth, truth), 1.0)
    blend = np.zeros_like(truth)
    blend[:, :, 2, 1:4] = 1 / 3  # three faint copies of the same ink
    assert np.allclose(video.ink_ratio(blend, truth), 1 / 3)
    with pytest.raises(ValueError, match="same shape|shape"):
        video.ink_ratio(truth[:, :2], truth)
