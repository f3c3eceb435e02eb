"""TFDS tasks with no TensorFlow and no download: classification through
`tfds.testing.mock_data` with the carried class names, and MS-COCO retrieval from
`coco_captions` files prepared here (TFDS's code for it needs TensorFlow, so no mock)."""

import io
import os
import re

import numpy as np
import pytest
from PIL import Image

from scaling_vlm import models
from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.evaluate import benchmark_wds, classnames, retrieval, tasks, tfds_tasks, zero_shot

tfds = pytest.importorskip('tensorflow_datasets')
# The word tokenizer knows the shape names: a folder of them stands in for cifar10's.
NAMES = synthetic.SHAPES


def word_tokenizer(texts):
  """A word tokenizer whose vocabulary is exactly the words of `texts`."""
  words = {w for text in texts for w in re.findall(r'[a-z]+|[0-9]+|[^\sa-z0-9]', text.lower())}
  return tokenizers.WordTokenizer(sorted(words), 32)


@pytest.fixture
def mock_tfds():
  with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
    yield


def names_folder(path, classnames):
  (path / benchmark_wds.CLASSNAMES_FILE).write_text('\n'.join(classnames) + '\n')
  (path / benchmark_wds.TEMPLATES_FILE).write_text('a photo of a {c}.\na drawing of a {c}.\n')
  return str(path)


def test_cifar10_with_the_carried_names_and_templates_end_to_end(mock_tfds):
  (task,) = tasks.make_tasks(['tfds:cifar10'], 64, 8)
  assert task.name == 'cifar10' and task.kind == tasks.ZERO_SHOT
  data = task.data
  assert data.classnames == classnames.classnames('cifar10') and data.classnames[1] == 'automobile'
  assert len(data.templates) == 18
  record = data.source[3]  # read once for the run, upsampled from 32 px to the model's 64
  assert record['image'].shape == (64, 64, 3) and record['image'].dtype == np.uint8
  assert 0 <= record['label'] < 10
  prompts = [t.format(c=c) for c in data.classnames for t in data.templates]
  out = zero_shot.evaluate(models.build('tiny-1'), word_tokenizer(prompts), data, 64, batch_size=8)
  assert set(out) == {'acc1', 'acc5', 'mean_per_class_recall'}
  assert 0 <= out['acc1'] <= out['acc5'] <= 1


def test_imagenet2012_is_imagenet1k_on_its_validation_split(mock_tfds):
  (task,) = tasks.make_tasks(['tfds:imagenet2012'], 64, 8)
  assert task.name == 'imagenet1k'
  assert task.data.classnames == classnames.classnames('imagenet1k')
  assert len(task.data.templates) == 80
  assert 'imagenet2012/validation' in repr(task.data.source)
  assert all(0 <= task.data.source[i]['label'] < 1000 for i in range(3))


def test_imagenet_a_labels_outside_its_200_classes_are_an_error(mock_tfds):
  task = tfds_tasks.zero_shot_task('imagenet_a')
  assert task.name == 'imagenet-a' and len(task.classnames) == 200
  records = task.source
  labels = [int(records.source[i]['label']) for i in range(len(records))]
  for index, label in enumerate(labels):
    if records.remap[label] >= 0:
      assert task.classnames[records[index]['label']] == classnames.classnames('imagenet1k')[label]
    else:  # mock labels cover all 1000 classes; real ImageNet-A only its own 200
      with pytest.raises(ValueError, match="is not one of the task's"):
        records[index]


def test_a_folder_s_class_names_replace_the_carried_ones(tmp_path, mock_tfds):
  (task,) = tasks.make_tasks([f'tfds:cifar10/test={names_folder(tmp_path, NAMES)}'], 64, 8)
  assert task.name == 'cifar10' and task.data.classnames == NAMES
  tokenizer = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)
  out = zero_shot.evaluate(models.build('tiny-1'), tokenizer, task.data, 64, batch_size=8)
  assert 0 <= out['acc1'] <= out['acc5'] <= 1


def test_a_dataset_outside_the_suite_uses_its_own_labels_and_a_generic_template(mock_tfds):
  task = tfds_tasks.zero_shot_task('beans')
  assert task.name == 'beans'
  assert task.classnames == ('angular leaf spot', 'bean rust', 'healthy')
  assert task.templates == tfds_tasks.DEFAULT_TEMPLATES


def test_class_names_that_do_not_match_the_dataset_are_an_error(tmp_path, mock_tfds):
  with pytest.raises(ValueError, match='10 classes but 3 class names'):
    tfds_tasks.zero_shot_task('cifar10', names_folder(tmp_path, NAMES[:3]))


# -- MS-COCO retrieval: a coco_captions dataset prepared here, as `tfds build` would leave it.


def jpeg(pixels):
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'JPEG', quality=95)
  return buffer.getvalue()


class CocoCaptions(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """coco_captions/2014's features (TFDS's own, NumPy dtypes where its code names TensorFlow's),
  holding a few synthetic scenes with 5 captions each."""

  VERSION = tfds.core.Version('1.1.0')
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='2014')]

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict(
            {
                'image': tfds.features.Image(encoding_format='jpeg'),
                'image/filename': tfds.features.Text(),
                'image/id': np.int64,
                'objects': tfds.features.Sequence(
                    {
                        'id': np.int64,
                        'area': np.int64,
                        'bbox': tfds.features.BBoxFeature(),
                        'label': tfds.features.ClassLabel(num_classes=80),
                        'is_crowd': np.bool_,
                    }
                ),
                'captions': tfds.features.Sequence({'text': np.str_, 'id': np.int64}),
            }
        ),
    )

  def _split_generators(self, dl_manager):
    return {'test': self._generate_examples()}

  def _generate_examples(self):
    split = synthetic.retrieval_split(seed=1, image_size=64, size=6)
    for i in range(len(split)):
      record = split[i]
      captions = [{'text': c, 'id': 10 * i + j} for j, c in enumerate(record['captions'][:5])]
      yield i, {
          'image': jpeg(record['image']),  # encoded here: TFDS would need TensorFlow to
          'image/filename': f'{i}.jpg',
          'image/id': i,
          'objects': {
              'id': [i],
              'area': [100],
              'bbox': [tfds.features.BBox(0.1, 0.2, 0.5, 0.6)],
              'label': [i % 80],
              'is_crowd': [False],
          },
          'captions': captions,
      }


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  CocoCaptions(data_dir=data_dir, config='2014', file_format='array_record').download_and_prepare()
  return data_dir


def test_coco_captions_retrieval_from_prepared_files(coco_dir, monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', coco_dir)
  (task,) = tasks.make_tasks(['tfds:coco_captions'], 64, 8)
  assert task.name == 'mscoco_captions' and task.kind == tasks.RETRIEVAL
  source = task.data
  assert len(source) == 6
  split = synthetic.retrieval_split(seed=1, image_size=64, size=6)
  expected = {tuple(split[i]['captions'][:5]) for i in range(6)}
  assert {tuple(source[i]['captions']) for i in range(6)} == expected  # str, 5 per image
  assert source[0]['image'].shape == (64, 64, 3)
  tokenizer = word_tokenizer([c for i in range(6) for c in source[i]['captions']])
  out = retrieval.evaluate(models.build('tiny-1'), tokenizer, source, 64, batch_size=8)
  assert set(out) == {f'{d}_retrieval_recall@{k}' for d in ('image', 'text') for k in (1, 5, 10)}


def test_coco_captions_not_prepared_names_the_fixes(tmp_path, monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r'file_format=array_record.*retrieval:NAME=FOLDER'):
    tfds_tasks.retrieval_source('coco_captions')
  with pytest.raises(ValueError, match='a retrieval dataset takes no =FOLDER'):
    tasks.make_tasks([f'tfds:coco_captions={tmp_path}'], 64, 8)
  assert not os.listdir(tmp_path)
