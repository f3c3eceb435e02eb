"""experiments.launch passes the sweep's environment on: DATA_ROOT set here and every --env are
read by the sweep file here and set in each run's command; and every error it prints names a
flag it has."""

import os
import pathlib
import re

import pytest

from experiments import launch

REPO = pathlib.Path(__file__).resolve().parents[1]

# Reads the environment as paper_grid.py reads DATA_ROOT: at import, into the runs' overrides.
SWEEP = """
import os

from experiments.sweep import Run

SEED = int(os.environ.get('SWEEP_SEED', '0'))


def runs():
  yield Run('a', 'configs/clip.py:tiny-1', {'train.samples': 64, 'train.global_batch': 16,
            'train.warmup': 16, 'data.seed': SEED, 'log.tensorboard': False})
"""


@pytest.fixture
def sweep_file(tmp_path, monkeypatch):
  for name in (*launch.SWEEP_ENV, 'SWEEP_SEED', 'TPU_NAME'):
    monkeypatch.delenv(name, raising=False)
  path = tmp_path / 'sweep.py'
  path.write_text(SWEEP)
  return str(path)


def would_run(capsys) -> str:
  (line,) = [l for l in capsys.readouterr().out.splitlines() if l.startswith('would run a: ')]
  return line


def test_the_local_backend_sets_the_environment_in_each_run(
    sweep_file, tmp_path, monkeypatch, capsys
):
  argv = [sweep_file, '--out', str(tmp_path / 'out'), '--dry-run']
  assert launch.main(argv) == 0
  assert ' env ' not in would_run(capsys)  # nothing to pass on: the command as it always was
  monkeypatch.setenv('DATA_ROOT', '/data/here')
  assert launch.main([*argv, '--env', 'SWEEP_SEED=7', '--env', 'DATA_ROOT=/data/there']) == 0
  line = would_run(capsys)
  # --env wins over this shell's DATA_ROOT, and the sweep file read SWEEP_SEED from it.
  assert 'would run a: env DATA_ROOT=/data/there SWEEP_SEED=7 ' in line
  assert '--config.data.seed=7' in line
  # The environment is back as it was after the launch.
  assert os.environ['DATA_ROOT'] == '/data/here' and 'SWEEP_SEED' not in os.environ


FLAG = re.compile(r'(?<![\w-])--[a-z][a-z-]*[a-z]')


@pytest.mark.parametrize(
    'args',
    [
        ['--accelerator', 'tpu9', '--dry-run'],
        ['--mfu', '2', '--dry-run'],
        [],  # no --out
        ['--backend', 'tpu', '--out', 'x', '--parallel', '2'],
        # No TPU_NAME (a sweep inside the repository: the workers get the repository).
        [str(REPO / 'experiments/sweeps/tiny_local.py'), '--backend', 'tpu', '--dry-run'],
        ['--env', 'DATA_ROOT', '--dry-run'],
        ['--env', '1=x', '--dry-run'],
        ['--only', 'nothing-*', '--dry-run'],
        ['--backend', 'slurm', '--out', 'a"b'],
    ],
)
def test_every_error_names_flags_the_launcher_has(sweep_file, args, capfd):
  argv = args if args and args[0].endswith('.py') else [sweep_file, *args]
  assert launch.main(argv) == 2
  error = capfd.readouterr().err
  mentioned = set(FLAG.findall(error))
  assert error.startswith('error: ') and mentioned, error
  assert mentioned <= set(launch.parser()._option_string_actions), error
