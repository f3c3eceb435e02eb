"""What a run is (`scaling_vlm.run`): plan, workdir, compute and the results-table contract,
read without JAX; and configs built from a file plus overrides as the train CLI builds them."""

import os
import subprocess
import sys

import pytest
from absl import flags as absl_flags
from ml_collections import config_flags

from fitting import table
from scaling_vlm import flops, models, run
from scaling_vlm.train import config as config_lib

TINY = 'configs/clip.py:tiny-1'


def test_the_results_columns_are_the_ones_fitting_reads():
  assert run.RESULT_COLUMNS == table.COLUMNS + table.OPTIONAL_COLUMNS


def test_a_run_is_planned_and_costed_without_jax():
  code = (
      'import sys\n'
      'from scaling_vlm import run\n'
      'from scaling_vlm.train.config import build_config\n'
      "r = run.Run(build_config('configs/mammut.py:ViT-B-32'), '/nowhere/b32')\n"
      'print(r.plan.total_steps, round(r.gflops_per_sample, 2), r.workdir.run_id)\n'
      "print(sorted(m for m in ('jax', 'flax', 'optax', 'orbax', 'grain') if m in sys.modules))\n"
  )
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  plan_line, modules = out.stdout.strip().splitlines()
  assert plan_line.split()[1:] == ['26.91', 'b32']  # MaMMUT ViT-B-32's GFLOPs per sample
  assert modules == '[]'


def test_a_run_reads_its_workdir(tmp_path):
  config = config_lib.build_config(TINY, {'train.samples': '3200', 'train.global_batch': 32})
  r = run.Run(config, str(tmp_path / 'tiny'))
  assert r.plan.total_steps == 100 and r.plan.milestone_steps[-1] == 100
  assert not r.workdir.has_config() and r.workdir.saved_steps() == set()
  r.workdir.write_config(config)
  (tmp_path / 'tiny' / 'checkpoints' / '100').mkdir(parents=True)
  (tmp_path / 'tiny' / 'checkpoints' / '100.orbax-checkpoint-tmp').mkdir()
  loaded = run.Run.load(str(tmp_path / 'tiny'))
  assert loaded.finished() and loaded.workdir.saved_steps() == {100}
  assert loaded.workdir.config_conflicts(config) == []
  lr, config.optim.lr = config.optim.lr, 5e-3
  assert loaded.workdir.config_conflicts(config) == ['optim.lr']
  # What is evaluated along the way is no part of what is trained: sweeps and the trainer agree.
  config.optim.lr, config.eval.every = lr, '640'
  assert loaded.workdir.config_conflicts(config) == []
  assert loaded.compute_gflops(3200) == pytest.approx(
      flops.forward_gflops(models.get_config('tiny-1')) * 3200
  )
  assert loaded.columns()['run_id'] == 'tiny' and loaded.cooldown_from == ''


def cli_config(argv):
  """The config the train CLI's flag parser builds from argv."""
  argv = ['train', *argv]
  values = absl_flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=values, sys_argv=argv)
  values(argv)
  return values.config


def test_build_config_reads_overrides_as_the_cli_reads_their_flags():
  overrides = {
      'train.samples': 1.28e6,  # a count written as a float
      'train.global_batch': 64,
      'optim.lr': 2,  # an int for a float key
      'log.tensorboard': False,
      'checkpoint.latest_every_steps': '500',  # a string for an int key
  }
  built = config_lib.build_config(TINY, overrides)
  flags = [f'--config.{k}={config_lib.format_override(v)}' for k, v in overrides.items()]
  assert built.to_dict() == cli_config([f'--config={TINY}', *flags]).to_dict()
  assert built.train.samples == '1280000' and built.optim.lr == 2.0


def test_build_config_names_unknown_keys_and_bad_values():
  with pytest.raises(ValueError, match=r"Unknown config key 'optim.learning_rate'.*optim.lr"):
    config_lib.build_config(TINY, {'optim.learning_rate': 1e-3})
  with pytest.raises(ValueError, match=r'train.global_batch=6.5: expected int'):
    config_lib.build_config(TINY, {'train.global_batch': 6.5})
  with pytest.raises(ValueError, match=r"log.tensorboard='yes': expected bool"):
    config_lib.build_config(TINY, {'log.tensorboard': 'yes'})


HOLD = """
import sys, time
from scaling_vlm.run import Workdir
with Workdir(sys.argv[1]).locked():
  print('locked', flush=True)
  time.sleep(60)
"""


def test_a_workdir_is_held_by_one_process_and_freed_when_it_dies(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c', HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
  )
  try:
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(
        run.WorkdirBusy, match=rf'in use by another trainer \(host .* pid {holder.pid}\)'
    ):
      with run.Workdir(str(tmp_path)).locked():
        pass
  finally:
    holder.kill()  # kill -9: no cleanup runs, the kernel drops the lock
    holder.wait()
  with run.Workdir(str(tmp_path)).locked():
    assert f'pid {os.getpid()}' in (tmp_path / 'lock').read_text()
