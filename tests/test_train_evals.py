"""Evaluation during training (`eval.*`): its steps, its checks, rows equal to what `evaluate`
computes from the checkpoints afterwards (so that evaluating adds none), and a loop that goes
on stepping while an evaluation runs."""

import csv
import os
import shutil
import threading

import pytest

from configs import presets
from scaling_vlm import run as run_lib
from scaling_vlm.evaluate import milestones
from scaling_vlm.train import config as config_lib, evals, metrics, trainer

BATCH = 16
TASKS = ['synthetic/colour']


def tiny_config(steps=12, **overrides):
  config = presets.for_model('tiny-1')
  config.train.global_batch, config.train.samples = BATCH, str(steps * BATCH)
  config.train.warmup = str(2 * BATCH)
  config.log.tensorboard = False
  config.checkpoint.milestones = '64,128'
  config.eval.tasks = ','.join(TASKS)
  config.eval.synthetic_size, config.eval.batch_size = 48, 16
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return config


def test_evaluation_steps_are_the_milestones_or_every_n_samples():
  plan = lambda c: run_lib.RunPlan.from_config(c)  # noqa: E731
  config = tiny_config()
  assert evals.eval_steps(config, plan(config)) == {4, 8, 12}
  # Every 40 samples at 16 a step: where samples seen pass 40, 80, 120, 160; and the end.
  config = tiny_config(**{'eval.every': '40'})
  assert evals.eval_steps(config, plan(config)) == {3, 5, 8, 10, 12}
  assert evals.eval_steps(tiny_config(**{'eval.tasks': ''}), plan(config)) == set()


@pytest.mark.parametrize(
    'overrides,message',
    [
        ({'eval.every': '8'}, r"eval.every='8' is less than one global batch \(16 samples\)"),
        ({'eval.every': 'often'}, r"eval.every='often' is not a count"),
        ({'eval.tasks': 'synthetic/size'}, r"eval.tasks='synthetic/size': unknown task"),
        ({'eval.tasks': 'imagenet'}, r"eval.tasks='imagenet': task spec 'imagenet' is not one of"),
        ({'eval.synthetic_size': 0}, r'eval.synthetic_size=0 is not allowed; it must be >= 1'),
    ],
)
def test_bad_evaluation_keys_are_one_line(overrides, message):
  with pytest.raises(ValueError, match=message) as error:
    config_lib.validate(tiny_config(**overrides))
  assert '\n' not in str(error.value)


def test_a_missing_evaluation_folder_is_a_missing_input():
  config = tiny_config(**{'eval.tasks': 'synthetic/colour, zeroshot:cars=/no/cars'})
  assert config_lib.eval_specs(config) == ['synthetic/colour', 'zeroshot:cars=/no/cars']
  assert config_lib.missing_inputs(config) == [
      "eval.tasks: 'zeroshot:cars=/no/cars' names '/no/cars', which does not exist."
  ]


def rows(path):
  with open(path, newline='') as file:
    read = csv.DictReader(file)
    return {(r['run_id'], int(r['samples_seen']), r['task'], r['metric']): r for r in read}


@pytest.mark.slow
def test_rows_written_while_training_are_evaluates_own(tmp_path):
  """Milestones at 64 and 128 samples and the end; the one at 128 a branch point (full state,
  evaluated on a copy), the others kept in bf16 (evaluated at bf16's rounding, as read back)."""
  workdir = str(tmp_path / 'tiny-clip')
  config = tiny_config(
      **{'checkpoint.milestone_state': 'params_bf16', 'checkpoint.branch_points': '128'}
  )
  trainer.train(config, workdir)
  results = os.path.join(workdir, 'results.csv')
  during = rows(results)
  assert {(k[1], k[2]) for k in during} == {
      (s, t) for s in (64, 128, 192) for t in (*TASKS, milestones.AVERAGE_TASK)
  }
  logged = metrics.read(workdir)
  assert all('perf/eval_wait_s' in row for row in logged) and 'perf/eval_s' in logged[-1]
  # Evaluated afterwards from the checkpoints, as `python -m scaling_vlm.evaluate` would.
  shutil.move(results, results + '.during')
  after_summary = milestones.evaluate_run(workdir, TASKS, synthetic_size=48, batch_size=16)
  assert not after_summary.skipped
  after = rows(results)
  assert after.keys() == during.keys()
  for key, row in during.items():
    assert float(row['value']) == float(after[key]['value']), key
    assert {k: v for k, v in row.items() if k != 'value'} == {
        k: v for k, v in after[key].items() if k != 'value'
    }
  # With the rows written during training in place, evaluating adds none.
  shutil.move(results + '.during', results)
  summary = milestones.evaluate_run(workdir, TASKS, synthetic_size=48, batch_size=16)
  assert (summary.rows, summary.present) == (0, 3)
  assert rows(results).keys() == during.keys()


@pytest.mark.slow
def test_training_goes_on_while_an_evaluation_runs(tmp_path, monkeypatch):
  """Each evaluation but the last waits until the loop has logged a later step, which only a
  loop that does not wait for it logs (with eval.background=False it gives up at once)."""
  logged, seen, patience = [], {}, {'s': 60.0}
  changed = threading.Condition()
  write = metrics.MetricsWriter.write

  def recording_write(self, step, values):
    write(self, step, values)
    with changed:
      logged.append(step)
      changed.notify_all()

  def waiting_evaluation(self, step, model, todo=None, progress=None, stop=None):
    if step < self.info.plan.total_steps:  # after the last step nothing more is logged
      with changed:
        seen[step] = changed.wait_for(lambda: logged[-1] > step, timeout=patience['s'])
    return {}

  monkeypatch.setattr(metrics.MetricsWriter, 'write', recording_write)
  monkeypatch.setattr(milestones.RunEvaluation, 'evaluate_model', waiting_evaluation)
  every = {'eval.every': '32', 'checkpoint.milestones': '96'}
  trainer.train(tiny_config(steps=6, **every), str(tmp_path / 'background'))
  assert seen == {2: True, 4: True}
  seen.clear()
  patience['s'] = 0.5  # it would wait forever: the loop waits for it
  config = tiny_config(steps=6, **every, **{'eval.background': False})
  trainer.train(config, str(tmp_path / 'between-steps'))
  assert seen == {2: False, 4: False}


@pytest.mark.slow
def test_a_relaunched_run_evaluates_its_milestones_that_have_no_rows(tmp_path):
  workdir = str(tmp_path / 'run')
  milestones_at = {'checkpoint.milestones': '64'}
  trainer.train(tiny_config(steps=8, **milestones_at, **{'eval.tasks': ''}), workdir)
  results = os.path.join(workdir, 'results.csv')
  assert not os.path.exists(results)
  # Finished, but what it evaluates is no part of what it trained: no config conflict.
  trainer.train(tiny_config(steps=8, **milestones_at), workdir)
  assert {(k[1], k[2]) for k in rows(results)} == {
      (s, t) for s in (64, 128) for t in (*TASKS, milestones.AVERAGE_TASK)
  }
  assert run_lib.Workdir(workdir).read_config().eval.tasks == ','.join(TASKS)
