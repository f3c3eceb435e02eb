"""TFDS datasets as zero-shot and retrieval tasks, read with TFDS's ArrayRecord data sources:
random access with no TensorFlow, given the prepared dataset in `TFDS_DATA_DIR` (prepare it
with `--file_format=array_record`; `tfds build` itself needs TensorFlow).

Zero-shot class names and templates: a folder in the clip_benchmark layout
(`classnames.txt`, `zeroshot_classification_templates.txt`) when one is given; else the carried
ones of the suite's datasets, aligned with the dataset's labels (see `tfds_catalog`); else the
dataset's own label names (underscores read as spaces) with one generic template.

MS-COCO retrieval reads `coco_captions` (Karpathy's 5k test split, every caption of each
image) from its prepared files: TFDS's code for it needs TensorFlow even to describe its
features, so the dataset is opened from the files alone.

Nothing is ever downloaded or prepared here: `tfds.data_source` downloads and prepares a
dataset it does not find, so builders are only ever asked for data sources; a dataset missing
from the data directory is one line naming the folder searched and how to prepare it elsewhere.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from scaling_vlm.data import synthetic
from scaling_vlm.evaluate import benchmark_wds, classnames, tfds_catalog

DEFAULT_TEMPLATES = ('a photo of a {c}.',)


def _data_dir() -> str | None:
  """TFDS_DATA_DIR as set now: TFDS reads it only once, when it is imported."""
  return os.environ.get('TFDS_DATA_DIR')


def _searched() -> str:
  """The data directory TFDS looks in, for messages."""
  from tensorflow_datasets.core import constants

  return _data_dir() or constants.DATA_DIR


def _how_to_prepare(builder: str) -> str:
  return (
      f'prepare it where TensorFlow is installed (`tfds build {builder}'
      ' --file_format=array_record --data_dir DIR`), copy DIR here and set TFDS_DATA_DIR to it;'
      ' evaluation never downloads'
  )


def _builder(name: str):
  """The TFDS builder of `name` (DATASET[/CONFIG]) reading `_data_dir()`; an unknown name is
  one line, not TFDS's list of every dataset."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import registered

  try:
    return tfds.builder(name, data_dir=_data_dir())
  except registered.DatasetNotFoundError as error:
    guess = re.search(r'Did you mean: \S+ -> (\S+) \?', str(error))
    hint = f' (did you mean {guess.group(1)}?)' if guess else ''
    raise ValueError(
        f'tfds {name} is not a TFDS dataset, nor one prepared in {_searched()}{hint}'
    ) from None


def _data_source(dataset: tfds_catalog.Dataset):
  """The dataset's split as an ArrayRecord data source, never downloading: a dataset that is
  not prepared, or prepared as TFRecord, is one line saying so."""
  from tensorflow_datasets.core import file_adapters

  builder = _builder(dataset.builder)
  try:
    # Not `tfds.data_source`, which downloads and prepares whatever is missing. Asked first and
    # diagnosed after, so that `tfds.testing.mock_data` (which fakes this call) still serves.
    return builder.as_data_source(split=dataset.split)
  except Exception:  # pylint: disable=broad-except  # TFDS's kinds vary; the cause is found here
    if not builder.is_prepared():
      raise FileNotFoundError(
          f'tfds {dataset.builder} is not prepared: there is no'
          f' {builder.data_path}/dataset_info.json (TFDS_DATA_DIR={_data_dir() or "unset"});'
          f' {_how_to_prepare(dataset.builder)}'
      ) from None
    file_format = builder.info.file_format
    if file_format not in file_adapters.FileFormat.with_random_access():
      raise ValueError(
          f'tfds {dataset.builder} in {builder.data_path} is prepared as'
          f' {getattr(file_format, "value", file_format)}, which'
          f' needs TensorFlow to read; {_how_to_prepare(dataset.builder)}'
      ) from None
    raise


def _image(example: dict[str, Any]) -> np.ndarray:
  image = np.asarray(example['image'])
  if image.shape[-1] == 1:  # greyscale (MNIST and kin): CLIP sees three equal channels
    image = np.repeat(image, 3, axis=-1)
  return image


class _Records:
  """A TFDS data source's examples as records with 'image' (uint8 RGB) and 'label', labels
  renumbered by `remap` (TFDS label -> class index, -1: not one of the task's classes)."""

  def __init__(self, source, name: str, remap: np.ndarray, label_names: list[str]):
    self.source, self.name, self.remap, self.label_names = source, name, remap, label_names

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self.source[index]
    label = int(example['label'])
    if not 0 <= label < len(self.remap) or self.remap[label] < 0:
      name = self.label_names[label] if 0 <= label < len(self.label_names) else '?'
      raise ValueError(
          f"{self.name}[{index}]: label {label} ({name}) is not one of the task's classes"
      )
    return {
        'key': f'{self.name}[{index}]',
        'image': _image(example),
        'label': int(self.remap[label]),
    }

  def __repr__(self) -> str:
    return f'tfds {self.name} ({len(self)} examples)'


def zero_shot_task(
    dataset: tfds_catalog.Dataset | str, names_folder: str | None = None
) -> synthetic.ZeroShotTask:
  """The zero-shot task of a TFDS dataset (a catalogue entry, or a `tfds:` path: DATASET,
  DATASET/SPLIT or DATASET/CONFIG/SPLIT); class names that do not fit its labels are an error
  naming both."""
  if isinstance(dataset, str):
    dataset = tfds_catalog.resolve(dataset)
  source = _data_source(dataset)
  features = source.dataset_info.features
  if 'image' not in features or 'label' not in features:
    raise ValueError(f'tfds {dataset.builder}: zero-shot tasks need image and label features')
  label_names = list(features['label'].names)
  remap = np.arange(len(label_names))
  if names_folder:
    names = benchmark_wds.read_lines(os.path.join(names_folder, benchmark_wds.CLASSNAMES_FILE))
    templates = benchmark_wds.read_lines(os.path.join(names_folder, benchmark_wds.TEMPLATES_FILE))
    if len(names) != len(label_names):
      raise ValueError(
          f'tfds {dataset.builder} has {len(label_names)} classes but {len(names)} class names'
          f' were given in {names_folder}; the class-name file does not belong to this dataset'
      )
  elif dataset.order == 'labels':
    names, templates = tuple(n.replace('_', ' ') for n in label_names), DEFAULT_TEMPLATES
  else:
    names, remap = tfds_catalog.align(dataset, label_names)
    templates = classnames.templates(dataset.names or dataset.task)
  records = _Records(source, f'{dataset.builder}/{dataset.split}', remap, label_names)
  return synthetic.ZeroShotTask(dataset.task, names, templates, records)


class _Captioned:
  """coco_captions examples as records with 'image' and 'captions' (every caption, as str)."""

  def __init__(self, source, name: str):
    self.source, self.name = source, name

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self.source[index]
    texts = example['captions']['text']
    captions = [t.decode('utf-8') if isinstance(t, bytes) else str(t) for t in texts]
    return {'key': f'{self.name}[{index}]', 'image': _image(example), 'captions': captions}

  def __repr__(self) -> str:
    return f'tfds {self.name} ({len(self)} images)'


def retrieval_source(dataset: tfds_catalog.Dataset | str) -> _Captioned:
  """The images and captions of a prepared TFDS image-caption dataset (`coco_captions`), opened
  from its files (dataset_info.json, features.json, ArrayRecord shards) without its code."""
  from tensorflow_datasets.core import read_only_builder
  from tensorflow_datasets.core import registered

  if isinstance(dataset, str):
    dataset = tfds_catalog.resolve(dataset)
  hint = (
      f"{_how_to_prepare(dataset.builder.partition('/')[0])}; or evaluate clip_benchmark's"
      ' webdataset export with retrieval:NAME=FOLDER'
  )
  try:
    builder = read_only_builder.builder_from_files(dataset.builder, data_dir=_data_dir())
  except registered.DatasetNotFoundError:
    raise FileNotFoundError(
        f'tfds {dataset.builder} is not prepared in {_searched()}: {hint}'
    ) from None
  try:
    source = builder.as_data_source(split=dataset.split)
  except NotImplementedError:  # prepared as TFRecord, which needs TensorFlow to read
    raise ValueError(
        f'tfds {dataset.builder} in {builder.data_path} has no ArrayRecord files: {hint}'
    ) from None
  if 'image' not in builder.info.features or 'captions' not in builder.info.features:
    raise ValueError(f'tfds {dataset.builder}: retrieval needs image and captions features')
  return _Captioned(source, f'{dataset.builder}/{dataset.split}')
