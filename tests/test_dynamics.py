"""Tests of companion.dynamics: the bilinear game's closed forms and mode coverage."""

import numpy as np
import pytest

from companion import data, dynamics


@pytest.mark.parametrize("method", ["simultaneous", "extragradient"])
def test_distance_follows_closed_form_growth(method):
    lr, steps = 0.2, 50
    distance = dynamics.distance_to_equilibrium(
        dynamics.bilinear_trajectory(method, steps, lr, start=(1.0, 0.5)))
    factor = dynamics.bilinear_growth_factor(method, lr)
    np.testing.assert_allclose(distance, distance[0] * factor ** np.arange(steps + 1),
                               rtol=1e-10)


def test_simultaneous_diverges_alternating_circles_extragradient_converges():
    final = {m: dynamics.distance_to_equilibrium(
        dynamics.bilinear_trajectory(m, 500, 0.1))[-1] for m in dynamics.METHODS}
    start = np.sqrt(2.0)
    assert final["simultaneous"] > 3 * start
    assert 0.5 * start < final["alternating"] < 1.5 * start
    assert final["extragradient"] < 0.1 * start


def test_alternating_map_preserves_area_and_stays_bounded():
    matrix = dynamics.bilinear_matrix("alternating", 0.3)
    assert np.linalg.det(matrix) == pytest.approx(1.0)
    assert dynamics.bilinear_growth_factor("alternating", 0.3) == pytest.approx(1.0)
    distance = dynamics.distance_to_equilibrium(
        dynamics.bilinear_trajectory("alternating", 2000, 0.3))
    assert distance.max() < 2 * distance[0]


def test_step_matches_gradients_of_xy():
    # f = x*y: x descends along y, y ascends along x.
    x, y = dynamics.bilinear_step(2.0, 3.0, "simultaneous", 0.1)
    assert (x, y) == pytest.approx((2.0 - 0.3, 3.0 + 0.2))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="method"):
        dynamics.bilinear_step(1.0, 1.0, "adam", 0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        dynamics.bilinear_trajectory("simultaneous", 10, learning_rate=0.0)
    with pytest.raises(ValueError, match="trajectory"):
        dynamics.distance_to_equilibrium(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="points"):
        dynamics.modes_covered(np.zeros((3, 3)), data.ring_centres(), 0.02)


def test_real_ring_samples_cover_every_mode_with_high_quality():
    points, _ = data.ring_of_gaussians(4000, std=0.02, seed=3)
    centres = data.ring_centres()
    assert dynamics.modes_covered(points, centres, 0.02) == 8
    # 3 std in 2-D holds 1 - exp(-9/2) of a Gaussian's mass.
    expected = 1 - np.exp(-4.5)
    assert dynamics.high_quality_fraction(points, centres, 0.02) == pytest.approx(
        expected, abs=0.01)


def test_collapsed_samples_cover_one_mode():
    centres = data.ring_centres()
    collapsed = np.repeat(centres[:1], 500, axis=0)
    assert dynamics.modes_covered(collapsed, centres, 0.02) == 1
    assert dynamics.modes_covered(collapsed, centres, 0.02, num_std=None) == 1
    assert dynamics.high_quality_fraction(collapsed, centres, 0.02) == 1.0


def test_nearest_rule_counts_imprecise_samples_that_quality_rejects():
    centres = data.ring_centres()
    off = centres * 1.2  # every sample 0.4 away from its mode: 20 std
    assert dynamics.modes_covered(off, centres, 0.02) == 0
    assert dynamics.modes_covered(off, centres, 0.02, num_std=None) == 8
    assert dynamics.high_quality_fraction(off, centres, 0.02) == 0.0


def test_min_fraction_threshold():
    centres = np.array([[0.0, 0.0], [1.0, 0.0]])
    points = np.array([[0.0, 0.0]] * 9 + [[1.0, 0.0]])
    assert dynamics.modes_covered(points, centres, 0.01, min_fraction=0.1) == 2
    assert dynamics.modes_covered(points, centres, 0.01, min_fraction=0.2) == 1


def test_mode_coverage_callback_records_each_epoch():
    from companion.models import toy

    model = toy.make_model(data_dim=2, latent_dim=2, width=8)
    points, _ = data.ring_of_gaussians(256)
    recorder = dynamics.ModeCoverage(data.ring_centres(), 0.02, num=100)
    model.fit(points, epochs=2, batch_size=64, verbose=0, callbacks=[recorder])
    assert recorder.epochs == [0, 1, 2]
    assert len(recorder.covered) == len(recorder.reached) == len(recorder.quality) == 3
    assert all(0 <= c <= r <= 8 for c, r in zip(recorder.covered, recorder.reached))
    assert recorder.samples[0].shape == (100, 2)


def test_extragradient_contracts_only_for_step_sizes_below_one():
    factor = lambda lr: dynamics.bilinear_growth_factor("extragradient", lr)  # noqa: E731
    assert all(factor(lr) < 1 for lr in (0.01, 0.1, 0.5, 0.9, 0.99))
    assert factor(1.0) == pytest.approx(1.0)
    assert factor(1.5) > 1
    # Fastest contraction at lr^2 = 1/2, by sqrt(3)/2 a step.
    assert factor(np.sqrt(0.5)) == pytest.approx(np.sqrt(3) / 2)
    # The closed form is the spectral radius of the one-step map.
    for lr in (0.3, 1.0, 1.5):
        radius = np.max(np.abs(np.linalg.eigvals(dynamics.bilinear_matrix("extragradient", lr))))
        assert factor(lr) == pytest.approx(radius)
