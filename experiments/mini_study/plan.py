"""What the mini study trains: ladders of tiny models per procedure, at constant LR with
milestone checkpoints (the paper's cheap method), plus a few cosine runs to check it.

A procedure here is an architecture (CLIP, MaMMUT, CLIMP) trained the same way on the
synthetic world. The study is a sweep (`experiments/sweep.py`): every run is a tiny preset
plus overrides, exactly what `python -m scaling_vlm.train --config=configs/<arch>.py:<model>`
would train, and every run is checked before any starts.
"""

from __future__ import annotations

import dataclasses

from experiments import sweep
from scaling_vlm.models import archs

PROCEDURES = tuple(archs.ARCHS)
# The paper's comparison. CLIMP is left to `--procedures`: on a CPU its step-by-step scan costs
# three times a ViT's step, and at these budgets its tiny models stay at chance.
DEFAULT_PROCEDURES = ('clip', 'mammut')
# Where constant runs are evaluated: half-octave steps over the last two octaves, all past
# warmup (earlier checkpoints say little and cost an evaluation each).
MILESTONE_FRACTIONS = tuple(2 ** (-k / 2) for k in range(4, -1, -1))


@dataclasses.dataclass(frozen=True)
class Budget:
  """The study's size. Samples are per run; a ladder entry is (model, samples)."""

  ladder: tuple[tuple[str, int], ...]  # constant-LR runs, zoo names without arch prefix
  cosine: tuple[tuple[str, int], ...]  # cosine runs at a few scales, to check the method
  skip: frozenset[str]  # zoo names left out of both
  global_batch: int
  warmup: int
  eval_size: int  # images per synthetic evaluation task
  bootstrap: int  # replicates for intervals
  form: str  # the law fitted to each frontier


# Sized for 10 minutes on 2 cores (measurements: NOTES.md). Every model sees the same samples, as
# in the paper's grid, so the larger models' last checkpoints extend the frontier the held-out
# check predicts. CLIMP's tiny-4 costs as much as the rest of its ladder on a CPU.
FULL = Budget(
    ladder=(('tiny-1', 8_000), ('tiny-2', 8_000), ('tiny-3', 8_000), ('tiny-4', 8_000)),
    cosine=(('tiny-1', 4_000), ('tiny-2', 4_000), ('tiny-3', 4_000)),
    skip=frozenset({'climp_tiny-4'}),
    global_batch=32,
    warmup=512,
    # A held-out point is one evaluation: its sampling noise goes straight into the check.
    eval_size=1000,
    bootstrap=200,
    # Four to seven frontier points per procedure support two parameters, not saturation_both's
    # four (NOTES.md).
    form='power_law',
)
# A smoke test of every stage: two sizes, a few dozen steps each.
QUICK = Budget(
    ladder=(('tiny-1', 1_024), ('tiny-2', 1_024)),
    cosine=(('tiny-1', 512), ('tiny-2', 512)),
    skip=frozenset(),
    global_batch=32,
    warmup=128,
    eval_size=64,
    bootstrap=20,
    form='power_law',
)


def largest_models(budget: Budget, procedures) -> dict[str, str]:
  """Each procedure's largest ladder model: the scale the held-out check predicts."""
  return {
      p: [zoo_name(p, m) for m, _ in budget.ladder if zoo_name(p, m) not in budget.skip][-1]
      for p in procedures
  }


def zoo_name(procedure: str, model: str) -> str:
  return archs.ARCHS[procedure].zoo_name(model)


def runs(budget: Budget, procedures=DEFAULT_PROCEDURES, seed: int = 0) -> list[sweep.Run]:
  """The study as a sweep: each run a tiny preset plus overrides, as the train CLI takes them.
  `seed` seeds every run's initialisation and data order: a replicate of the whole study."""
  unknown = sorted(set(procedures) - set(PROCEDURES))
  if unknown:
    raise ValueError(f'unknown procedures {unknown}; choose from {PROCEDURES}')
  out = []
  for procedure in procedures:
    for schedule, entries in (('const', budget.ladder), ('cosine', budget.cosine)):
      for model, samples in entries:
        name = zoo_name(procedure, model)
        if name in budget.skip:
          continue
        # Cosine runs give one scaling-law point, at their end; constant runs one per milestone.
        fractions = MILESTONE_FRACTIONS if schedule == 'const' else (1,)
        steps = (round(f * samples / budget.global_batch) for f in fractions)
        overrides = {
            'train.samples': samples,
            'train.warmup': budget.warmup,
            'train.global_batch': budget.global_batch,
            'optim.schedule': schedule,
            'checkpoint.milestones': ','.join(str(s * budget.global_batch) for s in steps),
            'checkpoint.latest_every_steps': 10**9,  # the milestones are the resume points
            'log.tensorboard': False,
            'train.seed': seed,
            'data.seed': seed,
        }
        out.append(
            sweep.Run(f'{name}-{schedule}-{samples}', f'configs/{procedure}.py:{name}', overrides)
        )
  return out


def make_runs(budget: Budget, procedures=DEFAULT_PROCEDURES, seed: int = 0) -> list[sweep.Planned]:
  """Every run of the study checked and planned (configs, steps, compute) before any trains."""
  return sweep.expand(runs(budget, procedures, seed))
