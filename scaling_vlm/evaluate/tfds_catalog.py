"""The TFDS datasets of the paper's suite: the task name each is scored under, its test split,
and how its label ids line up with the carried class names (`classnames`).

Task names are clip_benchmark's dataset names, so that `imagenet1k` and `mscoco_captions` rows
line up with the paper's table. Splits are the ones clip_benchmark scores (VTAB's for the VTAB
datasets: EuroSAT and RESISC45 test on the last 20% of TFDS's train split).

Label order is checked, not assumed (`align`):
  wnid      ImageNet and its variants: TFDS labels are WordNet ids; each picks OpenAI's name for
            it, and ImageNet-A/-R keep only their 200 classes (labels renumbered).
  name      TFDS's label names are matched to the carried names (case, '_', '/' and SUN397's
            '/a/' prefix ignored) and the names put in TFDS's order: Food-101 and SUN397 order
            two classes differently from OpenAI's lists. Label names that are bare numbers
            (TFDS's CIFAR and STL-10 code before preparation, its mock data) keep the carried
            order, the datasets' standard one.
  position  the carried names are worded differently from TFDS's but in its label order
            (clip_benchmark's VTAB lists for Caltech-101, EuroSAT and Flowers-102; numeric
            labels elsewhere); tests check the order against TFDS's label files.
  labels    a dataset outside the suite: its own label names, one generic template.

Not here, because TFDS lacks them or VTAB derives their labels from other features:
FGVC-Aircraft, GTSRB, Country211, FER2013, Rendered SST2, ObjectNet, ImageNet-O, VOC2007,
CLEVR, KITTI, dSprites, smallNORB. Their names are carried all the same, for clip_benchmark's
webdataset export (`zeroshot:NAME=FOLDER`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from scaling_vlm.evaluate import classnames

ORDERS = ('wnid', 'name', 'position', 'labels', 'retrieval')


@dataclasses.dataclass(frozen=True)
class Dataset:
  task: str  # the results table's task name
  builder: str  # TFDS name[/config]
  split: str
  order: str = 'name'  # one of ORDERS; 'retrieval' for image-caption sets
  names: str = ''  # the carried class-name list, when not named as the task

  def __post_init__(self):
    if self.order not in ORDERS:
      raise ValueError(f'{self.task}: order {self.order!r} is not one of {list(ORDERS)}')


_SUITE = (
    Dataset('imagenet1k', 'imagenet2012', 'validation', 'wnid'),
    Dataset('imagenetv2', 'imagenet_v2/matched-frequency', 'test', 'wnid'),
    Dataset('imagenet_sketch', 'imagenet_sketch', 'test', 'wnid'),
    Dataset('imagenet-a', 'imagenet_a', 'test', 'wnid'),
    Dataset('imagenet-r', 'imagenet_r', 'test', 'wnid'),
    Dataset('cifar10', 'cifar10', 'test'),
    Dataset('cifar100', 'cifar100', 'test'),
    Dataset('caltech101', 'caltech101', 'test', 'position', names='caltech101_vtab'),
    Dataset('cars', 'cars196', 'test'),
    Dataset('dtd', 'dtd', 'test'),
    Dataset('eurosat', 'eurosat/rgb', 'train[80%:]', 'position'),
    Dataset('flowers', 'oxford_flowers102', 'test', 'position'),
    Dataset('food101', 'food101', 'validation'),
    Dataset('mnist', 'mnist', 'test', 'position'),
    Dataset('pets', 'oxford_iiit_pet', 'test'),
    Dataset('pcam', 'patch_camelyon', 'test', 'position'),
    Dataset('resisc45', 'resisc45', 'train[80%:]'),
    Dataset('stl10', 'stl10', 'test'),
    Dataset('sun397', 'sun397/tfds', 'test'),
    Dataset('svhn', 'svhn_cropped', 'test', 'position'),
    Dataset('dmlab', 'dmlab', 'test', 'position'),
    Dataset(
        'diabetic_retinopathy', 'diabetic_retinopathy_detection/btgraham-300', 'test', 'position'
    ),
    Dataset('mscoco_captions', 'coco_captions/2014', 'test', 'retrieval'),  # Karpathy 5k test
)
CATALOG = {d.builder.partition('/')[0]: d for d in _SUITE}


def resolve(path: str) -> Dataset:
  """`DATASET`, `DATASET/SPLIT` or `DATASET/CONFIG/SPLIT` (TFDS names) as a Dataset: the
  catalogue's entry, or the dataset's own labels outside it. A split or config other than the
  catalogue's gets the spec as its task name, so its rows never pass for the suite's."""
  parts = path.split('/')
  if not all(parts) or len(parts) > 3:
    raise ValueError(f'tfds:{path} is not DATASET, DATASET/SPLIT or DATASET/CONFIG/SPLIT')
  base = CATALOG.get(parts[0]) or Dataset(parts[0], parts[0], 'test', 'labels')
  builder = '/'.join(parts[:2]) if len(parts) == 3 else base.builder
  split = parts[-1] if len(parts) > 1 else base.split
  if (builder, split) == (base.builder, base.split):
    return base
  return dataclasses.replace(base, task=f'tfds:{path}', builder=builder, split=split)


def _key(name: str) -> str:
  """What name matching ignores: case, SUN397's '/a/' prefix, '_', '/' and repeated spaces."""
  return re.sub(r'[\s_/]+', ' ', re.sub(r'^/[a-z]/', '', name.lower())).strip()


def align(dataset: Dataset, label_names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
  """(class names, remap): TFDS label l is class remap[l] of the names, -1 where the label is
  not one of the task's classes. Raises ValueError when the carried names do not fit."""
  label_names = list(label_names)
  where = f'tfds {dataset.builder} ({len(label_names)} labels)'
  if dataset.order == 'wnid':
    return _align_wnids(dataset, label_names, where)
  carried = classnames.classnames(dataset.names or dataset.task)
  if len(carried) != len(label_names):
    raise ValueError(
        f'{where}: the carried class names of {dataset.task!r} number {len(carried)}; they do not'
        ' belong to this dataset'
    )
  identity = np.arange(len(label_names))
  if dataset.order == 'position' or all(name.isdigit() for name in label_names):
    return carried, identity
  by_key = {_key(name): name for name in carried}
  unmatched = [name for name in label_names if _key(name) not in by_key]
  if unmatched:
    raise ValueError(
        f'{where}: labels {unmatched[:5]} match none of the carried class names of'
        f' {dataset.task!r}'
    )
  return tuple(by_key[_key(name)] for name in label_names), identity


def _align_wnids(dataset: Dataset, label_names: list[str], where: str):
  wanted = classnames.wnids(dataset.task)
  missing = sorted(set(wanted) - set(label_names))
  if missing:
    raise ValueError(
        f'{where}: {len(missing)} of the {len(wanted)} WordNet ids of {dataset.task!r} are not'
        f' among its labels (first: {missing[:3]}); ImageNet datasets label by WordNet id'
    )
  index = {wnid: i for i, wnid in enumerate(wanted)}
  return classnames.classnames(dataset.task), np.array([index.get(n, -1) for n in label_names])
