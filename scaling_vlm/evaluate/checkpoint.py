"""One checkpoint evaluated by path, as clip_benchmark evaluates one model:
`python -m scaling_vlm.evaluate --checkpoint PATH [--model NAME] --tasks ...`.

PATH is a step folder of one of our runs (`WORKDIR/checkpoints/STEP`, or its `state` item), or
a parameters file: an open_clip `.safetensors` (the hub's, or what `python -m scaling_vlm.convert
export` writes), a torch `.pt`/`.bin` state dict (where torch is installed), or an `.npz` of the
same tensors under the same names. A run's step folder brings the run's config (its model,
numerics and tokenizer); anything else is read as the zoo preset of `--model` would train it,
an open_clip name reading text with the CLIP BPE (`--bpe_path`, or an installed open_clip's).
The metrics are printed (and written to `--out`), never added to a results table: a file has no
run, and so no place on the compute axis.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence

import jax
import ml_collections
import numpy as np
from flax import nnx

from configs import presets
from scaling_vlm import convert, models, run as run_lib
from scaling_vlm.convert import files
from scaling_vlm.data import sources
from scaling_vlm.evaluate import mesh as mesh_lib
from scaling_vlm.evaluate import milestones
from scaling_vlm.evaluate import progress as progress_lib
from scaling_vlm.evaluate import restore
from scaling_vlm.evaluate import tasks as tasks_lib

FILES = (*files.SAFETENSORS, *files.TORCH, '.npz')
CLIP_VOCAB = 49408  # open_clip's BPE vocabulary: such models read text with clip_bpe
CSV_COLUMNS = ('checkpoint', 'model', 'task', 'metric', 'value')


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  """What PATH holds, found without reading its tensors."""

  given: str  # PATH as given
  path: str  # the orbax `state` folder, or the file
  config: ml_collections.ConfigDict  # the run's, or the preset of --model
  label: str  # how progress and the table name it: `run @ N samples`, or PATH

  @property
  def is_file(self) -> bool:
    return os.path.isfile(self.path)

  @property
  def arch(self) -> models.ModelConfig:
    return run_lib.model_config(self.config)


class OtherModel(ValueError):
  """The checkpoint holds parameters of another model than the one it is read as."""


@dataclasses.dataclass
class Result:
  metrics: dict[str, dict[str, float]]  # task -> metric -> value, in task order
  skipped: list[tuple[str, str]]  # (task, why)


def resolve(path: str, model: str | None = None, bpe_path: str | None = None) -> Checkpoint:
  """The checkpoint at `path`, its model and tokenizer settled; ValueError, one line, for a
  path that is no checkpoint, a model name that is not the zoo's or not the run's, or a missing
  BPE file. Reads no tensors."""
  given = path
  if os.path.isfile(path):
    if not path.endswith(FILES):
      raise ValueError(f'--checkpoint {path}: a parameters file is one of {list(FILES)}')
    config, label = _preset(path, model), path
  elif os.path.isdir(path):
    config, path, label = _orbax(path, model)
  else:
    raise ValueError(f'--checkpoint {path}: no such file or folder')
  if bpe_path:
    if not os.path.isfile(bpe_path):
      raise ValueError(f'--bpe_path {bpe_path}: no such file')
    config.data.bpe_path = bpe_path
  if config.data.tokenizer == 'clip_bpe':
    try:
      sources.clip_bpe_path(config.data)
    except ValueError:
      raise ValueError(
          f'{config.model.name} reads text with the CLIP BPE tokenizer: give --bpe_path'
          ' bpe_simple_vocab_16e6.txt.gz (open_clip ships it) or install open_clip'
      ) from None
  return Checkpoint(given, path, config, label)


def _preset(where: str, model: str | None) -> ml_collections.ConfigDict:
  """The config the zoo preset of `model` trains with, for a checkpoint without a run."""
  if not model:
    raise ValueError(f'--checkpoint {where} has no run config beside it: name its --model')
  config = presets.for_model(model)  # an unknown name: ValueError naming the near ones
  if models.get_config(model).text.vocab_size == CLIP_VOCAB:
    config.data.tokenizer = 'clip_bpe'
  return config


def _orbax(path: str, model: str | None) -> tuple[ml_collections.ConfigDict, str, str]:
  """(config, state folder, label) of a step folder or its `state` item: the run's config when
  the folder is `WORKDIR/checkpoints/STEP`, else the preset of `model` (scanned layers or not,
  as the checkpoint holds them)."""
  path = os.path.abspath(path)
  state = path if os.path.basename(path) == 'state' else os.path.join(path, 'state')
  params = _saved_params(state)
  if params is None and run_lib.Workdir(path).has_config():
    raise ValueError(
        f'--checkpoint {path} is a run: evaluate it with --workdir, or give one of its'
        ' checkpoints (WORKDIR/checkpoints/STEP)'
    )
  if params is None:
    raise ValueError(
        f'--checkpoint {path} is not a checkpoint: give a step folder of a run'
        f' (WORKDIR/checkpoints/STEP) or a parameters file ({", ".join(FILES)})'
    )
  step_dir = os.path.dirname(state)
  workdir = run_lib.Workdir(os.path.dirname(os.path.dirname(step_dir)))
  in_run = os.path.basename(os.path.dirname(step_dir)) == 'checkpoints' and workdir.has_config()
  if not in_run:
    config = _preset(path, model)
    config.model.scan_layers = _scanned(params)
    return config, state, path
  config = workdir.read_config()
  if model and model != config.model.name:
    raise ValueError(f'--model {model}: {path} is a checkpoint of {config.model.name}')
  step = os.path.basename(step_dir)
  samples = int(step) * config.train.global_batch if step.isdigit() else None
  label = f'{workdir.run_id} @ {samples:,} samples' if samples is not None else path
  return config, state, label


def _saved_params(state: str):
  """The metadata tree of the parameters saved in an orbax `state` folder, None if none is."""
  if not os.path.isdir(state):
    return None
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

  try:
    return ocp.PyTreeCheckpointer().metadata(state).item_metadata['params']
  except Exception:  # pylint: disable=broad-except  # orbax's kinds for a non-checkpoint vary
    return None


def _scanned(tree) -> bool:
  """Whether parameters were saved with their layers stacked (`layers` keyed by sublayer
  name, not by layer number)."""
  if not isinstance(tree, Mapping):
    return False
  for key, value in tree.items():
    if key == 'layers' and isinstance(value, Mapping) and not all(k.isdigit() for k in value):
      return True
    if _scanned(value):
      return True
  return False


def load(checkpoint: Checkpoint, mesh: jax.sharding.Mesh):
  """The model holding the checkpoint's parameters, laid out on `mesh`; a file or folder of
  another model is OtherModel, naming the first parameter that differs."""
  arch = checkpoint.arch
  # Outside the mesh context: the abstract model carries logical axis names, not mesh axes.
  graphdef, abstract = nnx.split(models.abstract(arch))
  if not checkpoint.is_file:
    try:
      state = restore.params(abstract, checkpoint.path, mesh)
    except ValueError as error:  # what restore finds: a parameter the model lacks, or a shape
      raise OtherModel(str(error)) from None
    return nnx.merge(graphdef, state)
  if checkpoint.path.endswith('.npz'):
    with np.load(checkpoint.path) as archive:
      tensors = {name: archive[name] for name in archive.files}
  else:
    tensors = files.read(checkpoint.path).tensors
  try:
    flat = convert.ours_from_theirs(tensors, arch.replace(scan_layers=False), checkpoint.path)
  except ValueError as error:  # missing, unexpected or misshapen tensors
    raise OtherModel(str(error)) from None
  tree = convert.nested(flat, arch.scan_layers)
  return nnx.merge(graphdef, restore.from_host(abstract, tree, mesh))


def evaluate(
    checkpoint: Checkpoint,
    specs: Sequence[str] = tasks_lib.DEFAULT_TASKS,
    *,
    synthetic_size: int = 1000,
    batch_size: int = 256,
    mesh: str = mesh_lib.DEFAULT,
    progress: progress_lib.Progress | None = None,
) -> Result:
  """The checkpoint's metrics on the tasks `specs` name, with the suite average of the
  zero-shot ones when all of them ran; a task that fails is skipped with why."""
  progress = progress or progress_lib.Progress()
  arch, label = checkpoint.arch, checkpoint.label
  tokenizer = sources.make_tokenizer(checkpoint.config.data, arch.text)
  image_size = arch.vision.image_size
  tasks = tasks_lib.make_tasks(specs, image_size, synthetic_size, captions=arch.spec.captions)
  progress.plan(label, [t.name for t in tasks])
  result = Result({}, [])
  devices = mesh_lib.make(mesh_lib.parse(mesh, checkpoint.config.get('mesh')))
  progress.now(f'{label}: reading the checkpoint')
  start = time.perf_counter()
  model = load(checkpoint, devices)
  progress.read(label, time.perf_counter() - start)
  with jax.set_mesh(devices):
    for task in tasks:
      progress.now(f'{label}: {task.name}')
      start = time.perf_counter()
      try:
        metrics, _ = task.run(model, tokenizer, image_size, batch_size)
      except Exception as error:  # pylint: disable=broad-except  # this task fails alone
        lines = str(error).strip().splitlines()
        result.skipped.append((task.name, f'{type(error).__name__}: {lines[0] if lines else ""}'))
        progress.dropped(label, task.name, result.skipped[-1][1])
        continue
      result.metrics[task.name] = metrics
      progress.finished(label, task.name, time.perf_counter() - start, metrics)
  zero_shot = [t.name for t in tasks if t.kind == tasks_lib.ZERO_SHOT]
  average = milestones.average({n: result.metrics.get(n) for n in zero_shot})
  if average:
    result.metrics[milestones.AVERAGE_TASK] = average
  return result


def table(checkpoint: Checkpoint, result: Result) -> str:
  """The metrics as aligned columns, one row per (task, metric), under the checkpoint's name."""
  rows = [
      (task if i == 0 else '', metric, progress_lib.number(value))
      for task, metrics in result.metrics.items()
      for i, (metric, value) in enumerate(metrics.items())
  ]
  header = ('task', 'metric', 'value')
  widths = [max(len(row[c]) for row in [header, *rows]) for c in range(3)]
  lines = [f'{checkpoint.label} ({checkpoint.config.model.name})']
  for row in [header, *rows]:
    lines.append(f'{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}')
  lines += [f'SKIPPED {task}: {why}' for task, why in result.skipped]
  return '\n'.join(lines)


def write_csv(path: str, checkpoint: Checkpoint, result: Result) -> None:
  """The metrics as CSV rows (CSV_COLUMNS), the file replaced whole."""
  temporary = f'{path}.tmp'
  with open(temporary, 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow(CSV_COLUMNS)
    for task, metrics in result.metrics.items():
      for metric, value in metrics.items():
        writer.writerow([checkpoint.given, checkpoint.config.model.name, task, metric, value])
  os.replace(temporary, path)
