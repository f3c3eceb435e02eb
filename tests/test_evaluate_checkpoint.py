"""One checkpoint evaluated by path (`--checkpoint`), as clip_benchmark does: a run's step folder,
or the same parameters as an open_clip file, score as the run's evaluation scores that step;
what cannot be evaluated is one line and exit status 2 before anything is read."""

import csv
import os
import shutil

import numpy as np
import pytest

from configs import presets
from scaling_vlm import convert, models
from scaling_vlm.convert import runs
from scaling_vlm.evaluate import __main__ as cli
from scaling_vlm.evaluate import checkpoint
from scaling_vlm.train import trainer

SMALL = ['--synthetic_size', '24', '--batch_size', '16']
TASKS = ['--tasks', 'synthetic/shape', 'synthetic/count', 'synthetic/retrieval']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A tiny CLIP run trained 20 steps, milestones at steps 10 and 20, evaluated whole."""
  config = presets.make('clip', 'tiny-1')
  config.train.global_batch, config.train.samples, config.train.warmup = 16, '320', '32'
  config.checkpoint.milestones = '160,320'
  config.log.tensorboard = False
  workdir = str(tmp_path_factory.mktemp('runs') / 'tiny-clip')
  trainer.train(config, workdir)
  assert cli.main(['--workdir', workdir, *TASKS, *SMALL]) == 0
  return workdir


def run_rows(workdir, samples):
  with open(os.path.join(workdir, 'results.csv'), newline='') as file:
    rows = list(csv.DictReader(file))
  return {(r['task'], r['metric']): float(r['value']) for r in rows if r['samples_seen'] == samples}


def evaluated(path, tmp_path, *flags):
  out = str(tmp_path / 'metrics.csv')
  assert cli.main(['--checkpoint', path, *flags, '--out', out, *TASKS, *SMALL]) == 0
  with open(out, newline='') as file:
    rows = list(csv.DictReader(file))
  assert {r['checkpoint'] for r in rows} == {path}
  return {(r['task'], r['metric']): float(r['value']) for r in rows}


@pytest.mark.slow
def test_a_step_folder_scores_as_the_run_s_evaluation_of_that_step(run, tmp_path, capsys):
  expected = run_rows(run, '160')
  assert evaluated(os.path.join(run, 'checkpoints', '10'), tmp_path) == pytest.approx(expected)
  out = capsys.readouterr().out
  assert 'tiny-clip @ 160 samples (tiny-1)' in out  # the table's title: the run's checkpoint
  assert [line.split() for line in out.splitlines() if line.startswith('zeroshot_average')] == [
      ['zeroshot_average', 'acc1', f"{expected[('zeroshot_average', 'acc1')]:.4f}"]
  ]
  assert ('zeroshot_average', 'tasks') in expected and expected != run_rows(run, '320')
  # The `state` item in it, with the run's model named again, is the same checkpoint.
  state = os.path.join(run, 'checkpoints', '20', 'state')
  assert evaluated(state, tmp_path, '--model', 'tiny-1') == pytest.approx(run_rows(run, '320'))
  # Copied out of its run, it is read as the zoo preset of --model reads it.
  loose = str(tmp_path / 'loose')
  shutil.copytree(os.path.join(run, 'checkpoints', '10'), loose)
  assert evaluated(loose, tmp_path, '--model', 'tiny-1') == pytest.approx(expected)


def test_a_loose_checkpoint_s_layer_layout_is_read_from_its_parameter_names():
  unscanned = {'visual': {'blocks': {'layers': {'0': {'attn': {}}, '1': {'attn': {}}}}}}
  assert not checkpoint._scanned(unscanned)
  assert checkpoint._scanned({'visual': {'blocks': {'layers': {'attn': {}, 'mlp': {}}}}})


@pytest.mark.slow
def test_the_same_parameters_as_an_open_clip_file_score_the_same(run, tmp_path):
  path = str(tmp_path / 'tiny.safetensors')
  _, tensors = runs.export_run(run, path, step=20)
  expected = run_rows(run, '320')
  assert evaluated(path, tmp_path, '--model', 'tiny-1') == pytest.approx(expected, abs=1e-6)
  archive = str(tmp_path / 'tiny.npz')
  np.savez(archive, **tensors)
  assert evaluated(archive, tmp_path, '--model', 'tiny-1') == pytest.approx(expected, abs=1e-6)


@pytest.fixture(scope='module')
def tiny_file(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('files') / 'tiny-1.safetensors')
  convert.to_open_clip(models.build('tiny-1'), path)
  return path


@pytest.mark.parametrize(
    'flags, message',
    [
        (['--model', 'tiny-2'], 'visual.conv1.weight is (32, 3, 8, 8), but tiny-2 needs'),
        ([], 'has no run config beside it: name its --model'),
        (['--model', 'tiny-9'], "Unknown model name 'tiny-9'"),
        (['--model', 'ViT-B-32', '--bpe_path', '/no/bpe.txt.gz'], '--bpe_path /no/bpe.txt.gz: no'),
    ],
)
def test_a_file_that_cannot_be_evaluated_is_one_line(tiny_file, flags, message, capsys):
  assert cli.main(['--checkpoint', tiny_file, *flags, *SMALL]) == 2
  captured = capsys.readouterr()
  (line,) = captured.err.splitlines()
  assert line.startswith('error: ') and message in line


def test_what_is_not_a_checkpoint_is_one_line(tmp_path, tiny_file, capsys):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  (workdir / 'config.json').write_text('{}')
  (tmp_path / 'model.onnx').write_bytes(b'')
  for path, message in [
      (str(workdir), 'is a run: evaluate it with --workdir'),
      (str(tmp_path), 'is not a checkpoint: give a step folder'),
      (str(tmp_path / 'nothing'), 'no such file or folder'),
      (str(tmp_path / 'model.onnx'), 'a parameters file is one of'),
  ]:
    assert cli.main(['--checkpoint', path, '--model', 'tiny-1', *SMALL]) == 2
    assert message in capsys.readouterr().err
  for flags, message in [
      (['--workdir', str(workdir), '--model', 'tiny-1'], '--model goes with --checkpoint'),
      (['--workdir', str(workdir), '--out', 'x.csv'], '--out goes with --checkpoint'),
      (['--checkpoint', tiny_file, '--out', '/no/such/x.csv'], '--out /no/such/x.csv: its'),
      (['--workdir', str(workdir), '--tasks', 'imagenet'], "task spec 'imagenet' is not one of"),
      (['--workdir', str(workdir), '--mesh', 'fsdp'], "--mesh 'fsdp': 'fsdp' is not AXIS=SIZE"),
  ]:
    assert cli.main(flags) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith('error: ') and message in line
