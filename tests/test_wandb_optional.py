"""Weights & Biases is optional: never a dependency, never imported unless a run asks, a clear
error when asked for without it, offline mode, and the same rows as the metrics log. A stand-in
`wandb` module records what the trainer hands it; the real one is used only where installed."""

import json
import pathlib
import subprocess
import sys
import tomllib
import types

import pytest

from configs import presets
from scaling_vlm.train import config as config_lib, metrics, trainer, wandb_log

REPO = pathlib.Path(__file__).resolve().parents[1]


def tiny(**log):
  config = presets.for_model('tiny-1')
  config.train.global_batch, config.train.samples, config.train.warmup = 16, '64', '16'
  config.log.every_steps, config.log.tensorboard = 1, False
  config.log.update(log)
  return config


class FakeRun:
  def __init__(self, step=0):
    self.step, self.logged, self.finished = step, [], False

  def log(self, row, step):
    self.logged.append((step, row))

  def finish(self):
    self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
  module = types.ModuleType('wandb')
  module.inits, module.runs = [], []

  def init(**options):
    module.inits.append(options)
    module.runs.append(FakeRun())
    return module.runs[-1]

  module.init = init
  monkeypatch.setitem(sys.modules, 'wandb', module)
  return module


def test_wandb_is_no_dependency_and_is_not_imported_by_training():
  project = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']
  assert not any(d.lower().startswith('wandb') for d in project['dependencies'])
  assert any(d.startswith('wandb') for d in project['optional-dependencies']['wandb'])
  code = 'import sys; from scaling_vlm.train import trainer; print("wandb" in sys.modules)'
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
  assert out.stdout.strip() == 'False', out.stderr


def test_asking_for_wandb_without_it_is_refused_before_anything_is_written(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'wandb', None)  # as if not installed
  assert not wandb_log.installed()
  with pytest.raises(ValueError, match=r'^log.wandb=True needs the wandb package, which is not '
                     r'installed: pip install wandb') as error:  # fmt: skip
    trainer.train(tiny(wandb=True), str(tmp_path / 'run'))
  assert '\n' not in str(error.value) and not (tmp_path / 'run').exists()
  wandb_log.check(tiny(wandb=False))  # not asked for: nothing to check


def test_the_mode_is_checked_like_any_choice():
  config = tiny(wandb=True, wandb_mode='offlin')
  with pytest.raises(ValueError, match=r"log.wandb_mode='offlin' is not allowed.*'offline'"):
    config_lib.validate(config)


@pytest.mark.slow
def test_a_run_logs_its_rows_to_one_wandb_run_per_workdir(tmp_path, fake_wandb):
  workdir = tmp_path / 'run'
  config = tiny(wandb=True, wandb_mode='offline', wandb_project='ladder')
  trainer.train(config, str(workdir))
  (options,) = fake_wandb.inits
  run_id = (workdir / 'wandb_id').read_text().strip()
  assert options['mode'] == 'offline' and options['project'] == 'ladder'
  assert options['entity'] is None and options['dir'] == str(workdir)
  assert options['name'] == 'run' and options['id'] == run_id and options['resume'] == 'allow'
  assert options['config']['optim']['lr'] == config.optim.lr
  rows = metrics.read(str(workdir))
  run = fake_wandb.runs[0]
  assert [step for step, _ in run.logged] == [row['step'] for row in rows] == [1, 2, 3, 4]
  assert run.logged[-1][1]['train/loss'] == rows[-1]['train/loss'] and run.finished


def test_a_resumed_run_continues_its_wandb_run_without_repeating_steps(tmp_path, fake_wandb):
  workdir = str(tmp_path / 'run')
  first = wandb_log.WandbLogger(tiny(wandb=True), workdir)
  assert 'mode' not in fake_wandb.inits[0]  # auto: wandb reads WANDB_MODE itself
  fake_wandb.init = lambda **options: fake_wandb.inits.append(options) or FakeRun(step=7)
  again = wandb_log.WandbLogger(tiny(wandb=True), workdir)
  assert fake_wandb.inits[1]['id'] == fake_wandb.inits[0]['id']  # the same W&B run
  for step in (5, 6, 7, 8):  # resumed from a checkpoint at 4; W&B holds up to 6
    again.log(step, {'x': float(step)})
  assert [step for step, _ in again.run.logged] == [7, 8]
  assert first.run is not again.run


def test_wandb_offline_for_real(tmp_path, monkeypatch):
  pytest.importorskip('wandb')
  monkeypatch.setenv('WANDB_SILENT', 'true')
  config = tiny(wandb=True, wandb_mode='offline')
  writer = metrics.MetricsWriter(str(tmp_path), tensorboard=False, config=config)
  writer.write(1, {'train/loss': 1.5})
  writer.close()
  assert list((tmp_path / 'wandb').glob('offline-run-*'))
  assert json.loads((tmp_path / 'metrics.jsonl').read_text())['train/loss'] == 1.5
