"""Milestones that keep the parameters alone: what each step keeps, what the preservation policy
keeps for resumption, what a finished run keeps, and that every reader of milestones (evaluation,
export, `init.checkpoint`) reads them, while a cooldown from one is refused in one line."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import presets
from scaling_vlm import run as run_lib, sharding
from scaling_vlm.convert import runs as convert_runs
from scaling_vlm.evaluate import milestones, restore
from scaling_vlm.train import checkpoints, storage, trainer
from scaling_vlm.train.config import validate

BATCH = 16
# Step -> what the checkpoint there keeps, as a run with these milestones would save them.
KEPT = {1: 'params', 2: 'params_bf16', 3: 'full', 4: 'params'}


def tiny_config(**overrides):
  config = presets.for_model('tiny-1')
  config.train.global_batch, config.train.samples, config.train.warmup = BATCH, '64', '0'
  config.checkpoint.milestones = '16,32,48'
  config.log.tensorboard = False
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return config


def shifted(state, by: float):
  """The state with every parameter moved by `by`, so each step's checkpoint differs, and
  AdamW's moments made as incompressible as a trained run's (a fresh state's are zeros)."""
  noise = lambda x: x + jax.random.normal(jax.random.key(0), x.shape, x.dtype)  # noqa: E731
  moments = jax.tree.map(lambda x: noise(x) if x.dtype == jnp.float32 else x, state.opt_state)
  return state.replace(params=jax.tree.map(lambda x: x + by, state.params), opt_state=moments)


def held_bytes(state_dir) -> int:
  """Bytes of the arrays a checkpoint's `state` item holds, from orbax's metadata."""
  tree = ocp.PyTreeCheckpointer().metadata(state_dir).item_metadata
  leaves = jax.tree.leaves(tree)
  return sum(np.prod(m.shape, dtype=int) * np.dtype(m.dtype).itemsize for m in leaves)


def du(path) -> int:
  return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
  """A const run's workdir whose steps keep KEPT, saved from a real train state; and that
  state's parameters at step 0."""
  workdir = run_lib.Workdir(str(tmp_path_factory.mktemp('runs') / 'const'))
  config = tiny_config(**{'optim.schedule': 'const'})
  workdir.write_config(config)
  parts = trainer.setup(config, sharding.make_mesh(data=-1))
  ckpts = checkpoints.Checkpoints(workdir.checkpoints, [1, 2, 3, 4], async_save=False, states=KEPT)
  for step in KEPT:
    ckpts.save(step, shifted(parts.state, step), parts.host, resume_point=False)
  ckpts.close()
  return workdir, parts


def test_what_milestones_keep_by_config():
  plan = lambda c: run_lib.RunPlan.from_config(c)  # noqa: E731
  cosine = tiny_config()
  # The last step is always a milestone; a cosine run is never branched from: parameters.
  assert storage.milestone_states(cosine, plan(cosine)) == dict.fromkeys([1, 2, 3, 4], 'params')
  const = tiny_config(**{'optim.schedule': 'const'})
  assert set(storage.milestone_states(const, plan(const)).values()) == {'full'}  # auto
  listed = tiny_config(**{'optim.schedule': 'const', 'checkpoint.branch_points': '32',
                          'checkpoint.milestone_state': 'params_bf16'})  # fmt: skip
  assert storage.milestone_states(listed, plan(listed)) == {
      1: 'params_bf16', 2: 'full', 3: 'params_bf16', 4: 'params_bf16'
  }
  full = tiny_config(**{'checkpoint.milestone_state': 'full'})
  assert set(storage.milestone_states(full, plan(full)).values()) == {'full'}
  with pytest.raises(ValueError, match=r'branch_points names 40 samples, which is not a milestone'):
    validate(tiny_config(**{'checkpoint.branch_points': '16,40'}))
  with pytest.raises(ValueError, match=r"checkpoint.milestone_state='half' is not allowed"):
    validate(tiny_config(**{'checkpoint.milestone_state': 'half'}))
  # A const run of 1M parameters: four milestones at 4 B/parameter, full state 12 B/parameter.
  assert storage.run_bytes(10**6, {1: 'params', 2: 'params_bf16', 3: 'full'}) == 18 * 10**6
  assert storage.run_bytes(10**6, {1: 'params'}, finished=False) == 28 * 10**6


def test_each_step_keeps_what_it_says_and_is_smaller(saved):
  workdir, parts = saved
  ckpts = checkpoints.Checkpoints(workdir.checkpoints, [], create=False)
  assert {s: ckpts.kept(s) for s in ckpts.all_steps()} == KEPT
  assert ckpts.resume_steps() == [3]
  held = {s: held_bytes(os.path.join(workdir.checkpoints, str(s), 'state')) for s in KEPT}
  params = sum(x.size for x in jax.tree.leaves(parts.state.params))
  # Parameters alone, in float32 or bf16; the full state adds AdamW's two moments (and a few
  # scalars): what storage.PARAM_BYTES budgets.
  assert (held[1], held[2]) == (4 * params, 2 * params)
  assert held[3] == pytest.approx(12 * params, rel=1e-3)
  # On disk, orbax's metadata and compression blur it for a model this small (65 kB of
  # metadata each), but parameters alone are still well under half the full state.
  disk = {s: du(os.path.join(workdir.checkpoints, str(s))) for s in KEPT}
  assert disk[1] < 0.5 * disk[3] and disk[4] < 0.5 * disk[3], disk
  state = checkpoints.read_state(os.path.join(workdir.checkpoints, '2', 'state'))
  assert set(state) == {'params'}
  assert {x.dtype for x in jax.tree.leaves(state)} == {np.dtype(jnp.bfloat16)}


def test_resumption_points_are_not_pushed_out_by_parameter_milestones(saved, tmp_path):
  _, parts = saved
  ckpts = checkpoints.Checkpoints(
      str(tmp_path), [2, 3, 4], async_save=False, states={2: 'params', 3: 'params', 4: 'params'}
  )
  ckpts.save(1, parts.state, parts.host)  # a rolling checkpoint: full
  for step in (2, 3, 4):
    ckpts.save(step, parts.state, parts.host, resume_point=False)
  # Three newer checkpoints, but none to resume from: a latest-two policy would delete step 1.
  assert ckpts.all_steps() == [1, 2, 3, 4] and ckpts.resume_steps() == [1]
  ckpts.save(4, parts.state, parts.host, resume_point=False)  # a resumed run repeats a milestone
  for step in (5, 6, 7):
    ckpts.save(step, parts.state, parts.host)
  assert ckpts.all_steps() == [2, 3, 4, 6, 7] and ckpts.resume_steps() == [6, 7]
  ckpts.save(7, parts.state, parts.host, resume_point=False)  # already there, in full
  assert ckpts.kept(7) == 'full'
  ckpts.close(finished=True)  # a finished run never resumes: its milestones alone stay
  assert sorted(int(n) for n in os.listdir(tmp_path) if n.isdigit()) == [2, 3, 4]


def test_evaluation_export_and_init_read_parameters_only_milestones(saved):
  workdir, parts = saved
  step0 = parts.state.params
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), step0)
  mesh = sharding.make_mesh(data=-1)
  for step in KEPT:
    got = restore.params(abstract, os.path.join(workdir.checkpoints, str(step), 'state'), mesh)
    want = shifted(parts.state, step).params
    if KEPT[step] == 'params_bf16':  # read back as float32, at bf16's rounding
      want = jax.tree.map(lambda x: x.astype(jnp.bfloat16).astype(jnp.float32), want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      assert a.dtype == jnp.float32
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for step in (1, 2):
    _, _, flat = convert_runs.read_params(workdir.path, step)
    assert {a.dtype for a in flat.values()} == {np.dtype(np.float32)}
  init = convert_runs.init_params(f'{workdir.path}:1', run_lib.model_config(tiny_config()))
  assert init.keys() == flat.keys()
  _, tensors = convert_runs.export_run(workdir.path, str(workdir.path) + '.safetensors', step=2)
  assert len(tensors) > 10
  # Every milestone evaluates: none is skipped for want of an optimiser state.
  summary = milestones.evaluate_run(workdir.path, ['synthetic/colour'], synthetic_size=16)
  assert not summary.skipped and summary.rows > 0


def test_a_cooldown_from_a_parameters_only_milestone_is_one_line(saved, tmp_path):
  workdir, _ = saved
  branch = tiny_config(
      **{'optim.schedule': 'cooldown', 'cooldown.parent': workdir.path, 'cooldown.start': '16'}
  )
  with pytest.raises(ValueError) as error:
    trainer.train(branch, str(tmp_path / 'branch'))
  message = str(error.value)
  assert 'kept only its parameters there' in message and '\n' not in message
  assert "checkpoint.milestone_state='params'" in message and 'checkpoint.branch_points' in message
  assert not (tmp_path / 'branch').exists()  # refused before anything was written
  trainer.check_branch_point(tiny_config(**{'optim.schedule': 'cooldown',
                                            'cooldown.parent': workdir.path,
                                            'cooldown.start': '48'}))  # fmt: skip  # full: fine


def test_the_export_command_reads_a_bf16_milestone_without_library_warnings(saved, tmp_path):
  workdir, _ = saved
  out = str(tmp_path / 'step2.safetensors')
  command = [sys.executable, '-m', 'scaling_vlm.convert', 'export', '--workdir', workdir.path]
  done = subprocess.run(
      [*command, '--step', '2', '--out', out], capture_output=True, text=True, timeout=300
  )
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().endswith(f'of {workdir.path} at step 2')
  # Orbax's warning that the `state` folder has no metadata file of its own is not shown.
  assert 'WARNING' not in done.stderr, done.stderr


def test_the_dry_run_budgets_what_the_checkpoints_keep(capsys):
  from experiments import budget, launch, sweep  # pylint: disable=import-outside-toplevel
  from scaling_vlm import models  # pylint: disable=import-outside-toplevel

  path = os.path.join(os.path.dirname(__file__), '..', 'experiments/sweeps/tiny_local.py')
  planned = sweep.expand(sweep.load(path))
  # Counted here from unscanned modules; 4 bytes a parameter per milestone, 12 at the constant
  # run's (every milestone a possible branch point: checkpoint.branch_points=auto).
  count = {p.name: models.count_params(models.abstract(p.config.model.name)) for p in planned}
  per_param = {p.name: 12 if p.name.endswith('const-8192') else 4 for p in planned}
  want = {p.name: count[p.name] * len(p.plan.milestone_steps) * per_param[p.name] for p in planned}
  assert {p.name: budget.run_bytes(p) for p in planned} == want
  assert launch.main([path, '--dry-run']) == 0
  lines = capsys.readouterr().out.splitlines()
  (line,) = [l for l in lines if l.startswith('storage: ')]
  assert line.startswith(f'storage: {storage.size(sum(want.values()))} of checkpoints once every')
  assert '(4 milestones with the full state, 43 with parameters alone;' in line
  # Its branches start at 1536 and 6144 samples; its milestones at 2048 and 8192 need no state.
  (const,) = [p for p in planned if p.name.endswith('const-8192')]
  spare = 2 * 8 * count[const.name]
  assert lines[lines.index(line) + 1].startswith(f'  {storage.size(spare)} of it is the full state')
