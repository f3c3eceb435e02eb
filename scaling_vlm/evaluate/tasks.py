"""The evaluation tasks a checkpoint is scored on, named on the command line.

    synthetic              the synthetic world's tasks: zero-shot shape, colour, count and
                           shape_colour, retrieval, and captioning (models that caption)
    synthetic/shape ...    one of them
    zeroshot:NAME=FOLDER   a clip_benchmark classification folder (see benchmark_wds)
    retrieval:NAME=FOLDER  a clip_benchmark / MS-COCO-style retrieval folder
    tfds:DATASET[/SPLIT][=FOLDER]  a prepared TFDS dataset: the suite's (tfds_catalog) with
                           their carried class names, test split and clip_benchmark's task name
                           (tfds:imagenet2012 is `imagenet1k`, tfds:coco_captions retrieval
                           `mscoco_captions`), any other classification set with its own labels;
                           class names from FOLDER if given (see tfds_tasks)
    tfds:DATASET/CONFIG/SPLIT  the same, another builder config

A task's data is loaded once per run, on first use, its images decoded then and kept in
memory where they fit (`embeddings.preload`); a task whose data cannot be loaded fails alone.
The synthetic sets are pure functions of their arguments, so a process keeps them for every
run it evaluates.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from scaling_vlm.data import synthetic
from scaling_vlm.evaluate import benchmark_wds, captioning, retrieval, tfds_catalog, tfds_tasks
from scaling_vlm.evaluate import embeddings, zero_shot

ZERO_SHOT, RETRIEVAL, CAPTIONING = 'zero_shot', 'retrieval', 'captioning'
SYNTHETIC_ZERO_SHOT = ('shape', 'colour', 'count', 'shape_colour')
DEFAULT_TASKS = ('synthetic',)


@dataclasses.dataclass
class Task:
  """A named evaluation: `load()` returns its data, `kind` says how it is scored."""

  name: str
  kind: str
  load: Callable[[], Any]

  @functools.cached_property
  def data(self) -> Any:
    return self.load()

  def run(self, model, tokenizer, image_size: int, batch_size: int) -> tuple[dict, list]:
    """(metrics, generated captions) of `model` on this task."""
    if self.kind == ZERO_SHOT:
      return zero_shot.evaluate(model, tokenizer, self.data, image_size, batch_size), []
    if self.kind == RETRIEVAL:
      return retrieval.evaluate(model, tokenizer, self.data, image_size, batch_size), []
    # Caption logits are batch x context x vocab floats: 64 rows (rounded to whole rows per
    # device) keep them near 1 GB at the paper's 49408-word vocabulary.
    caption_batch = embeddings.whole_rows(min(batch_size, 64))
    return captioning.evaluate(model, tokenizer, self.data, image_size, caption_batch)


def _preload(data: Any, kind: str, image_size: int) -> Any:
  """A task's data with its images read once (`embeddings.preload`); captioning reads its
  records its own way."""
  if kind == ZERO_SHOT:
    return dataclasses.replace(data, source=embeddings.preload(data.source, image_size))
  if kind == RETRIEVAL:
    return embeddings.preload(data, image_size)
  return data


@functools.lru_cache(maxsize=16)
def _synthetic_set(task: str, image_size: int, size: int) -> Any:
  """A synthetic evaluation set, rendered once per process: seed 0 whatever the run's data
  seed, so every run is scored on the same scenes."""
  if task == 'retrieval':
    return _preload(synthetic.retrieval_split(0, image_size, size), RETRIEVAL, image_size)
  data = next(z for z in synthetic.zero_shot_tasks(0, image_size, size) if z.name == task)
  return _preload(data, ZERO_SHOT, image_size)


def _synthetic(name: str, image_size: int, size: int, captions: bool) -> list[Task]:
  """The synthetic tasks `name` ('synthetic' or 'synthetic/<task>') stands for; all of
  'synthetic' includes captioning for a model that captions."""
  task = name.partition('/')[2]
  tasks = [
      Task(f'synthetic/{t}', ZERO_SHOT, functools.partial(_synthetic_set, t, image_size, size))
      for t in SYNTHETIC_ZERO_SHOT
  ]
  tasks.append(
      Task(
          'synthetic/retrieval',
          RETRIEVAL,
          functools.partial(_synthetic_set, 'retrieval', image_size, size),
      )
  )
  if task == 'captioning' or (not task and captions):
    tasks.append(
        Task(
            'synthetic/captioning',
            CAPTIONING,
            lambda: synthetic.SyntheticWorld(0, image_size, split='val', size=size),
        )
    )
  if not task:
    return tasks
  chosen = [t for t in tasks if t.name == name]
  if not chosen:
    valid = [*(t.name for t in tasks), 'synthetic/captioning']
    raise ValueError(f'unknown task {name!r}; synthetic tasks are {sorted(set(valid))}')
  return chosen


def _tfds(spec: str) -> Task:
  path, _, folder = spec.removeprefix('tfds:').partition('=')
  dataset = tfds_catalog.resolve(path)
  if dataset.order != 'retrieval':
    return Task(
        dataset.task, ZERO_SHOT, functools.partial(tfds_tasks.zero_shot_task, dataset, folder)
    )
  if folder:
    raise ValueError(f'task spec {spec!r}: a retrieval dataset takes no =FOLDER')
  return Task(dataset.task, RETRIEVAL, functools.partial(tfds_tasks.retrieval_source, dataset))


def make_tasks(
    specs: list[str], image_size: int, synthetic_size: int, *, captions: bool = False
) -> list[Task]:
  """Tasks from command-line specs (see the module docstring), in order, without repeats;
  `captions`: the model has a captioning head (`Arch.captions`)."""
  tasks: dict[str, Task] = {}
  for spec in specs:
    if spec == 'synthetic' or spec.startswith('synthetic/'):
      new = _synthetic(spec, image_size, synthetic_size, captions)
    elif spec.startswith(('zeroshot:', 'retrieval:')) and '=' in spec:
      kind, _, rest = spec.partition(':')
      name, _, folder = rest.partition('=')
      if kind == 'zeroshot':
        new = [Task(name, ZERO_SHOT, lambda n=name, f=folder: benchmark_wds.zero_shot_task(n, f))]
      else:
        new = [Task(name, RETRIEVAL, lambda f=folder: benchmark_wds.retrieval_source(f))]
    elif spec.startswith('tfds:'):
      new = [_tfds(spec)]
    else:
      raise ValueError(
          f'task spec {spec!r} is not one of: synthetic, synthetic/<task>, '
          'zeroshot:NAME=FOLDER, retrieval:NAME=FOLDER, tfds:DATASET[/SPLIT][=FOLDER]'
      )
    for task in new:
      tasks.setdefault(task.name, task)
  # Every task's images are read once per run; synthetic sets arrive already read (once per
  # process), and preloading what is preloaded is a no-op.
  return [
      dataclasses.replace(t, load=functools.partial(_load_preloaded, t.load, t.kind, image_size))
      for t in tasks.values()
  ]


def _load_preloaded(load: Callable[[], Any], kind: str, image_size: int) -> Any:
  return _preload(load(), kind, image_size)
