"""Checkpoint evaluation end to end: a tiny run is trained, every milestone becomes rows of
the results table with the run's columns and compute; a rerun adds nothing; a damaged
checkpoint and a missing dataset are reported and skipped while the rest is evaluated."""

import csv
import os
import shutil
import subprocess
import sys

import ml_collections
import pytest

from configs import presets
from scaling_vlm import flops, models, run as run_lib
from scaling_vlm.evaluate import __main__ as cli
from scaling_vlm.evaluate import milestones, results
from scaling_vlm.train import trainer

SMALL = ['--synthetic_size', '24', '--batch_size', '16']


def tiny_config():
  config = presets.make('clip', 'tiny-1')
  config.train.global_batch = 16
  config.train.samples = '320'
  config.train.warmup = '32'
  config.log.tensorboard = False
  config.checkpoint.milestones = '160,320'
  return config


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('runs') / 'tiny-clip')
  trainer.train(tiny_config(), workdir)
  return workdir


def read_rows(workdir):
  with open(os.path.join(workdir, 'results.csv'), newline='') as file:
    return list(csv.DictReader(file))


@pytest.mark.slow
def test_every_milestone_becomes_rows_and_a_rerun_adds_none(run, capsys):
  assert cli.main(['--workdir', run, *SMALL]) == 0
  rows = read_rows(run)
  assert tuple(rows[0]) == results.COLUMNS
  assert {int(r['samples_seen']) for r in rows} == {160, 320}
  gflops = flops.forward_gflops(models.get_config('tiny-1'))
  for row in rows:
    assert (row['run_id'], row['arch'], row['model']) == ('tiny-clip', 'clip', 'tiny-1')
    assert (row['pretrain_dataset'], row['lr_schedule'], row['cooldown_from']) == (
        'synthetic',
        'cosine',
        '',
    )
    # Warmup in steps (32 samples of batch 16), as the paper's table.
    assert (row['global_batch_size'], row['warmup'], row['total_samples']) == ('16', '2', '320')
    assert float(row['gflops_per_sample']) == pytest.approx(gflops)
    assert float(row['compute_gflops']) == pytest.approx(gflops * int(row['samples_seen']))
    assert int(row['params']) == models.count_params(models.build('tiny-1'))
  tasks = {(r['task'], r['metric']) for r in rows if r['samples_seen'] == '320'}
  assert ('synthetic/shape_colour', 'acc5') in tasks
  assert ('synthetic/retrieval', 'image_retrieval_recall@10') in tasks
  assert ('zeroshot_average', 'acc1') in tasks
  assert not any(task == 'synthetic/captioning' for task, _ in tasks)  # CLIP: no decoder
  assert len(rows) == 2 * (4 * 3 + 6 + 4)

  before = open(os.path.join(run, 'results.csv')).read()
  capsys.readouterr()
  assert cli.main(['--workdir', run, *SMALL]) == 0
  assert open(os.path.join(run, 'results.csv')).read() == before
  assert (
      '0 rows written; 10 (checkpoint, task) pairs already present; 0 milestones'
      in capsys.readouterr().out
  )


@pytest.mark.slow
def test_a_damaged_checkpoint_and_a_missing_dataset_are_skipped(run, tmp_path, capsys):
  workdir = str(tmp_path / 'damaged')
  shutil.copytree(run, workdir, ignore=shutil.ignore_patterns('results.csv'))
  state = os.path.join(workdir, 'checkpoints', '10', 'state')
  for name in os.listdir(state):
    path = os.path.join(state, name)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
  missing = str(tmp_path / 'no_such_dataset')
  tasks = ['--tasks', 'synthetic/shape', f'zeroshot:imagenet={missing}']
  assert cli.main(['--workdir', workdir, *tasks, *SMALL]) == 1
  out = capsys.readouterr().out
  assert f'SKIPPED {workdir} [160 samples] checkpoint {state}' in out
  assert f'SKIPPED {workdir} [all checkpoints] task imagenet: FileNotFoundError' in out
  # No average either: the suite's other task, imagenet, has no rows.
  assert {(r['samples_seen'], r['task']) for r in read_rows(workdir)} == {
      ('320', 'synthetic/shape')
  }


def test_a_cooldown_branch_names_its_parent_and_branch_point(tmp_path):
  config = tiny_config()
  config.optim.schedule = 'cooldown'
  config.cooldown.parent = '/runs/const-tiny'
  config.cooldown.start = '160'
  info = results.RunInfo(run_lib.Run(config, str(tmp_path / 'cool')))
  (row,) = info.rows(20, 'synthetic/shape', {'acc1': 0.5})
  assert row['cooldown_from'] == 'const-tiny@160'
  assert row['lr_schedule'] == 'cooldown' and row['samples_seen'] == 320


def test_the_pretrain_dataset_is_the_shard_folder(tmp_path):
  (tmp_path / 'datacomp').mkdir()
  for shards in (f'{tmp_path}/datacomp/{{00000..00009}}.tar', str(tmp_path / 'datacomp')):
    data = ml_collections.ConfigDict({'source': 'wds', 'shards': shards})
    assert run_lib.pretrain_dataset(data) == 'datacomp'
  assert run_lib.pretrain_dataset(ml_collections.ConfigDict({'source': 'synthetic'})) == 'synthetic'


def test_a_directory_that_is_not_a_run_is_reported(tmp_path, capsys):
  assert cli.main(['--workdir', str(tmp_path), *SMALL]) == 1
  assert 'config.json is missing' in capsys.readouterr().out


def test_unknown_task_specs_are_rejected_with_the_valid_ones():
  with pytest.raises(ValueError, match=r"synthetic tasks are \['synthetic/captioning'"):
    milestones.tasks_lib.make_tasks(['synthetic/shapes'], 64, 8)
  with pytest.raises(ValueError, match='zeroshot:NAME=FOLDER'):
    milestones.tasks_lib.make_tasks(['imagenet'], 64, 8)


def values(workdir):
  return {
      (r['samples_seen'], r['task'], r['metric']): float(r['value']) for r in read_rows(workdir)
  }


@pytest.mark.slow
def test_an_fsdp_mesh_writes_the_rows_of_one_device(run, tmp_path):
  """`--mesh fsdp=8` reads parameters split 8 ways (8 simulated CPU devices) and scores as
  the default, replicated mesh does."""
  tasks = ['--tasks', 'synthetic/shape', 'synthetic/retrieval']
  for name, flags in (('replicated', []), ('fsdp', ['--mesh', 'fsdp=8'])):
    workdir = str(tmp_path / name)
    shutil.copytree(run, workdir, ignore=shutil.ignore_patterns('results.csv'))
    assert cli.main(['--workdir', workdir, *tasks, *flags, *SMALL]) == 0
  replicated, fsdp = values(str(tmp_path / 'replicated')), values(str(tmp_path / 'fsdp'))
  assert len(replicated) == 2 * (3 + 6 + 4) and fsdp == pytest.approx(replicated)


@pytest.mark.slow
def test_a_task_whose_class_names_do_not_fit_fails_alone(run, tmp_path, capsys):
  tfds = pytest.importorskip('tensorflow_datasets')
  workdir = str(tmp_path / 'names')
  shutil.copytree(run, workdir, ignore=shutil.ignore_patterns('results.csv'))
  folder = tmp_path / 'three_names'
  folder.mkdir()
  (folder / 'classnames.txt').write_text('circle\nsquare\nstar\n')
  (folder / 'zeroshot_classification_templates.txt').write_text('a {c} .\n')
  tasks = ['--tasks', 'synthetic/shape', f'tfds:cifar10={folder}']
  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    assert cli.main(['--workdir', workdir, *tasks, *SMALL]) == 1
  assert 'task cifar10: ValueError: tfds cifar10 has 10 classes but 3 class names' in (
      capsys.readouterr().out
  )
  assert {r['task'] for r in read_rows(workdir)} == {'synthetic/shape'}


@pytest.mark.slow
def test_a_relative_workdir_is_evaluated(run, tmp_path, monkeypatch):
  # As the README's `--out runs/mini`: a path relative to the working directory.
  shutil.copytree(run, tmp_path / 'tiny-clip', ignore=shutil.ignore_patterns('results.csv'))
  monkeypatch.chdir(tmp_path)
  assert cli.main(['--workdir', 'tiny-clip', *SMALL]) == 0
  assert {int(r['samples_seen']) for r in read_rows('tiny-clip')} == {160, 320}


@pytest.mark.slow
def test_evaluation_images_are_read_once_per_process_not_once_per_checkpoint(
    run, tmp_path, monkeypatch
):
  """Two checkpoints of two runs: each synthetic scene is rendered once, and the scores equal
  those of reading every image again at every checkpoint."""
  from scaling_vlm.data import synthetic
  from scaling_vlm.evaluate import embeddings, tasks

  rendered = []
  real_render = synthetic.render
  # Patched where the sources look it up.
  monkeypatch.setattr(
      synthetic.world, 'render', lambda scene: rendered.append(1) or real_render(scene)
  )
  specs, size = ['synthetic/colour', 'synthetic/retrieval'], 24
  tasks._synthetic_set.cache_clear()
  copies = [str(tmp_path / name) for name in ('first', 'second')]
  for copy in copies:
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns('results.csv'))
    milestones.evaluate_run(copy, specs, synthetic_size=size, batch_size=16)
  assert len(rendered) == 2 * size  # two sets of 24 scenes, for 2 runs x 2 checkpoints

  streamed = str(tmp_path / 'streamed')
  shutil.copytree(run, streamed, ignore=shutil.ignore_patterns('results.csv'))
  monkeypatch.setattr(embeddings, 'PRELOAD_BYTES', 0)  # nothing fits: every image every time
  tasks._synthetic_set.cache_clear()
  rendered.clear()
  milestones.evaluate_run(streamed, specs, synthetic_size=size, batch_size=16)
  tasks._synthetic_set.cache_clear()
  assert len(rendered) == 2 * 2 * size
  values = lambda workdir: {
      (r['samples_seen'], r['task'], r['metric']): r['value'] for r in read_rows(workdir)
  }
  assert values(streamed) == values(copies[0]) == values(copies[1])
  assert {(samples, task) for samples, task, _ in values(streamed)} == {
      (samples, task) for samples in ('160', '320') for task in [*specs, 'zeroshot_average']
  }


def test_a_torn_results_file_loses_only_its_cut_line_and_the_next_write_repairs_it(
    tmp_path, caplog
):
  info = results.RunInfo(run_lib.Run(tiny_config(), str(tmp_path / 'tiny')))
  path = str(tmp_path / 'results.csv')
  table = results.ResultsFile(path)
  table.append(info.rows(10, 'synthetic/shape', {'acc1': 0.5, 'acc5': 0.9}))
  whole = open(path).read()
  with open(path, 'a') as file:  # a kill or a full disk in the middle of the next task's rows
    file.write(whole.splitlines(keepends=True)[1][:40])
  table = results.ResultsFile(path)
  assert 'dropped its last line, cut short by an interrupted write' in caplog.text
  assert table.has('tiny', 160, 'synthetic/shape') and len(table.values) == 2
  table.append(info.rows(20, 'synthetic/colour', {'acc1': 0.7}))
  with open(path, newline='') as file:
    rows = list(csv.DictReader(file))
  assert [(r['samples_seen'], r['metric'], r['value']) for r in rows] == [
      ('160', 'acc1', '0.5'),
      ('160', 'acc5', '0.9'),
      ('320', 'acc1', '0.7'),
  ]
  assert not os.path.exists(path + '.tmp')


def test_two_writers_of_one_table_keep_each_others_rows(tmp_path):
  # Evaluation during training and a separate `evaluate` each hold the table as they read it.
  info = results.RunInfo(run_lib.Run(tiny_config(), str(tmp_path / 'tiny')))
  path = str(tmp_path / 'results.csv')
  trainer_side, evaluate_side = results.ResultsFile(path), results.ResultsFile(path)
  trainer_side.append(info.rows(10, 'synthetic/shape', {'acc1': 0.5}))
  evaluate_side.append(info.rows(10, 'synthetic/colour', {'acc1': 0.7}))
  evaluate_side.append(info.rows(10, 'synthetic/shape', {'acc1': 0.5}))  # done by the other
  with open(path, newline='') as file:
    rows = [(r['task'], r['value']) for r in csv.DictReader(file)]
  assert rows == [('synthetic/shape', '0.5'), ('synthetic/colour', '0.7')]


APPENDER = """
import sys
from scaling_vlm.evaluate import results
table, who = results.ResultsFile(sys.argv[1]), sys.argv[2]
for i in range(30):
  row = dict.fromkeys(results.COLUMNS, '') | dict(run_id='r', samples_seen=i, task=who)
  table.append([row | dict(metric='acc1', value=i)])
"""


def test_processes_appending_at_once_lose_no_row(tmp_path):
  path = str(tmp_path / 'results.csv')
  writers = [subprocess.Popen([sys.executable, '-c', APPENDER, path, f'task{k}']) for k in range(3)]
  assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
  with open(path, newline='') as file:
    rows = sorted((r['task'], int(r['samples_seen'])) for r in csv.DictReader(file))
  assert rows == [(f'task{k}', i) for k in range(3) for i in range(30)]
