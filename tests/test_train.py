"""The trainer: learning, sharding equivalence, accumulation, schedules and configs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import presets
from scaling_vlm import models, run as run_lib, sharding
from scaling_vlm.train import config as config_lib
from scaling_vlm.train import losses, metrics, schedules, step as step_lib, trainer


def tiny_config(model='tiny-1', steps=20, batch=16, **overrides):
  config = presets.for_model(model)
  config.train.global_batch = batch
  config.train.samples = str(steps * batch)
  config.train.warmup = str(2 * batch)
  config.log.every_steps = 1
  config.log.tensorboard = False
  config.checkpoint.latest_every_steps = 5
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return config


@pytest.mark.slow
@pytest.mark.parametrize('model', ['tiny-1', 'mammut_tiny-1'])
def test_tiny_models_learn(tmp_path, model):
  config = tiny_config(model, steps=50, batch=32, **{'optim.lr': 3e-3})
  trainer.train(config, str(tmp_path))
  losses_ = [row['train/loss'] for row in metrics.read(str(tmp_path))]
  assert len(losses_) == 50
  assert np.mean(losses_[-10:]) < np.mean(losses_[:10]) - 0.1, losses_
  assert sorted(trainer.checkpoints_lib.Checkpoints(str(tmp_path / 'checkpoints'), []).all_steps())


def run_steps(config, mesh, n):
  """`n` train steps of `config` on `mesh` through the real pipeline; returns the losses."""
  parts = trainer.setup(config, mesh)
  state, out = parts.state, []
  with jax.set_mesh(mesh):
    for i in range(n):
      state, m = parts.train_step(state, next(parts.batches), parts.learning_rates[i])
      out.append(float(m['loss']))
  return out


@pytest.mark.slow
@pytest.mark.parametrize('model', ['tiny-1', 'mammut_tiny-1'])
def test_one_device_and_eight_give_the_same_losses(model):
  config = tiny_config(model, batch=16)
  single = run_steps(config, sharding.make_mesh(data=1, devices=jax.devices()[:1]), 6)
  data_parallel = run_steps(config, sharding.make_mesh(data=8), 6)
  fsdp = run_steps(config, sharding.make_mesh(data=2, fsdp=4), 6)
  np.testing.assert_allclose(data_parallel, single, atol=1e-4)
  np.testing.assert_allclose(fsdp, single, atol=1e-4)
  assert single[-1] != single[0]  # the parameters did move


@pytest.mark.slow
@pytest.mark.parametrize('model', ['tiny-1', 'mammut_tiny-1'])
def test_gradient_accumulation_equals_one_large_batch(model):
  mesh = sharding.make_mesh(data=4, fsdp=2)
  arch = models.get_config(model)
  model = sharding.create_sharded(lambda: models.build(arch), mesh)
  if model.config.arch == 'mammut':  # a zero LM head would hide caption-gradient mistakes
    head = model.decoder.lm_head.kernel
    head[...] = 0.1 * jax.random.normal(jax.random.key(3), head.shape)
  graphdef, params = nnx.split(model)
  with jax.set_mesh(mesh):
    k = jax.random.split(jax.random.key(0), 2)
    batch = {
        'images': jax.random.normal(k[0], (64, 64, 64, 3)),
        'tokens': jax.random.randint(k[1], (64, 32), 1, 1022).at[:, 12:].set(0),
    }
    batch = {k: jax.device_put(v, sharding.batch_sharding(mesh, v.ndim)) for k, v in batch.items()}
    fn = jax.jit(
        step_lib.loss_and_grads, static_argnums=(0, 3), static_argnames=('mesh', 'micro_batches')
    )
    full_metrics, full = fn(graphdef, params, batch, losses.LossConfig(), mesh=mesh)
    accum_metrics, accum = fn(
        graphdef, params, batch, losses.LossConfig(), mesh=mesh, micro_batches=4
    )
  for key in full_metrics:
    np.testing.assert_allclose(accum_metrics[key], full_metrics[key], rtol=1e-5, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), accum, full)
  assert optax.tree.norm(full) > 0


@pytest.mark.slow
def test_cooldown_branch_starts_at_the_parents_milestone(tmp_path):
  parent = tiny_config(steps=20, **{'optim.schedule': 'const', 'checkpoint.milestones': '160,320'})
  trainer.train(parent, str(tmp_path / 'parent'))
  branch = tiny_config(
      steps=16,
      **{
          'optim.schedule': 'cooldown',
          'cooldown.parent': str(tmp_path / 'parent'),
          'cooldown.start': '160',
          'cooldown.shape': '1-sqrt',
      },
  )
  trainer.train(branch, str(tmp_path / 'branch'))
  rows = {r['step']: r for r in metrics.read(str(tmp_path / 'parent'))}
  branch_rows = metrics.read(str(tmp_path / 'branch'))
  assert [r['step'] for r in branch_rows] == list(range(11, 17))
  # Its first step is the parent's step 11: same parameters, data position and LR.
  assert branch_rows[0]['train/loss'] == rows[11]['train/loss']
  lrs = [r['train/lr'] for r in branch_rows]
  assert lrs[0] == pytest.approx(parent.optim.lr) and all(np.diff(lrs) < 0)
  schedule = schedules.learning_rate(
      'cooldown',
      peak=1e-3,
      warmup_steps=2,
      total_steps=16,
      cooldown_start=10,
      cooldown_shape='1-sqrt',
  )
  assert float(schedule(16)) == 0.0  # the floor, reached at the end
  assert float(schedule(13)) == pytest.approx(1e-3 * (1 - np.sqrt(0.5)))


@pytest.mark.slow
def test_runs_that_differ_in_schedule_peak_or_warmup_run_one_program(tmp_path, monkeypatch):
  """The program the trainer compiles (what the persistent cache keys on) is the same for a
  constant and a cosine run with another peak rate and warmup, and each step gets its rate."""
  programs, rates = set(), []
  make = step_lib.make_train_step

  def recording_make(*args, **kwargs):
    step = make(*args, **kwargs)

    def recorded(state, batch, lr):
      programs.add(step.lower(state, batch, lr).as_text())
      rates.append(float(lr))
      return step(state, batch, lr)

    return recorded

  monkeypatch.setattr(step_lib, 'make_train_step', recording_make)
  const = tiny_config(steps=3, **{'optim.schedule': 'const', 'optim.lr': 1e-3})
  cosine = tiny_config(steps=3, **{'optim.lr': 3e-3, 'train.warmup': '16'})
  trainer.train(const, str(tmp_path / 'const'))
  trainer.train(cosine, str(tmp_path / 'cosine'))
  assert len(programs) == 1
  # Warmup from 0 over 2 steps then 1e-3; then warmup over 1 step to 3e-3 and cosine decay.
  np.testing.assert_allclose(rates, [0, 5e-4, 1e-3, 0, 3e-3, 1.5e-3], rtol=1e-6, atol=1e-12)


def test_schedules():
  cosine = schedules.learning_rate('cosine', peak=1.0, warmup_steps=10, total_steps=110, floor=0.1)
  assert float(cosine(0)) == 0 and float(cosine(5)) == pytest.approx(0.5)
  assert float(cosine(10)) == pytest.approx(1.0) and float(cosine(60)) == pytest.approx(0.55)
  assert float(cosine(110)) == pytest.approx(0.1)
  const = schedules.learning_rate('const', peak=1.0, warmup_steps=10, total_steps=110)
  assert float(const(100)) == 1.0
  with pytest.raises(ValueError, match=r"schedule 'step' is not allowed"):
    schedules.learning_rate('step', peak=1.0, warmup_steps=0, total_steps=1)


def test_milestones_are_geometric_whole_steps_ending_at_the_total():
  from scaling_vlm.run import milestone_samples

  samples = milestone_samples('geometric:2', 100_000, 100)
  assert samples[-1] == 100_000 and all(s % 100 == 0 for s in samples)
  assert samples == [100, 400, 1000, 3200, 10_000, 31_700, 100_000]
  assert milestone_samples('1k, 2.5k', 10_000, 100) == [1000, 2500, 10_000]


def test_durations_in_samples():
  assert config_lib.parse_count('3.072M', 'k') == 3_072_000
  assert config_lib.parse_count('1.28e9', 'k') == 1_280_000_000
  with pytest.raises(ValueError, match=r"train.samples='12 epochs' is not a count"):
    config_lib.parse_count('12 epochs', 'train.samples')


def test_bad_configs_name_the_key():
  config = tiny_config()
  with pytest.raises(ValueError, match=r"Unknown config key 'optim.learning_rate'.*optim.lr"):
    config_lib.check_override_keys(config, ['--config.optim.learning_rate=1e-3'])
  config.model.dtype = 'fp16'
  with pytest.raises(ValueError, match=r"model.dtype='fp16' is not allowed.*bfloat16"):
    config_lib.validate(config)
  config = tiny_config(batch=12)
  with pytest.raises(ValueError, match=r'12 rows is not divisible by the 8 data-parallel'):
    config_lib.check_batch_fits_mesh(config, sharding.make_mesh(data=8))
  config = tiny_config(**{'optim.schedule': 'cooldown'})
  with pytest.raises(ValueError, match=r'cooldown needs cooldown.parent'):
    config_lib.validate(config)
  with pytest.raises(ValueError, match=r"'mammut_ViT-B-32' is not a clip model"):
    presets.make('clip', 'mammut_ViT-B-32')


def test_resuming_with_another_config_is_refused_but_a_start_without_checkpoint_is_new(tmp_path):
  workdir = run_lib.Workdir(str(tmp_path))
  workdir.write_config(tiny_config())
  other = tiny_config(**{'optim.lr': 5e-3})
  trainer.claim_config(other, workdir)  # no checkpoint yet: a failed start, this config wins
  (tmp_path / 'checkpoints' / '5').mkdir(parents=True)
  with pytest.raises(ValueError, match=r'differs in: optim.lr'):
    trainer.claim_config(other, workdir)


@pytest.mark.parametrize(
    'key, value, message',
    [
        ('optim.lr', -1.0, r'optim.lr=-1.0 is not allowed; it must be > 0'),
        ('checkpoint.latest_every_steps', 0, r'latest_every_steps=0 is not allowed.*>= 1'),
        ('log.every_steps', 0, r'log.every_steps=0 is not allowed; it must be >= 1'),
        ('data.max_bad_fraction', -1.0, r'max_bad_fraction=-1.0 is not allowed.*\[0, 1\]'),
        ('mesh.data', 0, r'mesh.data=0 is not allowed.*-1 \(every device\) or >= 1'),
        ('checkpoint.milestones', '128,64', r"milestones='128,64' must increase"),
        ('checkpoint.milestones', '64,1M', r'names 1000000 samples, past the end of the run'),
    ],
)
def test_every_numeric_key_has_its_range(key, value, message):
  config = tiny_config(**{key: value})
  with pytest.raises(ValueError, match=message):
    config_lib.validate(config)
    run_lib.RunPlan.from_config(config)


def test_a_failed_start_writes_nothing(tmp_path):
  """Inputs, parents and the mesh are checked before the workdir is touched."""
  cases = {
      'shards': (
          {'data.source': 'wds', 'data.shards': str(tmp_path / 'nope/{0..3}.tar')},
          r'data.shards=.*nope/0.tar, .*nope/1.tar, .*nope/2.tar, ... \(4 in all\), and '
          'none of them exists',
      ),
      'parent': (
          {
              'optim.schedule': 'cooldown',
              'cooldown.parent': str(tmp_path / 'const'),
              'cooldown.start': '64',
          },
          r"cooldown.parent=.*const' does not exist",
      ),
      'mesh': ({'mesh.fsdp': 3}, r'fsdp'),
  }
  for name, (overrides, message) in cases.items():
    with pytest.raises(ValueError, match=message):
      trainer.train(tiny_config(**overrides), str(tmp_path / name))
    assert not (tmp_path / name).exists(), name
  assert not (tmp_path / 'const').exists()  # opening a parent never creates it


def test_the_non_finite_message_names_the_checkpoint_safe_to_resume_from():
  class Saved:

    def __init__(self, steps):
      self.steps = steps

    def resume_steps(self):  # parameters-only milestones are no place to resume from
      return self.steps

  two = str(trainer._non_finite(12, Saved([4, 8, 10])))
  assert 'at or before step 12' in two
  assert 'the checkpoint at step 8 is the safe one to resume from (step 10, the latest' in two
  assert 'resume from the checkpoint at step 4' in str(trainer._non_finite(6, Saved([4])))
  assert '\n' not in two


@pytest.mark.slow
def test_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoints(tmp_path):
  # An absurd LR blows the weights up after the first update; the loss then overflows.
  config = tiny_config(
      steps=20, **{'optim.lr': 1e12, 'train.warmup': '0', 'checkpoint.latest_every_steps': 1}
  )
  with pytest.raises(
      trainer.NonFiniteError,
      match=r'resume from the checkpoint at step \d+|step \d+ is the safe one to resume from',
  ):
    trainer.train(config, str(tmp_path))
  ckpts = trainer.checkpoints_lib.Checkpoints(str(tmp_path / 'checkpoints'), [])
  assert 1 <= len(ckpts.all_steps()) <= 2  # the two latest are kept
  last = ckpts.latest_step()
  state = trainer.checkpoints_lib.read_state(str(tmp_path / 'checkpoints' / str(last) / 'state'))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state['params']))
  rows = metrics.read(str(tmp_path))
  assert rows[-1]['step'] == last  # nothing was logged or saved after the blow-up


@pytest.mark.slow
def test_a_finished_run_keeps_its_milestones_alone(tmp_path):
  # While it runs, the two latest full states are kept besides the milestones
  # (tests/test_milestone_params.py); once finished, it never resumes.
  config = tiny_config(
      steps=8, **{'checkpoint.latest_every_steps': 1, 'checkpoint.milestones': '32,128'}
  )
  trainer.train(config, str(tmp_path))
  assert run_lib.Workdir(str(tmp_path)).saved_steps() == {2, 8}


@pytest.mark.parametrize('name,scan', [('tiny-1', True), ('climp_tiny-1', False)])
def test_weight_decay_reaches_weights_only(name, scan):
  """With a zero gradient, AdamW moves a parameter only by its decay: kernels and embeddings
  shrink; gains, biases (also the (layers, ...) ones of scanned stacks and the (3, heads,
  head_dim) qkv bias), the logit scale and Mamba's A_log, D and dt_bias stay put."""
  model = models.build(name, scan_layers=scan) if scan else models.build(name)
  params = nnx.state(model, nnx.Param)
  optimizer = step_lib.adamw(b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.5, grad_clip=1.0)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = optimizer.update(zeros, optimizer.init(params), params)
  moved = {}
  for path, update in jax.tree_util.tree_flatten_with_path(updates)[0]:
    leaf = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)][-1]
    moved.setdefault(leaf, set()).add(bool(jnp.any(update != 0)))
  assert moved['kernel'] == {True} and moved['embedding'] == {True}
  for leaf in ('scale', 'bias', 'A_log', 'D', 'dt_bias'):
    assert moved.get(leaf, {False}) == {False}, leaf
  if scan:
    assert 'class_embedding' in moved and moved['class_embedding'] == {False}


def test_a_resumed_run_logs_each_step_once_in_order(tmp_path):
  writer = metrics.MetricsWriter(str(tmp_path), tensorboard=True)
  for step in range(1, 11):
    writer.write(step, {'train/loss': float(step)})
  writer.close()
  with open(tmp_path / 'metrics.jsonl', 'a') as file:
    file.write('{"step": 11, "tr')  # killed mid-line
  # Resumed from the checkpoint at step 6: steps 7.. run again.
  writer = metrics.MetricsWriter(str(tmp_path), tensorboard=True, start_step=6)
  for step in range(7, 9):
    writer.write(step, {'train/loss': 100.0 + step})
  writer.close()
  rows = metrics.read(str(tmp_path))
  assert [r['step'] for r in rows] == list(range(1, 9))
  assert [r['train/loss'] for r in rows][5:] == [6.0, 107.0, 108.0]
  # Killed before its first checkpoint: the run starts over from step 0, and so does its log.
  metrics.MetricsWriter(str(tmp_path), tensorboard=False, start_step=0).write(1, {'x': 1.0})
  assert [r['step'] for r in metrics.read(str(tmp_path))] == [1]
