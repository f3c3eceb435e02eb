"""Frontier selection on hand-built point sets whose answers are worked out by hand."""

import numpy as np
import pytest

from fitting import frontier

# x_max = 4e4 gives int(log2(4e4 / 1500)) = 4 edges: 2000, 5429, 14736, 40000, so the bins
# are [2000, 5429) = {2000, 3000, 5000}, [5429, 14736) = {1e4}, [14736, 40000) = {2e4};
# the two points at x_max sit in no bin.
X = np.array([1e4, 2000, 4e4, 3000, 5000, 2e4, 4e4])
Y = np.array([0.82, 0.9, 0.65, 0.8, 0.85, 0.7, 0.6])


def test_pareto_bin_keeps_bin_minima_that_lower_the_running_minimum():
  # bin 1 -> 3000 (0.8); bin 2 -> 1e4 (0.82) does not lower 0.8; bin 3 -> 2e4 (0.7);
  # then the best point at x_max, 0.6.
  np.testing.assert_array_equal(frontier.pareto_bin(X, Y), [3, 5, 6])


def test_pareto_bin_adds_x_max_only_if_it_lowers_the_minimum():
  y = Y.copy()
  y[[2, 6]] = 0.75
  np.testing.assert_array_equal(frontier.pareto_bin(X, y), [3, 5])


def test_pareto_bin_first_bin_point_always_kept_and_ties_go_to_smaller_x():
  x = np.array([2000.0, 3000.0, 4e4])
  y = np.array([0.5, 0.5, 0.9])
  np.testing.assert_array_equal(frontier.pareto_bin(x, y), [0])


def test_pareto_bin_below_the_floor_keeps_only_the_best_at_x_max():
  x = np.array([100.0, 200.0, 1000.0, 1000.0])
  y = np.array([0.3, 0.4, 0.5, 0.45])
  np.testing.assert_array_equal(frontier.pareto_bin(x, y), [3])


def test_pareto_naive_keeps_undominated_points():
  np.testing.assert_array_equal(frontier.pareto_naive(X, Y), [1, 3, 5, 6])


def test_every_point_keeps_all_by_compute():
  # What the cosine side of the schedule check fits: one point per run, none dropped.
  order = frontier.every_point([3.0, 1.0, 2.0], [0.1, 0.9, 0.5])
  np.testing.assert_array_equal(order, [1, 2, 0])
  assert len(frontier.every_point(X, Y)) == len(X)


def test_frontier_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match='same length'):
    frontier.pareto_bin([1.0, 2.0], [1.0])
