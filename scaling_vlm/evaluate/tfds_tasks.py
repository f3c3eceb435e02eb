"""TFDS classification datasets as zero-shot tasks, read with `tfds.data_source` (ArrayRecord
random access: no TensorFlow needed, only the prepared dataset in `TFDS_DATA_DIR`).

Class names come from a folder in the clip_benchmark layout (`classnames.txt`,
`zeroshot_classification_templates.txt`) when one is given, else from the dataset's own
`label` feature (underscores read as spaces) with a single generic template; ImageNet's
labels are WordNet ids, so ImageNet needs the folder.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from scaling_vlm.data import synthetic
from scaling_vlm.evaluate import benchmark_wds

DEFAULT_TEMPLATES = ('a photo of a {c}.',)


class _Records:
  """A TFDS data source's examples as records with 'image' (uint8 RGB) and 'label'."""

  def __init__(self, source, name: str):
    self.source, self.name = source, name

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self.source[index]
    image = np.asarray(example['image'])
    if image.shape[-1] == 1:  # greyscale (MNIST and kin): CLIP sees three equal channels
      image = np.repeat(image, 3, axis=-1)
    return {'key': f'{self.name}[{index}]', 'image': image, 'label': int(example['label'])}

  def __repr__(self) -> str:
    return f'tfds {self.name} ({len(self)} examples)'


def zero_shot_task(
    name: str, dataset: str, split: str = 'test', names_folder: str | None = None
) -> synthetic.ZeroShotTask:
  """The zero-shot task of TFDS `dataset`/`split`; class names checked against its labels."""
  import tensorflow_datasets as tfds  # optional: only these tasks need it

  source = tfds.data_source(dataset, split=split)
  features = source.dataset_info.features
  if 'image' not in features or 'label' not in features:
    raise ValueError(f'tfds {dataset}: zero-shot tasks need image and label features')
  num_classes = features['label'].num_classes
  if names_folder:
    classnames = benchmark_wds.read_lines(os.path.join(names_folder, benchmark_wds.CLASSNAMES_FILE))
    templates = benchmark_wds.read_lines(os.path.join(names_folder, benchmark_wds.TEMPLATES_FILE))
  else:
    classnames = tuple(n.replace('_', ' ') for n in features['label'].names)
    templates = DEFAULT_TEMPLATES
  if len(classnames) != num_classes:
    raise ValueError(
        f'tfds {dataset} has {num_classes} classes but {len(classnames)} class names were '
        'given; the class-name file does not belong to this dataset'
    )
  return synthetic.ZeroShotTask(name, classnames, templates, _Records(source, f'{dataset}/{split}'))
