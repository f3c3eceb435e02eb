"""What the mini study trains: ladders of tiny models per procedure, at constant LR with
milestone checkpoints (the paper's cheap method), plus a few cosine runs to check it, and a
second seed of the cheapest runs to measure how far the seed moves a result.

A procedure is an architecture trained on a dataset, as in the paper: CLIP, MaMMUT and CLIMP
on the synthetic world, and CLIP on a noisier version of it (half its captions describe another
scene), as the paper sets a filtered pool against a noisier one. The study is a sweep
(`experiments/sweep.py`): every run is a tiny preset plus overrides, exactly what
`python -m scaling_vlm.train --config=configs/<arch>.py:<model>` would train, and every run is
checked before any starts.
"""

from __future__ import annotations

import dataclasses
import itertools

from experiments import sweep
from scaling_vlm.models import archs


@dataclasses.dataclass(frozen=True)
class Procedure:
  """An architecture on a dataset; `overrides` make the dataset, `dataset` is how the results
  table names it (its `pretrain_dataset` column)."""

  arch: str
  title: str
  dataset: str = 'synthetic'
  overrides: tuple[tuple[str, object], ...] = ()
  run_prefix: str = ''  # tells its runs from another procedure's on the same models
  cosine: bool = True  # whether cosine runs check the cheap method on it
  skip: frozenset[str] = frozenset()  # ladder models it leaves out, to fit the time budget


PROCEDURES = {name: Procedure(name, spec.title) for name, spec in archs.ARCHS.items()} | {
    # On a CPU its step-by-step scan makes CLIMP's tiny-4 cost as much as the rest of its ladder.
    'climp': Procedure('climp', archs.ARCHS['climp'].title, skip=frozenset({'tiny-4'})),
    # Half the captions swapped: a decision the synthetic world makes at any seed (NOTES.md),
    # where CLIP against MaMMUT is within seed noise at this budget.
    'clip_noisy': Procedure(
        'clip',
        'CLIP on noisy captions',
        dataset='synthetic-noise0.5',
        overrides=(('data.caption_noise', 0.5),),
        run_prefix='noisy_',
        # No cosine runs and no tiny-4: the study's time budget.
        cosine=False,
        skip=frozenset({'tiny-4'}),
    ),
}
# The paper's two questions: which architecture, which dataset. CLIMP is left to
# `--procedures`: on a CPU its step-by-step scan costs three times a ViT's step.
DEFAULT_PROCEDURES = ('clip', 'mammut', 'clip_noisy')
# Where constant runs are evaluated: half-octave steps over the last two octaves, all past
# warmup (earlier checkpoints say little and cost an evaluation each).
MILESTONE_FRACTIONS = tuple(2 ** (-k / 2) for k in range(4, -1, -1))
# A replicate run's seed: far from the study seeds a user replicates the study with (0, 1, 2...)
REPLICATE_SEED_OFFSET = 1000


def comparisons(procedures) -> list[tuple[str, str]]:
  """The pairs worth comparing: procedures that differ in one thing, architecture or dataset
  (CLIP on clean captions against MaMMUT on noisy ones would say nothing about either)."""
  pairs = []
  for a, b in itertools.combinations(procedures, 2):
    pa, pb = PROCEDURES[a], PROCEDURES[b]
    if (pa.arch == pb.arch) != (pa.dataset == pb.dataset):
      pairs.append((a, b))
  return pairs


@dataclasses.dataclass(frozen=True)
class Budget:
  """The study's size. Samples are per run; a ladder entry is (model, samples)."""

  ladder: tuple[tuple[str, int], ...]  # constant-LR runs, zoo names without arch prefix
  cosine: tuple[tuple[str, int], ...]  # cosine runs at a few scales, to check the method
  global_batch: int
  warmup: int
  eval_size: int  # images per synthetic evaluation task
  bootstrap: int  # replicates for intervals
  form: str  # the law fitted to each frontier
  # Ladder models whose constant run is trained again at another seed, to measure seed noise.
  replicated: tuple[str, ...] = ()


# Sized for 10 minutes on 2 cores (measurements: NOTES.md). Every model sees the same samples, as
# in the paper's grid, so the larger models' last checkpoints extend the frontier the held-out
# check predicts.
FULL = Budget(
    ladder=(('tiny-1', 8_000), ('tiny-2', 8_000), ('tiny-3', 8_000), ('tiny-4', 8_000)),
    cosine=(('tiny-1', 4_000), ('tiny-2', 4_000), ('tiny-3', 4_000)),
    global_batch=32,
    warmup=512,
    # A held-out point is one evaluation: its sampling noise goes straight into the check.
    eval_size=1000,
    bootstrap=200,
    # Four to seven frontier points per procedure support two parameters, not saturation_both's
    # four (NOTES.md).
    form='power_law',
    # The seed noise, measured where it is cheap: the smallest model of every ladder.
    replicated=('tiny-1',),
)
# A smoke test of every stage: two sizes, a few dozen steps each.
QUICK = Budget(
    ladder=(('tiny-1', 1_024), ('tiny-2', 1_024)),
    cosine=(('tiny-1', 512), ('tiny-2', 512)),
    global_batch=32,
    warmup=128,
    eval_size=64,
    bootstrap=20,
    form='power_law',
    replicated=('tiny-1',),
)


def largest_models(budget: Budget, procedures) -> dict[str, str]:
  """Each procedure's largest ladder model: the scale the held-out check predicts."""
  return {
      p: [zoo_name(p, m) for m, _ in budget.ladder if m not in PROCEDURES[p].skip][-1]
      for p in procedures
  }


def zoo_name(procedure: str, model: str) -> str:
  return archs.ARCHS[PROCEDURES[procedure].arch].zoo_name(model)


def runs(budget: Budget, procedures=DEFAULT_PROCEDURES, seed: int = 0) -> list[sweep.Run]:
  """The study as a sweep: each run a tiny preset plus overrides, as the train CLI takes them.
  `seed` seeds every run's initialisation and data order: a replicate of the whole study."""
  unknown = sorted(set(procedures) - set(PROCEDURES))
  if unknown:
    raise ValueError(f'unknown procedures {unknown}; choose from {sorted(PROCEDURES)}')
  out = []
  for procedure in procedures:
    spec = PROCEDURES[procedure]
    replicates = [(m, s, REPLICATE_SEED_OFFSET) for m, s in budget.ladder if m in budget.replicated]
    for schedule, entries in (
        ('const', [(m, s, 0) for m, s in budget.ladder] + replicates),
        ('cosine', [(m, s, 0) for m, s in budget.cosine] if spec.cosine else []),
    ):
      for model, samples, offset in entries:
        if model in spec.skip:
          continue
        name = zoo_name(procedure, model)
        # Cosine runs give one scaling-law point, at their end; constant runs one per milestone.
        fractions = MILESTONE_FRACTIONS if schedule == 'const' else (1,)
        steps = (round(f * samples / budget.global_batch) for f in fractions)
        overrides = dict(spec.overrides) | {
            'train.samples': samples,
            'train.warmup': budget.warmup,
            'train.global_batch': budget.global_batch,
            'optim.schedule': schedule,
            'checkpoint.milestones': ','.join(str(s * budget.global_batch) for s in steps),
            'checkpoint.latest_every_steps': 10**9,  # the milestones are the resume points
            'log.tensorboard': False,
            'train.seed': seed + offset,
            'data.seed': seed + offset,
        }
        label = f'{spec.run_prefix}{name}-{schedule}-{samples}'
        label += '-replicate' if offset else ''  # the same name in every replicate study
        out.append(sweep.Run(label, f'configs/{spec.arch}.py:{name}', overrides))
  return out


def make_runs(budget: Budget, procedures=DEFAULT_PROCEDURES, seed: int = 0) -> list[sweep.Planned]:
  """Every run of the study checked and planned (configs, steps, compute) before any trains."""
  return sweep.expand(runs(budget, procedures, seed))
