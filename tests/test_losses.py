"""Tests for scaling_vlm.train.losses (CPU; tests/conftest.py provides 8 devices)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from scaling_vlm.train.losses import (
    BATCH_AXES,
    LossConfig,
    caption_loss,
    contrastive_loss,
    sigmoid_loss,
    total_loss,
)

LOG_SCALE = np.log(1 / 0.07)  # CLIP's initial logit_scale


def _embeddings(batch: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Random L2-normalised (image, text) embeddings; every row differs."""
  x, y = np.random.default_rng(seed).normal(size=(2, batch, dim)).astype(np.float32)
  return (
      x / np.linalg.norm(x, axis=1, keepdims=True),
      y / np.linalg.norm(y, axis=1, keepdims=True),
  )


def _mesh(axis_type: AxisType = AxisType.Auto) -> jax.sharding.Mesh:
  """8 CPU devices as data=4 x fsdp=2 x tensor=1 (a size-1 axis, as in real runs)."""
  return jax.make_mesh((4, 2, 1), ('data', 'fsdp', 'tensor'), axis_types=(axis_type,) * 3)


def _shard(mesh: jax.sharding.Mesh, *arrays: np.ndarray) -> list[jax.Array]:
  return [jax.device_put(a, NamedSharding(mesh, P(BATCH_AXES))) for a in arrays]


# References, written the obvious O(B^2) way; xp=np for values, xp=jnp for gradients.
def ref_infonce(x, y, log_scale, xp=np):
  logits = xp.exp(log_scale) * x @ y.T

  def mean_ce(l):  # mean over rows of -log softmax(row)[diagonal]
    m = l.max(axis=1, keepdims=True)
    return (m[:, 0] + xp.log(xp.exp(l - m).sum(axis=1)) - xp.diagonal(l)).mean()

  return (mean_ce(logits) + mean_ce(logits.T)) / 2


def ref_sigmoid(x, y, log_scale, bias, xp=np):
  z = 2 * xp.eye(len(x)) - 1
  return xp.log1p(xp.exp(-z * (xp.exp(log_scale) * x @ y.T + bias))).sum() / len(x)


def _assert_grads_match(loss_fn, ref_fn, args: tuple, mesh) -> None:
  """loss_fn on batch-sharded embeddings matches ref_fn (jnp) in value and grads."""
  argnums = tuple(range(len(args)))
  x, y = _shard(mesh, *args[:2])
  value, grads = jax.jit(jax.value_and_grad(loss_fn, argnums))(x, y, *args[2:])
  ref_value, ref_grads = jax.value_and_grad(ref_fn, argnums)(*args)
  np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)
  for g, ref_g in zip(grads, ref_grads):
    np.testing.assert_allclose(g, ref_g, rtol=1e-5, atol=1e-5)


def test_contrastive_matches_numpy_reference():
  x, y = _embeddings(16, 8)
  expected = ref_infonce(x.astype(np.float64), y.astype(np.float64), LOG_SCALE)
  np.testing.assert_allclose(contrastive_loss(x, y, LOG_SCALE), expected, rtol=1e-5, atol=1e-5)


def test_contrastive_computes_in_float32_for_bf16_inputs():
  x, y = (jnp.asarray(a, jnp.bfloat16) for a in _embeddings(16, 8))
  loss = contrastive_loss(x, y, jnp.asarray(LOG_SCALE, jnp.bfloat16))
  assert loss.dtype == jnp.float32
  expected = ref_infonce(
      np.asarray(x, np.float64),
      np.asarray(y, np.float64),
      float(jnp.asarray(LOG_SCALE, jnp.bfloat16)),
  )
  np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('axis_type', [AxisType.Auto, AxisType.Explicit])
def test_sharded_contrastive_matches_reference_value_and_grads(axis_type):
  mesh = _mesh(axis_type)
  x, y = _embeddings(32, 16, seed=1)  # 4 rows per device, all distinct
  _assert_grads_match(
      lambda x, y, s: contrastive_loss(x, y, s, mesh=mesh),
      lambda x, y, s: ref_infonce(x, y, s, xp=jnp),
      (x, y, jnp.float32(LOG_SCALE)),
      mesh,
  )


@pytest.mark.parametrize('axis_type', [AxisType.Auto, AxisType.Explicit])
def test_sharded_sigmoid_matches_reference_value_and_grads(axis_type):
  mesh = _mesh(axis_type)
  x, y = _embeddings(32, 16, seed=2)
  # SigLIP's init (scale 10, bias -10) plus a few well-aligned pairs, so that both
  # signs of z_ij carry real gradient.
  y[::3] = x[::3]
  _assert_grads_match(
      lambda x, y, s, b: sigmoid_loss(x, y, s, b, mesh=mesh),
      lambda x, y, s, b: ref_sigmoid(x, y, s, b, xp=jnp),
      (x, y, jnp.float32(np.log(10.0)), jnp.float32(-10.0)),
      mesh,
  )


def test_single_device_sigmoid_matches_numpy_reference():
  x, y = _embeddings(16, 8, seed=3)
  expected = ref_sigmoid(x.astype(np.float64), y.astype(np.float64), np.log(10.0), -10.0)
  np.testing.assert_allclose(sigmoid_loss(x, y, np.log(10.0), -10.0), expected, rtol=1e-5)


def test_sharded_contrastive_never_builds_global_logits():
  """Per-device temp memory of the jitted value_and_grad stays below one B x B fp32
  matrix, while a naive version on the same sharded inputs needs at least that."""
  B, D = 1024, 64
  mesh = _mesh()
  x, y = _shard(mesh, *_embeddings(B, D))

  def naive(x, y, s):  # gathers everything and forms the full B x B logits per device
    x, y = (jax.lax.with_sharding_constraint(a, NamedSharding(mesh, P())) for a in (x, y))
    return ref_infonce(x, y, s, xp=jnp)

  def compile_grad(fn):
    grad_fn = jax.jit(jax.value_and_grad(fn, (0, 1, 2)))
    return grad_fn.lower(x, y, jnp.float32(LOG_SCALE)).compile()

  sharded = compile_grad(lambda x, y, s: contrastive_loss(x, y, s, mesh=mesh))
  baseline = compile_grad(naive)
  global_logits_bytes = B * B * 4
  assert sharded.memory_analysis().temp_size_in_bytes < global_logits_bytes
  assert baseline.memory_analysis().temp_size_in_bytes >= global_logits_bytes
  # The HLO agrees: only (local B) x (global B) logits blocks, never a global one.
  shapes = set(re.findall(r'f32\[\d+,\d+\]', sharded.as_text()))
  assert 'f32[128,1024]' in shapes and 'f32[1024,1024]' not in shapes
  assert 'f32[1024,1024]' in baseline.as_text()


def _np_token_ce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  logits = logits.astype(np.float64)
  m = logits.max(-1, keepdims=True)
  lse = m[..., 0] + np.log(np.exp(logits - m).sum(-1))
  return lse - np.take_along_axis(logits, labels[..., None], -1)[..., 0]


def test_caption_loss_ignores_pad():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(2, 5, 11)).astype(np.float32)
  labels = np.array([[3, 7, 1, 0, 0], [5, 2, 9, 4, 0]])
  loss, count = caption_loss(logits, labels)
  assert int(count) == 7
  mask = labels != 0
  np.testing.assert_allclose(loss, _np_token_ce(logits, labels)[mask].mean(), rtol=1e-6)
  perturbed = np.where(mask[..., None], logits, 100 * rng.normal(size=logits.shape))
  perturbed_loss, _ = caption_loss(perturbed.astype(np.float32), labels)
  np.testing.assert_allclose(perturbed_loss, loss, rtol=1e-6)


def _model_outputs(batch: int = 8, seq: int = 6, vocab: int = 13) -> tuple[dict, np.ndarray]:
  rng = np.random.default_rng(5)
  x, y = _embeddings(batch, 8, seed=6)
  tokens = rng.integers(1, vocab, size=(batch, seq))
  tokens[:, -2:] = 0  # trailing pad
  outputs = {
      'image_emb': x,
      'text_emb': y,
      'logit_scale': jnp.float32(LOG_SCALE),
      'caption_logits': rng.normal(size=(batch, seq - 1, vocab)).astype(np.float32),
  }
  return outputs, tokens


def test_total_loss_weights_contrastive_and_caption():
  outputs, tokens = _model_outputs()
  loss, metrics = total_loss(outputs, tokens)
  contrastive = contrastive_loss(outputs['image_emb'], outputs['text_emb'], LOG_SCALE)
  caption, _ = caption_loss(outputs['caption_logits'], tokens[:, 1:])
  np.testing.assert_allclose(loss, 1.0 * contrastive + 2.0 * caption, rtol=1e-6)
  np.testing.assert_allclose(metrics['contrastive_loss'], contrastive, rtol=1e-6)
  np.testing.assert_allclose(metrics['caption_loss'], caption, rtol=1e-6)
  np.testing.assert_allclose(metrics['logit_scale'], 1 / 0.07, rtol=1e-6)
  assert metrics['loss'] is loss

  del outputs['caption_logits']  # plain CLIP: contrastive only
  loss, metrics = total_loss(outputs, tokens)
  np.testing.assert_allclose(loss, contrastive, rtol=1e-6)
  assert 'caption_loss' not in metrics


def test_total_loss_sigmoid_uses_logit_bias():
  outputs, tokens = _model_outputs()
  config = LossConfig(contrastive='sigmoid')
  with pytest.raises(ValueError, match='logit_bias'):
    total_loss(outputs, tokens, config)
  outputs['logit_bias'] = jnp.float32(-10.0)
  loss, metrics = total_loss(outputs, tokens, config)
  expected = sigmoid_loss(outputs['image_emb'], outputs['text_emb'], LOG_SCALE, -10.0)
  np.testing.assert_allclose(metrics['contrastive_loss'], expected, rtol=1e-6)


def test_loss_config_validation():
  with pytest.raises(ValueError, match=r"'hinge'.*'softmax', 'sigmoid'"):
    LossConfig(contrastive='hinge')
  with pytest.raises(ValueError, match='caption_weight'):
    LossConfig(caption_weight=-1.0)
