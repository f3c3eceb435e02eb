"""TFDS never downloads: a dataset missing from the data directory is one line naming the
folder searched and how to prepare it elsewhere, and nothing is written anywhere."""

import os

import pytest

from scaling_vlm.evaluate import tasks, tfds_tasks

tfds = pytest.importorskip('tensorflow_datasets')


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
  """An empty TFDS_DATA_DIR and an empty home (TFDS's fallback); no download or preparation
  may start."""
  data_dir, home = tmp_path / 'tfds', tmp_path / 'home'
  data_dir.mkdir()
  home.mkdir()
  monkeypatch.setenv('TFDS_DATA_DIR', str(data_dir))
  monkeypatch.setenv('HOME', str(home))

  downloads = []  # recorded, not raised: an error raised here could be caught on the way
  monkeypatch.setattr(
      tfds.core.DatasetBuilder, 'download_and_prepare', lambda *a, **k: downloads.append(a)
  )
  yield data_dir
  assert not downloads
  assert not os.listdir(data_dir) and not os.listdir(home)  # no downloads/, no extracted/


def test_a_dataset_not_prepared_is_one_line_naming_the_folder_and_the_fix(empty_data_dir):
  (task,) = tasks.make_tasks(['tfds:cifar10'], 64, 8)
  with pytest.raises(FileNotFoundError) as raised:
    task.data
  message = str(raised.value)
  assert '\n' not in message
  assert f'there is no {empty_data_dir}/cifar10/' in message
  assert f'TFDS_DATA_DIR={empty_data_dir}' in message
  assert 'tfds build cifar10 --file_format=array_record' in message


def test_a_config_s_folder_is_the_one_named(empty_data_dir):
  with pytest.raises(FileNotFoundError, match=f'there is no {empty_data_dir}/eurosat/rgb/'):
    tfds_tasks.zero_shot_task('eurosat')


def test_a_name_tfds_does_not_know_is_one_line_with_a_guess(empty_data_dir):
  with pytest.raises(ValueError) as raised:
    tfds_tasks.zero_shot_task('cifar11')
  assert str(raised.value) == (
      f'tfds cifar11 is not a TFDS dataset, nor one prepared in {empty_data_dir}'
      ' (did you mean cifar10_1?)'
  )


def test_retrieval_sets_are_never_prepared_either(empty_data_dir):
  with pytest.raises(FileNotFoundError) as raised:
    tfds_tasks.retrieval_source('coco_captions')
  assert '\n' not in str(raised.value)
  assert f'not prepared in {empty_data_dir}' in str(raised.value)
