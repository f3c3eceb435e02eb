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


def _linear_decay(peak: float, floor: float, length: int) -> optax.Schedule:
  return optax.linear_schedule(peak, floor, length)


def _one_minus_sqrt_decay(peak: float, floor: float, length: int) -> optax.Schedule:
  return lambda step: floor + (peak - floor) * (1 - jnp.sqrt(jnp.minimum(step / length, 1.0)))


# `cooldown.shape` -> (peak, floor, length) -> the decay over a cooldown's steps.
COOLDOWN_SHAPES = {'linear': _linear_decay, '1-sqrt': _one_minus_sqrt_decay}


def _cosine(peak, warmup_steps, total_steps, floor, cooldown_start, cooldown_shape):
  return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, total_steps, floor)


def _const(peak, warmup_steps, total_steps, floor, cooldown_start, cooldown_shape):
  warmup = optax.linear_schedule(0.0, peak, warmup_steps)
  return optax.join_schedules([warmup, optax.constant_schedule(peak)], [warmup_steps])


def _cooldown(peak, warmup_steps, total_steps, floor, cooldown_start, cooldown_shape):
  if cooldown_shape not in COOLDOWN_SHAPES:
    raise ValueError(
        f'cooldown shape {cooldown_shape!r} is not allowed; choose one of {list(COOLDOWN_SHAPES)}.'
    )
  if cooldown_start is None or not warmup_steps <= cooldown_start < total_steps:
    raise ValueError(
        f'a cooldown must start after warmup ({warmup_steps} steps) and before the end '
        f'({total_steps}); got {cooldown_start}.'
    )
  warmup = optax.linear_schedule(0.0, peak, warmup_steps)
  decay = COOLDOWN_SHAPES[cooldown_shape](peak, floor, total_steps - cooldown_start)
  return optax.join_schedules(
      [warmup, optax.constant_schedule(peak), decay], [warmup_steps, cooldown_start]
  )


# `optim.schedule` -> the schedule's factory (the arguments of `learning_rate`).
SCHEDULES = {'cosine': _cosine, 'const': _const, 'cooldown': _cooldown}


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
  return SCHEDULES[kind](peak, warmup_steps, total_steps, floor, cooldown_start, cooldown_shape)
