"""The constant-vs-cosine check on points whose comparison is known."""

import numpy as np
import pandas as pd
import pytest

from fitting import schedules

LAWS = {'clip': (3.0, -0.1, 0.2), 'mammut': (9.0, -0.14, 0.15)}  # cross at 1.53e10
X = np.geomspace(2e6, 2e11, 24)


def points(const_offset=0.02, swap_const=False):
  rows = []
  for arch, (a, c, d) in LAWS.items():
    law = lambda x: a * (x + np.exp(17.0)) ** c + d
    for schedule, offset in (('cosine', 0.0), ('const', const_offset)):
      name = (
          {'clip': 'mammut', 'mammut': 'clip'}[arch] if swap_const and schedule == 'const' else arch
      )
      for i, x in enumerate(X):
        rows.append(
            dict(
                run_id=f'{name}-{schedule}-{i}',
                arch=name,
                lr_schedule=schedule,
                x=x,
                error=law(x) + offset,
            )
        )
  return pd.DataFrame(rows)


def test_constant_and_cosine_agree_when_they_share_the_laws():
  result = schedules.agreement(points(), 'arch', 'mammut', 'clip', [1e9, 1e12])
  assert result.ranking_agrees and result.crossover_agrees
  assert result.cosine.winners == {1e9: 'clip', 1e12: 'mammut'}
  assert result.cosine.crossover == pytest.approx(1.53e10, rel=0.05)


def test_a_swapped_ranking_is_reported():
  result = schedules.agreement(points(swap_const=True), 'arch', 'mammut', 'clip', [1e9, 1e12])
  assert not result.ranking_agrees
  assert result.constant.winners == {1e9: 'mammut', 1e12: 'clip'}


def test_needs_both_schedules():
  only_cosine = points().query("lr_schedule == 'cosine'")
  with pytest.raises(ValueError, match='both constant-LR and cosine'):
    schedules.agreement(only_cosine, 'arch', 'mammut', 'clip', [1e9])


def test_cosine_points_can_all_count():
  # A noisy cosine run above an earlier one leaves a Pareto frontier of one point per arch,
  # too few for a power law; with cosine_frontier='all' every cosine run counts.
  frame = points()
  cosine = frame['lr_schedule'] == 'cosine'
  frame.loc[cosine, 'error'] = np.where(frame.loc[cosine, 'x'] > 1e7, 0.99, 0.5)
  with pytest.raises(ValueError, match='points to fit'):
    schedules.agreement(
        frame, 'arch', 'mammut', 'clip', [1e9], form='power_law', frontier='pareto_naive'
    )
  result = schedules.agreement(
      frame,
      'arch',
      'mammut',
      'clip',
      [1e9],
      form='power_law',
      frontier='pareto_naive',
      cosine_frontier='all',
  )
  assert set(result.cosine.winners.values()) <= {'mammut', 'clip'}
