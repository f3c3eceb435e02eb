"""The performance switches each do what they claim, and leave the numbers alone where they
should: flattened AdamW, bf16 compute over fp32 master weights, remat policies, scanned
layers, cuDNN attention's checks, XLA flag presets, donation and a loop without host syncs.
Their speed is measured by experiments/benchmarks/train_throughput.py, not here."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax._src.array import ArrayImpl

from configs import presets
from scaling_vlm import models, sharding, run as run_lib
from scaling_vlm.train import config as config_lib
from scaling_vlm.train import losses, step as step_lib, trainer, xla_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(model='tiny-1', steps=12, batch=8, **overrides):
  config = presets.for_model(model)
  config.train.global_batch = batch
  config.train.samples = str(steps * batch)
  config.train.warmup = str(batch)
  config.log.tensorboard = False
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return config


def random_batch(arch, batch, mesh):
  v, t = arch.vision, arch.text
  k = jax.random.split(jax.random.key(0))
  arrays = {
      'images': jax.random.normal(k[0], (batch, v.image_size, v.image_size, 3)),
      'tokens': jax.random.randint(k[1], (batch, t.context_length), 1, t.vocab_size - 2),
  }
  return {k: jax.device_put(x, sharding.batch_sharding(mesh, x.ndim)) for k, x in arrays.items()}


def optimizer(flatten):
  return step_lib.adamw(b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.2, grad_clip=1.0, flatten=flatten)


def train_steps(arch, flatten, n=3):
  """Params after `n` real train steps (trainer's sharded state creation, jitted step)."""
  mesh = sharding.make_mesh()
  opt = optimizer(flatten)
  graphdef, state = trainer.create_train_state(arch, opt, mesh, seed=0)
  step = step_lib.make_train_step(graphdef, opt, losses.LossConfig(), mesh=mesh)
  batch = random_batch(arch, 16, mesh)
  with jax.set_mesh(mesh):
    for _ in range(n):
      state, metrics = step(state, batch, 1e-3)
  return state, metrics


def test_flattened_adamw_gives_the_same_update():
  params = {
      'kernel': jax.random.normal(jax.random.key(0), (7, 5)),
      'bias': jax.random.normal(jax.random.key(1), (5,)),
      'scale': jnp.asarray(2.0),
  }
  results = []
  for flatten in (False, True):
    opt = optimizer(flatten)
    p, state = params, opt.init(params)
    for i in range(4):  # large gradients: the global-norm clip is active
      grads = jax.tree.map(lambda x: 3.0 * jax.random.normal(jax.random.key(i), x.shape), p)
      direction, state = opt.update(grads, state, p)
      p = optax.apply_updates(p, jax.tree.map(lambda d: -1e-3 * d, direction))
    results.append(p)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), *results)
  # The moments live in one flat buffer; decay still skips the 1-D gain and the scalar.
  flat_state = opt.init(params)
  assert jax.tree.leaves(flat_state[0])[1].shape == (7 * 5 + 5 + 1,)


@pytest.mark.slow
def test_flattened_adamw_trains_like_the_plain_one():
  # One real step (sharded state creation, jitted and donated step) moves the parameters
  # alike. Later steps drift apart by up to ~1% of a learning-rate step where a gradient is
  # near zero: last-bit differences in it (another XLA program, another summation order)
  # are what Adam divides by. The losses stay together.
  arch = models.get_config('tiny-1')
  (plain, _), (flat, _) = train_steps(arch, False, n=1), train_steps(arch, True, n=1)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
      plain.params,
      flat.params,
  )
  (_, m1), (_, m2) = train_steps(arch, False, n=4), train_steps(arch, True, n=4)
  np.testing.assert_allclose(m1['loss'], m2['loss'], rtol=1e-5)


def test_flatten_is_refused_on_sharded_parameters():
  config = tiny_config(**{'optim.flatten': True, 'mesh.fsdp': 2})
  with pytest.raises(ValueError, match=r'optim.flatten=True needs unsharded .* mesh.fsdp=2'):
    config_lib.validate(config)


def test_bfloat16_compute_keeps_float32_master_weights_and_moments():
  config = tiny_config(**{'model.dtype': 'bfloat16'})
  arch = run_lib.model_config(config)
  state, metrics = train_steps(arch, False, n=2)
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype('float32')}
  assert {x.dtype for x in jax.tree.leaves(state.opt_state) if x.ndim} == {jnp.dtype('float32')}
  assert np.isfinite(metrics['loss'])
  # ... while the matmuls run in bf16.
  mesh = sharding.make_mesh(data=1, devices=jax.devices()[:1])
  graphdef, params = nnx.split(sharding.create_sharded(lambda: models.build(arch), mesh))
  batch = random_batch(arch, 4, mesh)
  hlo = (
      jax.jit(lambda p: step_lib.loss_and_grads(graphdef, p, batch, losses.LossConfig()))
      .lower(params)
      .as_text()
  )
  dots = [line for line in hlo.splitlines() if 'dot_general' in line]
  # All but the contrastive logits (batch x batch, float32 on purpose) multiply in bf16.
  assert sum('bf16' in line for line in dots) > 50
  assert all('bf16' in line or 'tensor<4x4xf32>' in line for line in dots)


def compiled_grads(name, batch=16, **overrides):
  arch = models.get_config(name, **overrides)
  mesh = sharding.make_mesh(data=1, devices=jax.devices()[:1])
  graphdef, params = nnx.split(sharding.create_sharded(lambda: models.build(arch), mesh))
  data = random_batch(arch, batch, mesh)
  fn = jax.jit(lambda p: step_lib.loss_and_grads(graphdef, p, data, losses.LossConfig())[1])
  compiled = fn.lower(params).compile()
  return compiled, compiled(params)


def test_remat_policies_save_activation_memory_and_keep_gradients():
  # Over scanned layers, where the backward loop must recompute each layer in turn. (Over an
  # unrolled stack, XLA's CPU scheduler hoists the recomputation and memory *grows* ~10%:
  # measured by experiments/benchmarks/train_throughput.py, see README "Performance".)
  base, reference = compiled_grads('tiny-5', batch=32, remat='none', scan_layers=True)
  temp = {'none': base.memory_analysis().temp_size_in_bytes}
  for policy in ('dots', 'full'):
    compiled, grads = compiled_grads('tiny-5', batch=32, remat=policy, scan_layers=True)
    temp[policy] = compiled.memory_analysis().temp_size_in_bytes
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads, reference
    )
  assert temp['full'] < temp['dots'] < 0.6 * temp['none'], temp


def test_scanned_layers_trace_one_layer_body():
  def dots(**overrides):
    arch = models.get_config('tiny-5', **overrides)
    graphdef, params = nnx.split(nnx.eval_shape(lambda: models.build(arch)))
    batch = {
        'images': jax.ShapeDtypeStruct((4, 64, 64, 3), jnp.float32),
        'tokens': jax.ShapeDtypeStruct((4, 32), jnp.int32),
    }
    loss = lambda p, b: step_lib.loss_and_grads(graphdef, p, b, losses.LossConfig())
    return jax.jit(loss).lower(params, batch).as_text().count('dot_general')

  # tiny-5 has 4 vision and 4 text layers: the scanned program holds one copy of each.
  unrolled, scanned = dots(), dots(scan_layers=True)
  assert scanned < unrolled / 2, (scanned, unrolled)


def test_cudnn_attention_is_checked_before_it_fails_deep_in_xla():
  config = tiny_config(**{'model.attention_impl': 'cudnn'})
  with pytest.raises(ValueError, match=r"'cudnn' runs in bfloat16 only.*dtype='float32'"):
    config_lib.validate(config)
  config.model.dtype = 'bfloat16'
  config_lib.validate(config)
  with pytest.raises(ValueError, match=r"needs NVIDIA GPUs, but this run's devices are 'cpu'"):
    config_lib.check_devices(config, 'cpu')
  config_lib.check_devices(config, 'gpu')
  assert run_lib.model_config(config).attention_impl == 'cudnn'


def test_train_step_donates_the_state():
  arch = models.get_config('tiny-1')
  mesh = sharding.make_mesh()
  opt = optimizer(False)
  graphdef, state = trainer.create_train_state(arch, opt, mesh, seed=0)
  step = step_lib.make_train_step(graphdef, opt, losses.LossConfig(), mesh=mesh)
  with jax.set_mesh(mesh):
    new_state, _ = step(state, random_batch(arch, 8, mesh), 1e-3)
  assert all(x.is_deleted() for x in jax.tree.leaves(state))
  assert not any(x.is_deleted() for x in jax.tree.leaves(new_state))


@pytest.mark.slow
def test_the_loop_reads_device_values_only_at_log_and_save_steps(tmp_path, monkeypatch):
  # Every device-to-host read of a jax.Array (bool(), float(), np.asarray, device_get) goes
  # through ArrayImpl._value; each read is tagged with the number of steps run so far.
  config = tiny_config(
      steps=12,
      **{
          'log.every_steps': 4,
          'checkpoint.milestones': '96',  # the final step only
          'checkpoint.latest_every_steps': 1000,
          'checkpoint.async_save': False,
      },
  )
  steps_run, reads = [0], []
  make = step_lib.make_train_step

  def counting_make(*args, **kwargs):
    step = make(*args, **kwargs)

    def counted(state, batch, lr):
      out = step(state, batch, lr)
      steps_run[0] += 1
      return out

    return counted

  value = ArrayImpl._value

  def tagged(self):
    reads.append(steps_run[0])
    return value.fget(self)

  monkeypatch.setattr(step_lib, 'make_train_step', counting_make)
  monkeypatch.setattr(ArrayImpl, '_value', property(tagged))
  trainer.train(config, str(tmp_path))
  assert steps_run[0] == 12
  assert {4, 8, 12} <= set(reads)  # the probe does see the logging reads
  assert set(reads) <= {0, 4, 8, 12}, sorted(set(reads))


def test_config_keys_added_later_at_their_defaults_do_not_block_resuming():
  resolved = json.loads(tiny_config().to_json_best_effort())
  older = json.loads(json.dumps(resolved))
  del older['xla'], older['optim']['flatten']
  assert config_lib.changed_keys(older, resolved) == []
  resolved['optim']['flatten'] = True
  assert config_lib.changed_keys(older, resolved) == ['optim.flatten']


def test_xla_flag_presets_keep_the_users_flags():
  env = {'XLA_FLAGS': '--xla_gpu_triton_gemm_any=false --xla_dump_to=/tmp/d'}
  flags = xla_flags.apply('performance', env).split()
  assert flags == [
      '--xla_gpu_triton_gemm_any=false',
      '--xla_dump_to=/tmp/d',
      '--xla_gpu_enable_latency_hiding_scheduler=true',
  ]
  assert xla_flags.missing('performance', env) == []
  with pytest.raises(ValueError, match=r"xla.gpu_flags='fast' is not allowed.*'performance'"):
    xla_flags.apply('fast', {})
  config = tiny_config(**{'xla.gpu_flags': 'fast'})
  with pytest.raises(ValueError, match=r"xla.gpu_flags='fast' is not allowed"):
    config_lib.validate(config)


def run_python(code, **env):
  return subprocess.run(
      [sys.executable, '-c', code],
      cwd=REPO,
      env={**os.environ, **env},
      capture_output=True,
      text=True,
      timeout=300,
  )


def test_every_preset_flag_is_known_to_this_xla():
  flags = sorted({f for preset in xla_flags.PRESETS.values() for f in preset})
  out = run_python('import jax; jax.numpy.zeros(1).block_until_ready()', XLA_FLAGS=' '.join(flags))
  assert out.returncode == 0, out.stderr[-2000:]
  bogus = run_python('import jax; jax.numpy.zeros(1)', XLA_FLAGS='--xla_gpu_no_such_flag=true')
  assert 'Unknown flag' in bogus.stderr  # so the check above means something


CLI = """
import json, os, sys
from scaling_vlm import run
from scaling_vlm.train import __main__ as cli, trainer, xla_flags
{patch}
def fake_train(config, workdir):
  import jax
  jax.numpy.zeros(1).block_until_ready()  # the backend starts here, reading XLA_FLAGS
  print(json.dumps({{'XLA_FLAGS': os.environ['XLA_FLAGS']}}))
trainer.train = fake_train
run.Run.finished = lambda self: True  # nothing trained: no exit status 75
sys.argv = ['train', '--config=configs/clip.py:tiny', '--workdir', {workdir!r},
            '--config.xla.gpu_flags=performance']
cli.run()
"""


def test_the_cli_sets_xla_flags_before_jax_starts(tmp_path):
  out = run_python(CLI.format(patch='', workdir=str(tmp_path)), XLA_FLAGS='--xla_dump_to=/tmp/x')
  assert out.returncode == 0, out.stderr[-2000:]
  flags = json.loads(out.stdout.strip().splitlines()[-1])['XLA_FLAGS'].split()
  assert flags == ['--xla_dump_to=/tmp/x', *xla_flags.PRESETS['performance']]
  # XLA really reads what the CLI wrote: a preset with an unknown flag kills the backend.
  patch = "xla_flags.PRESETS['performance'] = ('--xla_gpu_no_such_flag=true',)"
  out = run_python(CLI.format(patch=patch, workdir=str(tmp_path)))
  assert out.returncode != 0 and 'Unknown flag in XLA_FLAGS: --xla_gpu_no_such_flag' in out.stderr


def test_new_keys_do_not_crowd_out_the_suggestion_of_an_abbreviated_key():
  # 'optim.flatten' spells closer to 'optim.learning_rate' than 'optim.lr' does.
  with pytest.raises(ValueError, match=r"'optim.learning_rate'. Did you mean optim.lr, "):
    config_lib.check_override_keys(tiny_config(), ['--config.optim.learning_rate=1e-3'])
