"""Class names and prompt templates of the paper's zero-shot suite, carried as data.

The paper scores checkpoints with clip_benchmark, so its names and templates are used, copied
as data (not code) into `data/`:

    clip_benchmark_classnames.json  LAION-AI/CLIP_benchmark clip_benchmark/datasets/
                                    en_classnames.json (commit 374d11f)
    clip_benchmark_templates.json   .../en_zeroshot_classification_templates.json (374d11f)
    openai_classnames.json          openai/CLIP data/prompts.md: the datasets for which
                                    clip_benchmark takes the class list from torchvision
                                    (CIFAR-10/100, Cars, FGVC-Aircraft, DTD, Food-101, SUN397,
                                    STL-10, RESISC45, VOC2007, Rendered SST2); OpenAI's lists are
                                    those lists made readable ('aquarium fish', not
                                    'aquarium_fish')
    imagenet_wnids.json             the 1000 ImageNet synsets in label order (TFDS
                                    imagenet2012 labels.txt, the order of OpenAI's names) and
                                    clip_benchmark's 200-class subsets of ImageNet-A, -R and -O
                                    (clip_benchmark/datasets/builder.py)

Names are clip_benchmark's dataset names ('imagenet1k', 'cars', 'pets', 'imagenet-a', ...).
Each list is in its source's label order, which is not always TFDS's: `tfds_catalog` aligns
them with a TFDS dataset's labels.
"""

from __future__ import annotations

import functools
import json
import os

DATA_DIR = os.path.join(os.path.dirname(__file__), 'data')
# clip_benchmark scores ImageNet's variants with ImageNet's names (a subset for -A, -R, -O).
IMAGENET_VARIANTS = ('imagenet1k', 'imagenetv2', 'imagenet_sketch', 'imagenet-a', 'imagenet-r')
IMAGENET_SUBSETS = ('imagenet-a', 'imagenet-r', 'imagenet-o')
DEFAULT_TEMPLATES = 'imagenet1k'  # clip_benchmark's templates for a dataset it has none for


@functools.cache
def _load(file: str) -> dict[str, tuple[str, ...]]:
  with open(os.path.join(DATA_DIR, file)) as handle:
    return {name: tuple(values) for name, values in json.load(handle).items()}


def _lists() -> dict[str, tuple[str, ...]]:
  return _load('clip_benchmark_classnames.json') | _load('openai_classnames.json')


def names() -> list[str]:
  """Every dataset with carried class names."""
  return sorted({*_lists(), *IMAGENET_VARIANTS, *IMAGENET_SUBSETS})


def wnids(name: str = 'imagenet1k') -> tuple[str, ...]:
  """ImageNet synsets: all 1000 in label order, or a variant's subset (sorted, as its labels)."""
  table = _load('imagenet_wnids.json')
  if name in IMAGENET_SUBSETS:
    return table[name]
  if name in IMAGENET_VARIANTS:
    return table['imagenet1k']
  known = sorted({*IMAGENET_VARIANTS, *IMAGENET_SUBSETS})
  raise ValueError(f'{name!r} is not an ImageNet variant; known: {known}')


def classnames(name: str) -> tuple[str, ...]:
  """The class names of dataset `name` in its source's label order."""
  lists = _lists()
  if name in IMAGENET_VARIANTS or name in IMAGENET_SUBSETS:
    by_wnid = dict(zip(wnids(), lists['imagenet1k']))
    return tuple(by_wnid[w] for w in wnids(name))
  if name not in lists:
    raise ValueError(f'no carried class names for {name!r}; known: {names()}')
  return lists[name]


def templates(name: str) -> tuple[str, ...]:
  """The prompt templates of dataset `name` (`{c}` where the class name goes); ImageNet's 80
  where clip_benchmark has none of its own, as clip_benchmark does."""
  table = _load('clip_benchmark_templates.json')
  return table.get(name, table[DEFAULT_TEMPLATES])
