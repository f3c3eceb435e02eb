"""One spec per architecture (`scaling_vlm.models.archs`): every family's model, FLOP counter,
pooling and loss terms come from its spec, and both step paths log exactly its loss terms."""

import jax
import numpy as np
import pytest
from flax import nnx

from scaling_vlm import flops, models
from scaling_vlm.models import archs
from scaling_vlm.train import losses, step as step_lib

TINY = {name: archs.ARCHS[name].zoo_name('tiny-1') for name in archs.ARCHS}


def batch_for(config, rows=4):
  keys = jax.random.split(jax.random.key(0))
  v, t = config.vision, config.text
  return {
      'images': jax.random.normal(keys[0], (rows, v.image_size, v.image_size, 3)),
      'tokens': jax.random.randint(keys[1], (rows, t.context_length), 1, t.vocab_size - 2),
  }


def test_every_zoo_entry_has_a_spec_and_every_spec_a_tiny_model():
  assert {config.arch for config in models.ZOO.values()} == set(archs.ARCHS)
  assert all(name in models.ZOO for name in TINY.values())
  with pytest.raises(ValueError, match=r"arch='coca' is not allowed; choose one of \['clip'"):
    archs.get('coca')


@pytest.mark.parametrize('arch', sorted(archs.ARCHS))
def test_the_spec_is_what_the_model_does(arch):
  spec, config = archs.ARCHS[arch], models.get_config(TINY[arch])
  model = models.build(config)
  assert isinstance(model, spec.model_class) and isinstance(model, nnx.Module)
  batch = batch_for(config)
  outputs = model(batch['images'], batch['tokens'])
  assert ('caption_logits' in outputs) == spec.captions
  assert model.config.pooling == spec.pooling
  assert flops.forward_counts(config) == spec.counts(config)


@pytest.mark.parametrize('arch', sorted(archs.ARCHS))
def test_both_step_paths_log_the_spec_loss_terms_with_the_same_values(arch):
  config = models.get_config(TINY[arch])
  graphdef, params = nnx.split(models.build(config))
  batch = batch_for(config)
  fn = jax.jit(step_lib.loss_and_grads, static_argnums=(0, 3), static_argnames='micro_batches')
  whole, _ = fn(graphdef, params, batch, losses.LossConfig())
  micro, _ = fn(graphdef, params, batch, losses.LossConfig(), micro_batches=2)
  expected = {f'{term}_loss' for term in archs.ARCHS[arch].loss_terms} | {'loss', 'logit_scale'}
  assert set(whole) == set(micro) == expected
  for key in expected:
    np.testing.assert_allclose(micro[key], whole[key], rtol=1e-5, err_msg=key)
  weights = {'contrastive_loss': 1.0, 'caption_loss': 2.0}
  total = sum(weights[key] * whole[key] for key in weights if key in whole)
  np.testing.assert_allclose(whole['loss'], total, rtol=1e-6)
