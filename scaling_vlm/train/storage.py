"""What each milestone checkpoint keeps, and what a run's checkpoints cost on disk.

A milestone is a scaling-law point: evaluation reads its parameters and nothing else. Only two
things need the full train state (parameters, AdamW's moments, step, data position): resuming,
which the rolling checkpoints serve, and a cooldown branch, which continues a constant-LR run
from one of its milestones. So a milestone keeps the parameters alone (`params`; `params_bf16`
halves that again, at bf16's rounding of what evaluation reads) unless it is a branch point or
`checkpoint.milestone_state=full`; `checkpoint.branch_points=auto` makes every milestone of a
constant-LR run one. Plain Python: a sweep's storage budget is planned without JAX.
"""

from __future__ import annotations

import math

import ml_collections

from scaling_vlm.train.config import parse_count

FULL, PARAMS, PARAMS_BF16 = 'full', 'params', 'params_bf16'
MILESTONE_STATES = (PARAMS, PARAMS_BF16, FULL)  # checkpoint.milestone_state's choices
ROLLING = 2  # full-state checkpoints kept for resumption (checkpoints.Checkpoints.ROLLING)
# Bytes per parameter: float32 parameters; the full state adds AdamW's two float32 moments
# (optax.scale_by_adam; clipping and decoupled decay keep no state), plus a few scalars.
PARAM_BYTES = {FULL: 12, PARAMS: 4, PARAMS_BF16: 2}


def branch_steps(config: ml_collections.ConfigDict, plan) -> set[int]:
  """The milestone steps where a cooldown may branch, so full state is kept there:
  `checkpoint.branch_points` as steps of `plan` (a `run.RunPlan`). ValueError, one line, for a
  branch point that is not a milestone."""
  spec = str(config.checkpoint.get('branch_points', 'auto')).strip()
  if spec == 'auto':
    # Only a constant-LR run is branched from (sweep.check_branch); any milestone may be.
    return set(plan.milestone_steps) if config.optim.schedule == 'const' else set()
  if spec in ('', 'none'):
    return set()
  batch, steps = plan.global_batch, set()
  for text in filter(None, (part.strip() for part in spec.split(','))):
    samples = parse_count(text, 'checkpoint.branch_points')
    if samples % batch or samples // batch not in plan.milestone_steps:
      kept = [s * batch for s in plan.milestone_steps]
      raise ValueError(
          f'checkpoint.branch_points names {samples} samples, which is not a milestone of the '
          f'run (checkpoint.milestones keeps {kept}); add it there, or drop it.'
      )
    steps.add(samples // batch)
  return steps


def milestone_states(config: ml_collections.ConfigDict, plan) -> dict[int, str]:
  """What each milestone step keeps: FULL at branch points, else `checkpoint.milestone_state`.
  A rolling or preemption checkpoint at the same step keeps FULL regardless (the trainer)."""
  state = config.checkpoint.get('milestone_state', FULL)  # runs saved before the key: full
  branches = branch_steps(config, plan)
  return {s: FULL if s in branches else state for s in plan.milestone_steps}


def checkpoint_bytes(params: int, state: str) -> int:
  """Bytes of one checkpoint of a model with `params` parameters keeping `state` (array data;
  orbax's metadata adds kilobytes)."""
  return params * PARAM_BYTES[state]


def run_bytes(params: int, states: dict[int, str], finished: bool = True) -> int:
  """Bytes a run's checkpoints hold: its milestones, as `milestone_states` keeps them, and while
  it runs the `ROLLING` full-state checkpoints for resumption (a finished run deletes those)."""
  total = sum(checkpoint_bytes(params, s) for s in states.values())
  return total + (0 if finished else ROLLING * checkpoint_bytes(params, FULL))


def size(nbytes: float) -> str:
  """1.5e9 -> '1.5 GB' (decimal units, as `du --si` and cloud buckets count)."""
  if nbytes < 1e3:
    return f'{nbytes:.0f} B'
  unit = min(int(math.log10(nbytes) // 3), 5)
  return f'{nbytes / 10 ** (3 * unit):.3g} {"BkMGTP"[unit]}B'
