"""The slurm backend against stand-in sbatch/squeue commands: one script per run that starts
one task per GPU under srun, parents submitted before their branches, which wait on the
parent's job; finished and queued runs are not submitted again; a dry run writes nothing."""

import os
import shlex
import stat

import pytest

from experiments import launch, sweep

SHARED = "'train.global_batch': 16, 'train.warmup': 16, 'log.tensorboard': False"
SWEEP = f"""
from experiments.sweep import Run

def runs():
  yield Run('cool', 'configs/clip.py:tiny-1', {{'train.samples': 96, {SHARED},
            'optim.schedule': 'cooldown', 'cooldown.start': 64}}, parent='const')
  yield Run('const', 'configs/clip.py:tiny-1', {{'train.samples': 128, {SHARED},
            'optim.schedule': 'const', 'checkpoint.milestones': '64,128'}})
  yield Run('other', 'configs/clip.py:tiny-1', {{'train.samples': 64, {SHARED}}},
            resources={{'nodes': 1, 'time': '00:10:00'}})
"""


@pytest.fixture
def sweep_file(tmp_path, monkeypatch):
  for name in launch.SWEEP_ENV:  # this shell's would be passed on to every job
    monkeypatch.delenv(name, raising=False)
  path = tmp_path / 'sweep.py'
  path.write_text(SWEEP)
  return str(path)


def fake_slurm(tmp_path, monkeypatch, queue=''):
  """sbatch and squeue stand-ins on PATH: sbatch records its arguments and prints job ids
  1001, 1002, ...; squeue prints `queue`."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  calls = tmp_path / 'calls'
  (bin_dir / 'sbatch').write_text(
      f'#!/bin/bash\necho "$@" >> {calls}\necho $((1000 + $(wc -l < {calls})))\n'
  )
  (bin_dir / 'squeue').write_text(f'#!/bin/bash\nprintf "{queue}"\n')
  for tool in ('sbatch', 'squeue'):
    (bin_dir / tool).chmod(stat.S_IRWXU)
  monkeypatch.setenv('PATH', f'{bin_dir}:{os.environ["PATH"]}')
  return calls


def finish(sweep_file, sweep_dir, name):
  """A workdir as the trainer leaves a finished run: its config and the final checkpoint."""
  planned = {p.name: p for p in sweep.expand(sweep.load(sweep_file), str(sweep_dir))}[name]
  workdir = sweep_dir / name
  (workdir / 'checkpoints' / str(planned.plan.total_steps)).mkdir(parents=True)
  (workdir / 'config.json').write_text(planned.config.to_json_best_effort())


def test_parents_first_and_branches_wait_on_the_parent_job(sweep_file, tmp_path, monkeypatch):
  calls = fake_slurm(tmp_path, monkeypatch)
  out = tmp_path / 'grid'
  argv = [sweep_file, '--backend', 'slurm', '--out', str(out), '--nodes', '2']
  argv += ['--gpus-per-node', '8', '--partition', 'booster', '--account', 'my proj']
  argv += ['--prelude', 'module load CUDA', '--sbatch-arg=--qos=normal']
  assert launch.main(argv) == 0
  submitted = calls.read_text().splitlines()
  assert submitted[0] == f'--parsable {out}/const/slurm.sbatch'
  assert submitted[1] == f'--parsable {out}/other/slurm.sbatch'
  assert submitted[2] == (
      f'--parsable --dependency=afterok:1001 --kill-on-invalid-dep=yes {out}/cool/slurm.sbatch'
  )
  text = (out / 'const' / 'slurm.sbatch').read_text()
  for directive in (
      '--job-name=grid.const',
      '--nodes=2',
      '--ntasks-per-node=8',  # one task per GPU: what jax's SLURM detection expects
      '--gpus-per-node=8',
      '--time=24:00:00',
      '--partition=booster',
      '--account="my proj"',  # sbatch splits at blanks outside double quotes
      f'--output={out}/const/train.log',
      '--open-mode=append',
      '--signal=TERM@300',
      '--qos=normal',
  ):
    assert f'#SBATCH {directive}\n' in text
  lines = text.splitlines()
  assert lines.index('module load CUDA') < next(i for i, l in enumerate(lines) if 'srun' in l)
  srun = shlex.split(next(l for l in lines if l.startswith('srun ')))
  assert srun[:2] == ['srun', '--kill-on-bad-exit=1']
  assert srun[3:5] == ['-m', 'scaling_vlm.train']
  assert f'--workdir={out}/const' in srun and '--config.optim.schedule=const' in srun
  cool = shlex.split((out / 'cool' / 'slurm.sbatch').read_text().splitlines()[-1])
  assert f'--config.cooldown.parent={out}/const' in cool
  # Per-run resources of the sweep win over the command line's.
  other = (out / 'other' / 'slurm.sbatch').read_text()
  assert '#SBATCH --nodes=1\n' in other and '#SBATCH --time=00:10:00\n' in other


def test_finished_and_queued_runs_are_not_submitted_again(
    sweep_file, tmp_path, monkeypatch, capsys
):
  out = tmp_path / 'grid'
  finish(sweep_file, out, 'other')
  calls = fake_slurm(tmp_path, monkeypatch, queue='grid.const 77\\nelse.x 5\\n')
  assert launch.main([sweep_file, '--backend', 'slurm', '--out', str(out)]) == 0
  # Only the branch, waiting on the queued parent's job.
  assert calls.read_text().splitlines() == [
      f'--parsable --dependency=afterok:77 --kill-on-invalid-dep=yes {out}/cool/slurm.sbatch'
  ]
  assert 'summary: 1 submitted, 1 queued, 1 skipped' in capsys.readouterr().out


def test_a_branch_whose_parent_reached_the_branch_point_needs_no_dependency(
    sweep_file, tmp_path, monkeypatch
):
  out = tmp_path / 'grid'
  finish(sweep_file, out, 'const')
  calls = fake_slurm(tmp_path, monkeypatch)
  (out / 'const' / 'checkpoints' / '4').mkdir()
  assert launch.main([sweep_file, '--backend', 'slurm', '--out', str(out)]) == 0
  assert sorted(calls.read_text().splitlines()) == [
      f'--parsable {out}/cool/slurm.sbatch',
      f'--parsable {out}/other/slurm.sbatch',
  ]


def test_a_failed_submission_is_reported(sweep_file, tmp_path, monkeypatch, capsys):
  calls = fake_slurm(tmp_path, monkeypatch)
  sbatch = tmp_path / 'bin' / 'sbatch'
  sbatch.write_text('#!/bin/bash\necho "sbatch: error: invalid partition" >&2\nexit 1\n')
  assert launch.main([sweep_file, '--backend', 'slurm', '--out', str(tmp_path / 'g')]) == 1
  output = capsys.readouterr().out
  assert 'FAILED const: sbatch: sbatch: error: invalid partition' in output
  assert 'BLOCKED cool: parent const is not queued (failed)' in output
  assert not calls.exists()


def test_dry_run_prints_scripts_and_submits_nothing(sweep_file, tmp_path, monkeypatch, capsys):
  calls = fake_slurm(tmp_path, monkeypatch)
  out = tmp_path / 'dry'
  assert launch.main([sweep_file, '--backend', 'slurm', '--out', str(out), '--dry-run']) == 0
  output = capsys.readouterr().out
  assert output.count('#!/bin/bash') == 3
  assert f'$ sbatch --parsable {out}/const/slurm.sbatch' in output
  assert '--dependency=afterok:<job id of dry.const>' in output
  assert not out.exists() and not calls.exists()


def test_sweep_folders_sbatch_cannot_name_are_refused_and_the_rest_quoted(
    sweep_file, tmp_path, monkeypatch, capsys
):
  calls = fake_slurm(tmp_path, monkeypatch)
  injected = str(tmp_path / 'grid\ntouch /tmp/pwned')
  assert launch.main([sweep_file, '--backend', 'slurm', '--out', injected]) == 2
  error = capsys.readouterr().err
  assert error.count('\n') == 1 and "holds '\\n', which an sbatch script cannot name" in error
  assert not calls.exists()  # nothing submitted
  assert not any(name.startswith('grid') for name in os.listdir(tmp_path))  # nothing written
  out = tmp_path / 'my grid 100%'
  assert launch.main([sweep_file, '--backend', 'slurm', '--out', str(out)]) == 0
  text = (out / 'const' / 'slurm.sbatch').read_text()
  assert f'#SBATCH --output="{out}/const/train.log"'.replace('100%', '100%%') in text
  assert '#SBATCH --job-name="my grid 100%.const"\n' in text


def test_the_sweep_environment_is_set_in_every_task(sweep_file, tmp_path, monkeypatch):
  # A site may start jobs without the submitting shell's variables (sbatch --export=NONE).
  fake_slurm(tmp_path, monkeypatch)
  monkeypatch.setenv('DATA_ROOT', '/p/data')
  out = tmp_path / 'grid'
  argv = [sweep_file, '--backend', 'slurm', '--out', str(out), '--env', 'NOTE=a b']
  assert launch.main(argv) == 0
  for run in ('const', 'cool', 'other'):
    lines = (out / run / 'slurm.sbatch').read_text().splitlines()
    srun = shlex.split(next(l for l in lines if l.startswith('srun ')))
    assert srun[2:5] == ['env', 'DATA_ROOT=/p/data', 'NOTE=a b']
    assert srun[6:8] == ['-m', 'scaling_vlm.train']
