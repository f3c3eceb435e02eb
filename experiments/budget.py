"""What a sweep costs: GFLOPs on the paper's compute axis, and accelerator-hours at an MFU.

Compute (the scaling-law axis) = GFLOPs per sample (forward, linear layers) x samples the run
trains. Accelerator-hours = training FLOPs (forward + backward, attention included; see
scaling_vlm/flops.py) / (the chip's dense bf16 peak x MFU) / 3600: chip-hours for TPUs,
GPU-hours for GPUs. A cooldown branch counts only the samples after its branch point.

Storage: what each run's checkpoints hold once it is finished, its milestones as
`checkpoint.milestone_state` and `checkpoint.branch_points` keep them (`scaling_vlm.train.storage`:
4 bytes a parameter, 2 in bf16, 12 with AdamW's moments); a run in progress holds two full states
more, for resumption. Parameters are counted from the real Flax modules (shapes only).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from scaling_vlm import flops, models
from scaling_vlm.train import storage

# --accelerator names -> the device_kind whose peak flops.PEAK_BF16_FLOPS lists.
ACCELERATORS = {
    'v4': 'TPU v4',
    'v5e': 'TPU v5e',
    'v5p': 'TPU v5p',
    'v6e': 'TPU v6e',
    'a100': 'NVIDIA A100-SXM4-80GB',
    'h100': 'NVIDIA H100 80GB HBM3',
    'h200': 'NVIDIA H200',
}


def peak_flops(accelerator: str) -> float:
  if accelerator not in ACCELERATORS:
    raise ValueError(
        f'--accelerator={accelerator!r} is not known; choose one of {list(ACCELERATORS)}.'
    )
  return flops.PEAK_BF16_FLOPS[ACCELERATORS[accelerator]]


def check_mfu(mfu: float) -> float:
  if not 0 < mfu <= 1:
    raise ValueError(f'--mfu={mfu} must be a fraction in (0, 1], e.g. 0.4 for 40%.')
  return mfu


def hours(train_flops: float, accelerator: str, mfu: float) -> float:
  return train_flops / (peak_flops(accelerator) * check_mfu(mfu)) / 3600


def count(samples: int) -> str:
  """1280000 -> '1.28M'."""
  for suffix, size in (('B', 1e9), ('M', 1e6), ('k', 1e3)):
    if samples >= size:
      return f'{samples / size:.4g}{suffix}'
  return str(samples)


def missing(planned: Sequence) -> list[str]:
  """The inputs the runs read (shards, BPE files, checkpoints to start from) that are not on
  this machine: each missing one once, with the runs that read it. A sweep may be planned
  where the data is not (a login node), so this is a warning; each run checks again when it
  starts, and refuses to start without them."""
  readers: dict[str, list[str]] = {}
  checked: dict[tuple, list[str]] = {}  # runs share inputs: each distinct set is looked at once
  for p in planned:
    c = p.config
    inputs = (
        c.data.source, str(c.data.shards), c.data.tokenizer, c.data.bpe_path,
        c.init.checkpoint, c.optim.schedule, c.cooldown.parent, bool(p.parent_dir),
    )  # fmt: skip
    if inputs not in checked:
      checked[inputs] = p.missing_inputs
    for problem in checked[inputs]:
      readers.setdefault(problem, []).append(p.name)
  if not readers:
    return []
  lines = [f'missing inputs: {len(readers)} not found on this machine (each run checks again)']
  for problem, names in readers.items():
    runs = names[0] if len(names) == 1 else f'{len(names)} runs, e.g. {names[0]}'
    lines.append(f'  {problem} ({runs})')
  return lines


@functools.lru_cache(maxsize=None)
def params(model: models.ModelConfig) -> int:
  """Parameters of a zoo model (scanned layers trace once per tower: the same count, faster)."""
  return models.param_count(model)


def checkpoint_bytes(p, state: str = storage.FULL) -> int:
  """One checkpoint of planned run `p` keeping `state`."""
  return storage.checkpoint_bytes(params(p.resolved.model), state)


def run_bytes(p) -> int:
  """What planned run `p`'s checkpoints hold once it is finished."""
  return storage.run_bytes(params(p.resolved.model), storage.milestone_states(p.config, p.plan))


def storage_lines(planned: Sequence) -> list[str]:
  """The sweep's checkpoints: once finished, while running, and against full state everywhere;
  and what constant-LR runs keep in full at milestones none of the sweep's branches starts
  from (`checkpoint.branch_points=auto` keeps every one)."""
  states = {p.name: storage.milestone_states(p.config, p.plan) for p in planned}
  kept = [s for p in planned for s in states[p.name].values()]
  full = sum(checkpoint_bytes(p) * len(p.plan.milestone_steps) for p in planned)
  largest = max(checkpoint_bytes(p) for p in planned) * storage.ROLLING
  lines = [
      f'storage: {storage.size(sum(run_bytes(p) for p in planned))} of checkpoints once every run '
      f'is finished ({kept.count(storage.FULL)} milestones with the full state, '
      f'{len(kept) - kept.count(storage.FULL)} with parameters alone; {storage.size(full)} if '
      f'all kept the full state); a run in progress holds {storage.ROLLING} full states more '
      f'(up to {storage.size(largest)})'
  ]
  starts: dict[str, set[int]] = {}
  for p in planned:
    if p.run.parent:
      starts.setdefault(p.run.parent, set()).add(p.plan.cooldown_start)
  unused = [
      (p, [s for s, kept in states[p.name].items() if kept == storage.FULL and s not in used])
      for p in planned
      if str(p.config.checkpoint.branch_points).strip() == 'auto'
      and (used := starts.get(p.name)) is not None
  ]
  spare = sum(
      len(steps) * (checkpoint_bytes(p) - checkpoint_bytes(p, p.config.checkpoint.milestone_state))
      for p, steps in unused
  )
  if spare:
    lines.append(
        f'  {storage.size(spare)} of it is the full state of constant-LR runs at milestones no '
        'branch starts from: give those runs checkpoint.branch_points (the starts of their '
        'branches) to keep parameters alone there'
    )
  return lines


def report(planned: Sequence, accelerator: str, mfu: float) -> list[str]:
  """One line per run, the storage (`storage_lines`), the inputs that are missing here
  (`missing`) and a total line."""
  unit = f'{accelerator}-h'
  width = max(len(p.name) for p in planned)
  lines = [
      f'{"run":<{width}}  {"model":<18} {"schedule":<8} {"samples":>8} {"batch":>6} '
      f'{"steps":>7} {"GFLOPs/sample":>13} {"GFLOPs":>9} {unit:>10} {"checkpoints":>11}'
  ]
  for p in planned:
    lines.append(
        f'{p.name:<{width}}  {p.config.model.name:<18} {p.config.optim.schedule:<8} '
        f'{count(p.samples):>8} {p.plan.global_batch:>6} '
        f'{p.samples // p.plan.global_batch:>7} {p.resolved.gflops_per_sample:>13.4g} '
        f'{p.compute_gflops:>9.3g} {hours(p.train_flops, accelerator, mfu):>10.4g} '
        f'{storage.size(run_bytes(p)):>11}'
    )
  lines += storage_lines(planned)
  lines += missing(planned)
  total_gflops = sum(p.compute_gflops for p in planned)
  total_flops = sum(p.train_flops for p in planned)
  lines.append(
      f'total: {len(planned)} runs, {total_gflops:.4g} GFLOPs (paper convention), '
      f'{total_flops:.4g} training FLOPs, {hours(total_flops, accelerator, mfu):.4g} '
      f'{accelerator}-hours at {mfu:.0%} MFU'
  )
  return lines
