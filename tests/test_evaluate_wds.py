"""clip_benchmark-layout shards written here: read as zero-shot and retrieval tasks that score
exactly as the synthetic sets they were written from, and bad layouts give clear errors."""

import os

import pytest

from scaling_vlm import models
from scaling_vlm.data import shards, synthetic, tokenizers
from scaling_vlm.data.wds import write_wds
from scaling_vlm.evaluate import benchmark_wds, classnames, retrieval, zero_shot

TOKENIZER = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)


def write_dataset(folder, records, text, image_format='png', per_shard=5):
  """Records as `test/{0,1,..}.tar` in clip_benchmark's layout; `text(record)` is the
  (extension, bytes) of the label or captions member."""
  os.makedirs(folder / 'test')
  for first in range(0, len(records), per_shard):
    samples = [
        (
            r['key'],
            {image_format: shards.encode_image(r['image'], image_format), text(r)[0]: text(r)[1]},
        )
        for r in records[first : first + per_shard]
    ]
    write_wds(samples, str(folder / 'test' / f'{first // per_shard}.tar'))


@pytest.fixture(scope='module')
def shape_task():
  return synthetic.zero_shot_tasks(seed=3, image_size=64, size=12)[0]


def classification_folder(folder, task, classnames, image_format='png'):
  records = [task.source[i] for i in range(len(task.source))]
  write_dataset(folder, records, lambda r: ('cls', str(r['label']).encode()), image_format)
  (folder / benchmark_wds.CLASSNAMES_FILE).write_text('\n'.join(classnames) + '\n')
  (folder / benchmark_wds.TEMPLATES_FILE).write_text('\n'.join(task.templates) + '\n')


def test_zero_shot_shards_score_like_the_source_they_hold(tmp_path, shape_task):
  classification_folder(tmp_path, shape_task, shape_task.classnames)
  task = benchmark_wds.zero_shot_task('shapes', str(tmp_path))
  assert (task.classnames, task.templates) == (shape_task.classnames, shape_task.templates)
  assert len(task.source) == 12
  assert [task.source[i]['label'] for i in range(12)] == [
      shape_task.source[i]['label'] for i in range(12)
  ]
  model = models.build('tiny-1')
  expected = zero_shot.evaluate(model, TOKENIZER, shape_task, 64, batch_size=8)
  assert zero_shot.evaluate(model, TOKENIZER, task, 64, batch_size=8) == expected


def test_webp_images_are_read(tmp_path, shape_task):
  classification_folder(tmp_path, shape_task, shape_task.classnames, image_format='webp')
  record = benchmark_wds.zero_shot_task('shapes', str(tmp_path)).source[0]
  assert record['image'][:4] == b'RIFF' and record['label'] == shape_task.source[0]['label']


def test_class_names_that_do_not_cover_the_labels_are_an_error(tmp_path, shape_task):
  classification_folder(tmp_path, shape_task, shape_task.classnames[:2])
  with pytest.raises(ValueError, match='class-name file does not belong'):
    benchmark_wds.zero_shot_task('shapes', str(tmp_path))


def test_a_missing_templates_file_is_an_error(tmp_path, shape_task):
  classification_folder(tmp_path, shape_task, shape_task.classnames)
  os.remove(tmp_path / benchmark_wds.TEMPLATES_FILE)
  with pytest.raises(FileNotFoundError, match='zeroshot_classification_templates.txt'):
    benchmark_wds.zero_shot_task('shapes', str(tmp_path))


def test_retrieval_shards_with_several_captions_per_image(tmp_path):
  split = synthetic.retrieval_split(seed=1, image_size=64, size=8)
  records = [split[i] for i in range(len(split))]
  write_dataset(tmp_path, records, lambda r: ('txt', '\n'.join(r['captions']).encode()), 'jpg')
  source = benchmark_wds.retrieval_source(str(tmp_path))
  assert len(source) == 8 and source[3]['captions'] == records[3]['captions']
  # The same images, losslessly: recalls equal those of the synthetic split itself.
  write_dataset(tmp_path / 'png', records, lambda r: ('txt', '\n'.join(r['captions']).encode()))
  model = models.build('tiny-1')
  expected = retrieval.evaluate(model, TOKENIZER, split, 64, batch_size=8)
  got = retrieval.evaluate(
      model, TOKENIZER, benchmark_wds.retrieval_source(str(tmp_path / 'png')), 64, batch_size=8
  )
  assert got == expected
  assert set(got) == {f'{d}_retrieval_recall@{k}' for d in ('image', 'text') for k in (1, 5, 10)}
  assert all(0 <= v <= 1 for v in got.values())


def test_a_folder_without_matching_records_is_an_error(tmp_path, shape_task):
  classification_folder(tmp_path, shape_task, shape_task.classnames)
  with pytest.raises(ValueError, match='no record has both an image and a .txt member'):
    benchmark_wds.retrieval_source(str(tmp_path))


def test_a_suite_dataset_without_name_files_uses_the_carried_ones(tmp_path, shape_task):
  classification_folder(tmp_path, shape_task, shape_task.classnames)
  os.remove(tmp_path / benchmark_wds.CLASSNAMES_FILE)
  os.remove(tmp_path / benchmark_wds.TEMPLATES_FILE)
  task = benchmark_wds.zero_shot_task('cifar10', str(tmp_path))
  assert task.classnames == classnames.classnames('cifar10')
  assert task.templates == classnames.templates('cifar10')
