"""The LR-annealing scaling law (Tissue et al. 2024): loss along any schedule from its areas.

    L(s) = L0 + A · S1(s)^(-alpha) - C · S2(s)

S1 is the forward area, the sum of the learning rate over steps; S2 is the annealing area,
the sum over steps of a momentum of LR decreases, m_i = lam · m_(i-1) + (lr_(i-1) - lr_i).
Both start counting when warmup ends (warmup only raises the LR, and the law describes what
happens after). Fitted on constant-LR and cooldown checkpoints, it predicts cosine runs,
which is the check that constant-LR runs are enough.

Only alpha is non-linear: for each alpha, L0, A and C >= 0 solve a 3-variable non-negative
least squares exactly (the best of its 7 active sets), so the fit is a 1-D search over
alpha — a dense log grid, then golden-section refinement — with no starts to choose.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd

from fitting import filters

MOMENTUM = 0.999
COOLDOWN_SHAPES = ('linear', '1-sqrt')
ALPHA_RANGE = (1e-3, 3.0)
GRID = 400
GOLDEN_STEPS = 60


def learning_rates(
    schedule: str,
    peak: float,
    warmup_steps: int,
    total_steps: int,
    cooldown_start: int | None = None,
    cooldown_shape: str = 'linear',
) -> np.ndarray:
  """The LR at steps 1..total_steps, as scaling_vlm's schedules define it (floor 0)."""
  step = np.arange(1, total_steps + 1, dtype=np.float64)
  warm = peak * np.minimum(step / max(warmup_steps, 1), 1.0)
  if schedule == 'const':
    return warm
  if schedule == 'cosine':
    progress = np.clip((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0, 1.0)
    return np.where(step < warmup_steps, warm, peak * 0.5 * (1 + np.cos(np.pi * progress)))
  if schedule == 'cooldown':
    if cooldown_shape not in COOLDOWN_SHAPES:
      raise ValueError(
          f'unknown cooldown shape {cooldown_shape!r}; choose one of {COOLDOWN_SHAPES}'
      )
    if cooldown_start is None:
      raise ValueError('a cooldown schedule needs its cooldown_start step')
    frac = np.clip((step - cooldown_start) / (total_steps - cooldown_start), 0.0, 1.0)
    decay = 1 - frac if cooldown_shape == 'linear' else 1 - np.sqrt(frac)
    return np.where(step <= cooldown_start, warm, peak * decay)
  raise ValueError(f"unknown schedule {schedule!r}; choose 'const', 'cosine' or 'cooldown'")


def areas(lr: np.ndarray, warmup_steps: int, momentum: float = MOMENTUM):
  """S1 and S2 at every step (arrays as long as `lr`), counted from the end of warmup."""
  after = np.arange(1, len(lr) + 1) > warmup_steps
  s1 = np.cumsum(np.where(after, lr, 0.0))
  drops = np.where(after, np.concatenate([[0.0], lr[:-1] - lr[1:]]), 0.0)
  # Imported here: scipy.signal takes ~0.7 s to import, which every `python -m fitting` run
  # would pay, and only the annealing law needs it.
  from scipy import signal  # pylint: disable=g-import-not-at-top

  m = signal.lfilter([1.0], [1.0, -momentum], drops)
  return s1, np.cumsum(m)


def _nnls3(features: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
  """argmin ||features @ p - y||² over p >= 0 for 3 columns, by trying every active set."""
  best, best_cost = np.zeros(3), float(np.sum(y * y))
  for k in range(1, 4):
    for cols in itertools.combinations(range(3), k):
      sub = features[:, cols]
      p, *_ = np.linalg.lstsq(sub, y, rcond=None)
      if np.all(p >= 0):
        cost = float(np.sum((sub @ p - y) ** 2))
        if cost < best_cost:
          best = np.zeros(3)
          best[list(cols)] = p
          best_cost = cost
  return best, best_cost


@dataclasses.dataclass(frozen=True)
class AnnealingFit:
  l0: float
  a: float
  alpha: float
  c: float
  mse: float

  def predict(self, s1, s2) -> np.ndarray:
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    return self.l0 + self.a * s1 ** (-self.alpha) - self.c * s2


def fit(s1, s2, loss) -> AnnealingFit:
  """Least-squares fit of the law to checkpoints with areas (s1, s2) and losses `loss`."""
  s1, s2, loss = (np.asarray(v, np.float64) for v in (s1, s2, loss))
  if not (s1.shape == s2.shape == loss.shape) or s1.ndim != 1:
    raise ValueError('s1, s2 and loss must be 1-D and the same length')
  if len(s1) < 4 or np.any(s1 <= 0) or not np.all(np.isfinite(loss)):
    raise ValueError('the annealing law needs >= 4 finite points with positive S1')

  def solve(alpha):
    features = np.stack([np.ones_like(s1), s1 ** (-alpha), -s2], axis=1)
    return _nnls3(features, loss)

  log_grid = np.linspace(*np.log(ALPHA_RANGE), GRID)
  costs = [solve(np.exp(g))[1] for g in log_grid]
  i = int(np.argmin(costs))
  lo, hi = log_grid[max(i - 1, 0)], log_grid[min(i + 1, GRID - 1)]
  ratio = (np.sqrt(5) - 1) / 2
  for _ in range(GOLDEN_STEPS):  # the cost is unimodal within one grid cell either side
    m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    if solve(np.exp(m1))[1] < solve(np.exp(m2))[1]:
      hi = m2
    else:
      lo = m1
  alpha = float(np.exp(0.5 * (lo + hi)))
  (l0, a, c), cost = solve(alpha)
  return AnnealingFit(float(l0), float(a), alpha, float(c), cost / len(loss))


def table_areas(points: pd.DataFrame, cooldown_shape: str = 'linear') -> pd.DataFrame:
  """Points of a results table with their S1 and S2 added, from each row's schedule.

  Steps are samples / global batch; a cooldown row is one with `cooldown_from` set (the
  samples at which it branched), and its decay shape is not in the table, so it is given.
  """
  out = []
  branch = filters.cooldown_samples(points)
  constant = filters.is_constant(points)
  for (_, row), cooldown, const in zip(points.iterrows(), branch, constant):
    batch = row['global_batch_size']
    if pd.notna(cooldown):
      schedule = 'cooldown'
    else:
      schedule = 'const' if const else str(row['lr_schedule']).lower()
    lr = learning_rates(
        schedule,
        float(row['lr']),
        int(row['warmup']),
        int(round(row['total_samples'] / batch)),
        int(round(cooldown / batch)) if pd.notna(cooldown) else None,
        cooldown_shape,
    )
    s1, s2 = areas(lr, int(row['warmup']))
    step = int(round(row['samples_seen'] / batch)) - 1
    out.append((s1[step], s2[step]))
  s1, s2 = np.array(out).T if out else (np.zeros(0), np.zeros(0))
  return points.assign(s1=s1, s2=s2)


def predict_cosine(points: pd.DataFrame, cooldown_shape: str = 'linear') -> dict:
  """Fit the law on constant-LR and cooldown points, predict the cosine ones (held out).

  `points` are one procedure's eligible points (filters.eligible_points), whose `error`
  column is what the law models.
  """
  with_areas = table_areas(points, cooldown_shape)
  constant_or_cooldown = filters.is_constant(points) | ~np.isnan(filters.cooldown_samples(points))
  train = with_areas[constant_or_cooldown]
  test = with_areas[~constant_or_cooldown]
  if test.empty:
    raise ValueError('no cosine points to hold out')
  if len(train) < 4:
    raise ValueError(
        f'the annealing law needs >= 4 constant-LR or cooldown points, got {len(train)}'
    )
  law = fit(train['s1'], train['s2'], train['error'])
  predicted = law.predict(test['s1'], test['s2'])
  actual = test['error'].to_numpy()
  rows = [
      dict(run_id=r, actual=float(a), predicted=float(p), relative_error=float((p - a) / a))
      for r, a, p in zip(test['run_id'], actual, predicted)
  ]
  return dict(law=dataclasses.asdict(law), held_out=rows)
