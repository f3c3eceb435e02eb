"""Logical axis names become mesh shardings, on 8 simulated CPU devices (tests/conftest.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from scaling_vlm import models, sharding


def test_make_mesh_fills_in_the_rest():
  mesh = sharding.make_mesh(data=-1, fsdp=2, tensor=2)
  assert dict(mesh.shape) == {'data': 2, 'fsdp': 2, 'tensor': 2}
  assert dict(sharding.make_mesh().shape) == {'data': 8, 'fsdp': 1, 'tensor': 1}


@pytest.mark.parametrize(
    'sizes, message',
    [
        ({'data': 3, 'fsdp': 1}, r'need 3 devices, but 8 are available'),
        ({'data': -1, 'fsdp': 3}, r'8 devices are not divisible by 3'),
        ({'data': -1, 'fsdp': -1}, r'at most one may be -1'),
        ({'data': 0}, r'each must be a positive integer'),
    ],
)
def test_bad_mesh_sizes(sizes, message):
  with pytest.raises(ValueError, match=message):
    sharding.make_mesh(**sizes)


def test_indivisible_dimension_is_replicated():
  mesh = sharding.make_mesh(data=2, fsdp=1, tensor=4)
  assert sharding.spec_for(('embed', 'heads', 'kv'), (64, 8, 16), mesh) == P('fsdp', 'tensor', None)
  assert sharding.spec_for(('embed', 'heads', 'kv'), (64, 6, 16), mesh) == P('fsdp', None, None)
  with pytest.raises(ValueError, match=r"Logical axis 'hidden' has no rule"):
    sharding.spec_for(('hidden',), (4,), mesh)


@pytest.mark.parametrize('scan', [False, True])
def test_parameters_are_created_in_their_sharded_layout(scan):
  mesh = sharding.make_mesh(data=1, fsdp=4, tensor=2)
  model = sharding.create_sharded(lambda: models.build('mammut_tiny-4', scan_layers=scan), mesh)
  first = (lambda stack: stack) if scan else (lambda stack: stack[0])
  lead = (None,) if scan else ()  # the scanned `layers` axis stays unsharded
  mlp = first(model.visual.blocks.layers).mlp.fc.kernel[...]
  assert mlp.sharding.spec == P(*lead, 'fsdp', 'tensor')
  assert mlp.addressable_shards[0].data.shape == (*mlp.shape[:-2], 96 // 4, 384 // 2)
  qkv = first(model.visual.blocks.layers).attn.qkv.kernel[...]
  assert qkv.sharding.spec == P(*lead, 'fsdp', None, 'tensor', None)
  lm_head = model.decoder.lm_head.kernel[...]
  assert lm_head.sharding.spec == P('fsdp', 'tensor')
  assert model.logit_scale.scale[...].sharding.spec == P()


@pytest.mark.parametrize('mesh_sizes', [{'data': 8}, {'data': 2, 'fsdp': 2, 'tensor': 2}])
def test_sharded_forward_equals_single_device(mesh_sizes):
  build = lambda: models.build('mammut_tiny-2', seed=3)
  images = jax.random.normal(jax.random.key(0), (8, 64, 64, 3))
  text = jax.random.randint(jax.random.key(1), (8, 32), 1, 1024)
  forward = nnx.jit(lambda model, images, text: model(images, text))
  expected = forward(build(), images, text)

  mesh = sharding.make_mesh(**mesh_sizes)
  model = sharding.create_sharded(build, mesh)
  with jax.set_mesh(mesh):
    images = jax.device_put(images, sharding.batch_sharding(mesh, 4))
    text = jax.device_put(text, sharding.batch_sharding(mesh, 2))
    out = forward(model, images, text)
  for key in expected:
    np.testing.assert_allclose(out[key], expected[key], atol=1e-5)
