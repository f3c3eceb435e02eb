"""Sweeps: a Python file whose `runs()` yields named runs, each a base config plus overrides.

    from experiments.sweep import Run

    def runs():
      for samples in ('1.28M', '12.8M'):
        yield Run(f'b32-{samples}', 'configs/clip.py:ViT-B-32', {'train.samples': samples})

Overrides are the dotted keys the train CLI takes (`{'train.samples': '1.28e9'}` is
`--config.train.samples=1.28e9`). A cooldown branch names its constant-LR parent in the same
sweep (`parent=`); the launcher points `cooldown.parent` at the parent's workdir.

`expand` builds every run's config as the train CLI will (`train.config.build_config`: the
config file plus the overrides, each read as its flag would be), checks it with the same
`validate` and step plan, checks the sweep as a whole (unique names, parents that exist and
match), and reports every problem at once, before anything starts. Flags are written only
when a process is launched (`Planned.flags`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import re
from collections.abc import Iterable, Mapping

import ml_collections

from scaling_vlm import run as run_lib
from scaling_vlm.train import storage
from scaling_vlm.train.config import build_config, format_override, missing_inputs, validate

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
# Per-run scheduler hints a sweep may set (read by the slurm backend).
RESOURCE_KEYS = ('nodes', 'gpus_per_node', 'cpus_per_task', 'time', 'partition', 'account')


class SweepError(ValueError):
  """A sweep that cannot run; the message lists every problem."""


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a sweep. Its workdir is SWEEP_DIR/<name>, and its results' run_id is name."""

  name: str
  config: str  # 'configs/clip.py:ViT-B-32', relative to the repository root or absolute
  overrides: Mapping[str, object] = dataclasses.field(default_factory=dict)
  parent: str | None = None  # cooldown branch: the constant-LR run of this sweep it leaves
  resources: Mapping[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Planned:
  """A run of the sweep checked and resolved (`resolved`: its config, plan and compute), and
  where its cooldown parent lives."""

  run: Run
  resolved: run_lib.Run
  parent_dir: str | None  # a cooldown branch's parent workdir, as the launcher lays it out

  @property
  def name(self) -> str:
    return self.run.name

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.resolved.config

  @property
  def plan(self) -> run_lib.RunPlan:
    return self.resolved.plan

  @property
  def flags(self) -> tuple[str, ...]:
    """The train CLI flags of this run, without --workdir."""
    flags = [f'--config={resolve_config(self.run.config)}']
    flags += [f'--config.{k}={format_override(v)}' for k, v in self.run.overrides.items()]
    if self.parent_dir:
      flags.append(f'--config.cooldown.parent={self.parent_dir}')
    return tuple(flags)

  @property
  def missing_inputs(self) -> list[str]:
    """What the run reads that is not on this machine (`train.config.missing_inputs`); a
    parent in the sweep is made by the sweep, so it is no input."""
    return missing_inputs(self.config, parent=not self.parent_dir)

  @property
  def samples(self) -> int:
    """Samples this run itself trains (a branch reuses its parent's first ones)."""
    return self.plan.total_samples - self.plan.start_samples

  @property
  def compute_gflops(self) -> float:
    return self.resolved.gflops_per_sample * self.samples

  @property
  def train_flops(self) -> float:
    return self.resolved.train_flops_per_sample * self.samples


def load(path: str) -> list[Run]:
  """The runs of the sweep file at `path`."""
  if not os.path.isfile(path):
    raise SweepError(f'sweep file {path!r} does not exist.')
  spec = importlib.util.spec_from_file_location(f'sweep_{pathlib.Path(path).stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not callable(getattr(module, 'runs', None)):
    raise SweepError(f'sweep file {path!r} defines no runs() function yielding Run objects.')
  runs = list(module.runs())
  bad = [r for r in runs if not isinstance(r, Run)]
  if bad:
    raise SweepError(f'{path}: runs() yielded {bad[0]!r}; yield experiments.sweep.Run objects.')
  if not runs:
    raise SweepError(f'{path}: runs() yielded no runs.')
  return runs


def resolve_config(spec: str) -> str:
  """'configs/clip.py:tiny' -> an absolute path (from the working directory, else the
  repository root) with its preset."""
  path, colon, preset = spec.partition(':')
  for candidate in (pathlib.Path(path), REPO / path):
    if candidate.is_file():
      return f'{candidate.resolve()}{colon}{preset}'
  raise ValueError(f'config file {path!r} does not exist (from config {spec!r}).')


def plan_run(run: Run, sweep_dir: str) -> Planned:
  """One run checked as the trainer checks it, with its compute."""
  if not NAME_PATTERN.fullmatch(run.name):
    raise ValueError('a run name is a folder name: letters, digits, ".", "_" and "-".')
  if 'cooldown.parent' in run.overrides:
    raise ValueError("set Run(parent='<run name>') instead of overriding cooldown.parent.")
  unknown = sorted(set(run.resources) - set(RESOURCE_KEYS))
  if unknown:
    raise ValueError(f'unknown resources {unknown}; allowed: {list(RESOURCE_KEYS)}.')
  config = build_config(resolve_config(run.config), dict(run.overrides))
  # The launcher, not the sweep, knows where the parent lives.
  parent_dir = os.path.join(sweep_dir, run.parent) if run.parent else None
  if parent_dir:
    config.cooldown.parent = parent_dir
  validate(config)
  resolved = run_lib.Run(config, os.path.join(sweep_dir, run.name))
  if config.optim.schedule == 'cooldown':
    if not run.parent:
      raise ValueError("optim.schedule=cooldown needs Run(parent='<constant-LR run>').")
    if resolved.plan.start_samples >= resolved.plan.total_samples:
      raise ValueError(
          f'cooldown.start={config.cooldown.start} is not before the end of the run '
          f'(train.samples={config.train.samples}).'
      )
  elif run.parent:
    raise ValueError(
        f'Run(parent={run.parent!r}) is a cooldown branch, but optim.schedule='
        f'{config.optim.schedule!r}; set optim.schedule=cooldown and cooldown.start.'
    )
  return Planned(run=run, resolved=resolved, parent_dir=parent_dir)


def check_branch(branch: Planned, parent: Planned | None) -> None:
  """A branch restores its parent's checkpoint at cooldown.start and continues its schedule,
  so model, batch, LR and warmup must be the parent's, and the parent must keep that step."""
  if parent is None:
    raise ValueError(f'parent {branch.run.parent!r} is not a run of this sweep.')
  if parent.config.optim.schedule != 'const':
    raise ValueError(
        f'parent {parent.name!r} has optim.schedule={parent.config.optim.schedule!r}; a cooldown '
        'branches from a constant-LR run (optim.schedule=const).'
    )
  for key, ours, theirs in (
      ('model.name', branch.config.model.name, parent.config.model.name),
      ('model.custom', branch.config.model.custom, parent.config.model.custom),
      ('train.global_batch', branch.plan.global_batch, parent.plan.global_batch),
      ('optim.lr', branch.config.optim.lr, parent.config.optim.lr),
      ('train.warmup (steps)', branch.plan.warmup_steps, parent.plan.warmup_steps),
  ):
    if ours != theirs:
      raise ValueError(f'{key}={ours!r} differs from parent {parent.name!r} ({theirs!r}).')
  batch, start = branch.plan.global_batch, branch.config.cooldown.start
  states = storage.milestone_states(parent.config, parent.plan)
  kept = sorted(s * batch for s in states)
  if branch.plan.start_samples not in kept:
    raise ValueError(
        f'cooldown.start={start} is not a milestone of parent {parent.name!r}, whose '
        f"checkpoints are kept at samples {kept}; add it to the parent's checkpoint.milestones."
    )
  # A branch continues AdamW where the parent was: it needs the full state there.
  if states[branch.plan.start_samples // batch] != storage.FULL:
    full = sorted(s * batch for s, state in states.items() if state == storage.FULL)
    raise ValueError(
        f'cooldown.start={start}: parent {parent.name!r} keeps only its parameters there '
        f'(checkpoint.branch_points={parent.config.checkpoint.branch_points!r}, full state at '
        f"samples {full}); add it to the parent's checkpoint.branch_points."
    )


def expand(runs: Iterable[Run], sweep_dir: str = 'SWEEP_DIR') -> list[Planned]:
  """Every run checked and planned; a SweepError lists all the problems found."""
  runs = list(runs)
  errors: list[str] = []
  planned: dict[str, Planned] = {}
  seen: set[str] = set()
  for run in runs:
    if run.name in seen:
      errors.append(f'run {run.name!r}: the name is used twice; names are workdirs and run ids.')
      continue
    seen.add(run.name)
    try:
      planned[run.name] = plan_run(run, os.path.abspath(sweep_dir))
    except Exception as error:  # config files and ml_collections raise many kinds
      errors.append(f'run {run.name!r}: {error}')
  for item in planned.values():
    if item.run.parent and (item.run.parent in planned or item.run.parent not in seen):
      try:
        check_branch(item, planned.get(item.run.parent))
      except ValueError as error:
        errors.append(f'run {item.name!r}: {error}')
  if errors:
    raise SweepError(
        f'{len(errors)} problem(s) in the sweep; nothing was launched:\n  ' + '\n  '.join(errors)
    )
  return list(planned.values())
