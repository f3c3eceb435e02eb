"""Evaluation on an fsdp mesh of 8 simulated CPU devices (tests/conftest.py): parameters are
read from a checkpoint straight into their FSDP layout, and embeddings, zero-shot scores and
retrieval recalls equal those of one device."""

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from scaling_vlm import models
from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.evaluate import embeddings, mesh, restore, retrieval, zero_shot
from scaling_vlm.train import step as step_lib

TOKENIZER = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
  """A tiny CLIP's train state (parameters and AdamW state) saved as the trainer saves it."""
  model = models.build('tiny-1', seed=5)
  state = step_lib.create_state(nnx.state(model), optax.adamw(1e-3))
  path = str(tmp_path_factory.mktemp('ckpt') / 'state')
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(path, state)
  checkpointer.wait_until_finished()
  return model, path


def load(path, sizes):
  """The checkpoint's model on a mesh of these sizes, as checkpoint evaluation builds it."""
  on = mesh.make(mesh.parse(sizes))
  graphdef, abstract = nnx.split(models.abstract('tiny-1'))
  return nnx.merge(graphdef, restore.params(abstract, path, on)), on


def test_parameters_are_read_into_their_fsdp_layout(saved):
  model, path = saved
  sharded, on = load(path, 'fsdp=8')
  assert dict(on.shape) == {'data': 1, 'fsdp': 8, 'tensor': 1}
  fc = sharded.visual.blocks.layers[0].mlp.fc.kernel[...]  # (embed 32, mlp 128)
  assert fc.sharding.spec[0] == 'fsdp'
  assert fc.addressable_shards[0].data.shape == (32 // 8, 128)
  expected = nnx.to_pure_dict(nnx.state(model))
  got = nnx.to_pure_dict(nnx.state(sharded))
  jax.tree.map(
      lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), expected, got
  )


def scores(model, on):
  """Image embeddings, zero-shot scores and retrieval recalls of `model` under mesh `on`."""
  task = synthetic.zero_shot_tasks(seed=2, image_size=64, size=20)[3]  # shape_colour
  split = synthetic.retrieval_split(seed=2, image_size=64, size=12)
  with jax.set_mesh(on):
    images, _ = embeddings.image_embeddings(model, task.source, 64, batch_size=12)
    accuracy = zero_shot.evaluate(model, TOKENIZER, task, 64, batch_size=12)
    recalls = retrieval.evaluate(model, TOKENIZER, split, 64, batch_size=12)
  return images, accuracy, recalls


def test_fsdp_evaluation_equals_one_device(saved):
  _, path = saved
  one = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1, 1), ('data', 'fsdp', 'tensor'))
  graphdef, abstract = nnx.split(models.abstract('tiny-1'))
  single = nnx.merge(graphdef, restore.params(abstract, path, one))
  images, accuracy, recalls = scores(single, one)
  sharded, on = load(path, 'fsdp=8')
  # Batches of 12 rows become 16 on 8 batch shards: padding must not change any score.
  sharded_images, sharded_accuracy, sharded_recalls = scores(sharded, on)
  np.testing.assert_allclose(sharded_images, images, atol=1e-5)
  assert sharded_accuracy == pytest.approx(accuracy) and sharded_recalls == pytest.approx(recalls)


def test_a_checkpoint_of_another_model_is_an_error(saved):
  _, path = saved
  on = mesh.make(mesh.parse('data=-1'))
  graphdef, abstract = nnx.split(models.abstract('tiny-2'))
  with pytest.raises(ValueError, match='the checkpoint is of another model'):
    restore.params(abstract, path, on)


@pytest.mark.parametrize(
    'text, sizes',
    [
        ('data=-1', {'data': -1, 'fsdp': 1, 'tensor': 1}),
        ('fsdp=8', {'data': -1, 'fsdp': 8, 'tensor': 1}),
        ('data=2, fsdp=4', {'data': 2, 'fsdp': 4, 'tensor': 1}),
        ('fsdp=-1', {'data': 1, 'fsdp': -1, 'tensor': 1}),
    ],
)
def test_mesh_flag(text, sizes):
  assert mesh.parse(text) == sizes


def test_mesh_flag_run_and_errors():
  assert mesh.parse('run', {'data': -1, 'fsdp': 4, 'tensor': 2}) == {
      'data': -1,
      'fsdp': 4,
      'tensor': 2,
  }
  with pytest.raises(ValueError, match=r"'model=2' is not AXIS=SIZE with AXIS one of \['data'"):
    mesh.parse('model=2')
  with pytest.raises(ValueError, match=r"'fsdp8' is not AXIS=SIZE"):
    mesh.parse('fsdp8')
  with pytest.raises(ValueError, match='8 devices are not divisible by 16'):
    mesh.make(mesh.parse('fsdp=16'))
