"""open_clip checkpoints as runs of ours, and runs of ours as open_clip checkpoints.

An imported checkpoint becomes a workdir like a trained run's: `config.json` (the zoo name's
preset, its samples seen as the run's single milestone, so that its evaluation rows land at the
right compute) and `checkpoints/<step>/state` with the parameters. It holds no optimiser or
data-iterator state, so it is evaluated, exported, or started from (`init.checkpoint`), not
resumed.
"""

from __future__ import annotations

import os

import numpy as np
import orbax.checkpoint as ocp

from configs import presets
from scaling_vlm import convert, models, run as run_lib
from scaling_vlm.convert import files
from scaling_vlm.train import checkpoints
from scaling_vlm.train.config import init_source


def samples_seen(
    state: files.StateDict, samples: int | None, samples_per_epoch: int | None, where: str
) -> int:
  """The samples a checkpoint had seen: given, or its epoch x the run's samples per epoch."""
  if samples is not None:
    return samples
  if samples_per_epoch is not None and state.epoch is not None:
    return state.epoch * samples_per_epoch
  known = f'it records epoch {state.epoch}' if state.epoch is not None else 'it records no epoch'
  raise ValueError(
      f'{where}: how many samples had it seen? {known}; give --samples-seen N, or '
      '--samples-per-epoch N for a training checkpoint.'
  )


def imported_config(name: str, samples: int, global_batch: int, schedule: str, total: int):
  """The config of an imported checkpoint: the preset of `name`, at `samples` seen of a run
  of `total`."""
  config = presets.for_model(name)
  if samples < 1 or samples % global_batch or total % global_batch or samples > total:
    raise ValueError(
        f"samples seen {samples} and the run's total {total} must be positive multiples of "
        f'the global batch {global_batch}, the first at most the second (--global-batch).'
    )
  config.train.global_batch = global_batch
  config.train.samples = str(total)
  config.train.warmup = '0'
  config.optim.schedule = schedule
  config.checkpoint.milestones = str(samples)
  if models.get_config(name).text.vocab_size == 49408:
    config.data.tokenizer = 'clip_bpe'
  return config


def save_params(flat: dict[str, np.ndarray], directory: str) -> None:
  """Parameters (our flat paths, unscanned) as a checkpoint's `state` item ({'params': ...}),
  which evaluation reads and `init.checkpoint` starts from; numpy in, no device copy."""
  # One file per array instead of OCDBT's shared database, which buffered the whole model a
  # second time (peak host memory 3.0x the checkpoint for ViT-L-14, 2.3x this way).
  checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=False))
  checkpointer.save(
      os.path.abspath(directory), args=ocp.args.PyTreeSave({'params': convert.nested(flat, False)})
  )


def import_checkpoint(
    path: str,
    name: str,
    workdir: str,
    *,
    samples: int | None = None,
    samples_per_epoch: int | None = None,
    global_batch: int | None = None,
    schedule: str = 'cosine',
    total_samples: int | None = None,
) -> run_lib.Run:
  """Writes the open_clip checkpoint at `path` as a run of zoo model `name` in `workdir`."""
  folder = run_lib.Workdir(workdir)
  if folder.has_config() or folder.saved_steps():
    raise ValueError(f'{workdir} already holds a run; import into a new folder.')
  config = models.get_config(name).replace(scan_layers=False)
  state = files.read(path)
  seen = samples_seen(state, samples, samples_per_epoch, path)
  flat = convert.ours_from_theirs(state.tensors, config, path)  # every check before a write
  batch = global_batch or presets.for_model(name).train.global_batch
  run_config = imported_config(name, seen, batch, schedule, total_samples or seen)
  run = run_lib.Run(run_config, folder)
  with folder.locked():
    save_params(flat, os.path.join(folder.checkpoints, str(seen // batch), 'state'))
    folder.write_config(run_config)
  return run


def read_params(workdir: str, step: int | None = None) -> tuple[run_lib.Run, int, dict]:
  """A run's parameters at `step` (default: its latest checkpoint) as our flat dotted paths."""
  run = run_lib.Run.load(workdir)
  saved = sorted(run.workdir.saved_steps())
  if not saved:
    raise ValueError(f'{workdir} has no checkpoint.')
  step = saved[-1] if step is None else step
  if step not in saved:
    raise ValueError(f'{workdir} has no checkpoint at step {step}; it has {saved}.')
  params = checkpoints.read_params(
      os.path.abspath(os.path.join(run.workdir.checkpoints, str(step), 'state'))
  )
  if run.model.scan_layers:
    params = convert.unstack_layers(params)
  return run, step, {k: np.asarray(v) for k, v in convert.flatten(params).items()}


def export_run(workdir: str, out: str, step: int | None = None) -> tuple[int, dict]:
  """Writes a run's checkpoint as the open_clip / fork `.safetensors` of its model."""
  run, step, flat = read_params(workdir, step)
  config = run.model.replace(scan_layers=False)
  tensors = convert.layout.to_theirs(flat, config)
  files.write_safetensors(tensors, out)
  return step, tensors


def init_params(spec: str, config) -> dict[str, np.ndarray]:
  """The parameters `init.checkpoint` names (a run's DIR or DIR:STEP, or an open_clip file),
  as our flat paths, refused unless they are `config`'s model's, naming the first parameter
  that differs with both shapes."""
  unscanned = config.replace(scan_layers=False)
  path, step = init_source(spec)
  if os.path.isfile(path):
    return convert.ours_from_theirs(files.read(path).tensors, unscanned, spec)
  run, _, flat = read_params(path, step)
  expected = convert.flat_params(models.abstract(unscanned.replace(scan_layers=True)))
  for name in sorted(set(expected) | set(flat)):
    have = flat[name].shape if name in flat else None
    want = expected[name].shape if name in expected else None
    if have != want:
      raise ValueError(
          f'init.checkpoint={spec!r} is a {run.model.name} checkpoint, not one of '
          f'{config.name}: parameter {name} is {have} there and {want} here.'
      )
  return flat
