"""The LR-annealing law: areas of known schedules, and recovery plus a cosine held-out check."""

import numpy as np
import pandas as pd
import pytest

from fitting import annealing

PEAK, WARMUP, TOTAL = 1e-3, 100, 2000
TRUE = annealing.AnnealingFit(l0=2.0, a=3.0, alpha=0.5, c=0.4, mse=0.0)


def test_constant_schedule_areas():
  lr = annealing.learning_rates('const', PEAK, WARMUP, TOTAL)
  s1, s2 = annealing.areas(lr, WARMUP)
  assert s1[-1] == pytest.approx(PEAK * (TOTAL - WARMUP))
  np.testing.assert_allclose(s2, 0.0, atol=1e-15)  # the LR never drops after warmup


def test_annealing_area_grows_during_a_cooldown():
  lr = annealing.learning_rates('cooldown', PEAK, WARMUP, TOTAL, cooldown_start=1500)
  assert lr[1499] == PEAK and lr[-1] == 0.0
  s1, s2 = annealing.areas(lr, WARMUP)
  assert s2[1499] == 0.0 and np.all(np.diff(s2[1500:]) > 0)
  # with no momentum, S2 is how far the LR has dropped below the peak
  _, s2_plain = annealing.areas(lr, WARMUP, momentum=0.0)
  np.testing.assert_allclose(s2_plain[WARMUP:], PEAK - lr[WARMUP:], atol=1e-15)


def checkpoints(schedule, steps, **kw):
  lr = annealing.learning_rates(schedule, PEAK, WARMUP, TOTAL, **kw)
  s1, s2 = annealing.areas(lr, WARMUP)
  idx = np.asarray(steps) - 1
  return s1[idx], s2[idx]


def test_fit_on_constant_and_cooldown_predicts_cosine():
  steps = np.arange(200, TOTAL + 1, 100)
  const = checkpoints('const', steps)
  cools = [checkpoints('cooldown', [TOTAL], cooldown_start=start) for start in (1000, 1400, 1800)]
  s1 = np.concatenate([const[0]] + [c[0] for c in cools])
  s2 = np.concatenate([const[1]] + [c[1] for c in cools])
  rng = np.random.default_rng(0)
  loss = TRUE.predict(s1, s2) + rng.normal(0, 1e-3, s1.shape)
  fit = annealing.fit(s1, s2, loss)
  assert fit.alpha == pytest.approx(TRUE.alpha, rel=0.1)
  assert fit.c == pytest.approx(TRUE.c, rel=0.1)
  cos_s1, cos_s2 = checkpoints('cosine', [TOTAL])
  assert fit.predict(cos_s1, cos_s2)[0] == pytest.approx(TRUE.predict(cos_s1, cos_s2)[0], abs=5e-3)


def test_predict_cosine_from_a_results_table():
  batch, rows = 10, []
  for run, schedule, cooldown, seen in [
      ('const', 'const', np.nan, np.arange(200, TOTAL + 1, 100)),
      ('cool-a', 'cooldown', 1000, [TOTAL]),
      ('cool-b', 'cooldown', 1500, [TOTAL]),
      ('cosine', 'cosine', np.nan, [TOTAL]),
  ]:
    for step in seen:
      rows.append(
          dict(
              run_id=run,
              lr_schedule=schedule,
              cooldown_from=cooldown * batch,
              lr=PEAK,
              warmup=WARMUP,
              global_batch_size=batch,
              total_samples=TOTAL * batch,
              samples_seen=step * batch,
          )
      )
  points = annealing.table_areas(pd.DataFrame(rows))
  points['error'] = TRUE.predict(points['s1'], points['s2'])
  result = annealing.predict_cosine(points)
  (row,) = result['held_out']
  assert row['run_id'] == 'cosine' and abs(row['relative_error']) < 1e-3


def test_bad_input():
  with pytest.raises(ValueError, match='unknown schedule'):
    annealing.learning_rates('step', PEAK, WARMUP, TOTAL)
  with pytest.raises(ValueError, match='>= 4 finite points'):
    annealing.fit([1.0, 2.0], [0.0, 0.0], [3.0, 2.0])
