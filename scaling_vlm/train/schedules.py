"""Learning-rate schedules, in optimiser steps: linear warmup, then cosine, constant, or a
cooldown branch.

A *cooldown branch* is how one constant-LR run yields models at many scales: a new run starts
from a checkpoint of the constant run at `cooldown_start` and decays the LR to the floor over
the rest of its steps, linearly or as 1 - sqrt (Hägele et al. 2024). Its schedule is the
constant schedule up to the branch point, so the parent's optimiser state carries over.
"""

from __future__ import annotations

import optax
import jax.numpy as jnp

SCHEDULES = ('cosine', 'const', 'cooldown')
COOLDOWN_SHAPES = ('linear', '1-sqrt')


def learning_rate(
    kind: str,
    *,
    peak: float,
    warmup_steps: int,
    total_steps: int,
    floor: float = 0.0,
    cooldown_start: int | None = None,
    cooldown_shape: str = 'linear',
) -> optax.Schedule:
  """The LR at each step; reaches `floor` at `total_steps` for 'cosine' and 'cooldown'."""
  if kind not in SCHEDULES:
    raise ValueError(f'schedule {kind!r} is not allowed; choose one of {list(SCHEDULES)}.')
  if not 0 <= warmup_steps <= total_steps:
    raise ValueError(f'warmup ({warmup_steps} steps) must lie within the run ({total_steps}).')
  if kind == 'cosine':
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, total_steps, floor)
  warmup = optax.linear_schedule(0.0, peak, warmup_steps)
  if kind == 'const':
    return optax.join_schedules([warmup, optax.constant_schedule(peak)], [warmup_steps])
  if cooldown_shape not in COOLDOWN_SHAPES:
    raise ValueError(
        f'cooldown shape {cooldown_shape!r} is not allowed; choose one of {list(COOLDOWN_SHAPES)}.'
    )
  if cooldown_start is None or not warmup_steps <= cooldown_start < total_steps:
    raise ValueError(
        f'a cooldown must start after warmup ({warmup_steps} steps) and before the end '
        f'({total_steps}); got {cooldown_start}.'
    )
  length = total_steps - cooldown_start
  if cooldown_shape == 'linear':
    decay = optax.linear_schedule(peak, floor, length)
  else:
    decay = lambda step: floor + (peak - floor) * (1 - jnp.sqrt(jnp.minimum(step / length, 1.0)))
  return optax.join_schedules(
      [warmup, optax.constant_schedule(peak), decay], [warmup_steps, cooldown_start]
  )
