"""TFDS zero-shot tasks through `tfds.testing.mock_data` (no TensorFlow, no download)."""

import numpy as np
import pytest

from scaling_vlm import models
from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.evaluate import benchmark_wds, tasks, tfds_tasks, zero_shot

tfds = pytest.importorskip('tensorflow_datasets')
# Mock cifar10's label names are '0'..'9'; the word tokenizer knows the shape names.
NAMES = synthetic.SHAPES


@pytest.fixture
def mock_cifar10():
  with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
    yield


def names_folder(path, classnames):
  (path / benchmark_wds.CLASSNAMES_FILE).write_text('\n'.join(classnames) + '\n')
  (path / benchmark_wds.TEMPLATES_FILE).write_text('a photo of a {c}.\na drawing of a {c}.\n')
  return str(path)


def test_a_tfds_dataset_as_a_zero_shot_task(tmp_path, mock_cifar10):
  (task,) = tasks.make_tasks([f'tfds:cifar10/test={names_folder(tmp_path, NAMES)}'], 'clip', 64, 8)
  assert task.name == 'cifar10' and task.data.classnames == NAMES
  record = task.data.source[3]
  assert record['image'].shape == (32, 32, 3) and record['image'].dtype == np.uint8
  assert 0 <= record['label'] < 10
  tokenizer = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)
  out = zero_shot.evaluate(models.build('tiny-1'), tokenizer, task.data, 64, batch_size=8)
  assert set(out) == {'acc1', 'acc5', 'mean_per_class_recall'}
  assert 0 <= out['acc1'] <= out['acc5'] <= 1


def test_the_datasets_own_label_names_and_a_generic_template(mock_cifar10):
  task = tfds_tasks.zero_shot_task('cifar10', 'cifar10')
  assert len(task.classnames) == 10 and task.templates == tfds_tasks.DEFAULT_TEMPLATES


def test_class_names_that_do_not_match_the_dataset_are_an_error(tmp_path, mock_cifar10):
  with pytest.raises(ValueError, match='10 classes but 3 class names'):
    tfds_tasks.zero_shot_task('cifar10', 'cifar10', 'test', names_folder(tmp_path, NAMES[:3]))
