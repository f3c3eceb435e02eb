"""A checkpoint's parameters read straight into their sharded layout on the evaluation mesh.

Each parameter is read with the NamedSharding its logical axis names get from `sharding.RULES`
on the mesh, so a device only ever holds its own shards (with `fsdp=N` the model width is split
N ways): models too big for one device evaluate across several. Only the `params` of the train
state are read, never the optimiser state beside them (a parameters-only milestone has none).
"""

from __future__ import annotations

import os

from collections.abc import Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh

from scaling_vlm import sharding
from scaling_vlm.train import checkpoints


def _target(saved, shardings, abstract, where: str):
  """The restore target in the checkpoint's own tree layout (string keys, 'value' leaves):
  each saved array's shape, with the dtype and sharding of the model's parameter there."""
  if isinstance(saved, Mapping) and set(saved) == {'value'}:
    return {'value': _target(saved['value'], shardings, abstract, where)}
  if isinstance(saved, Mapping):
    out = {}
    for key, value in saved.items():
      model_key = int(key) if key.isdigit() else key
      if not isinstance(shardings, Mapping) or model_key not in shardings:
        raise ValueError(f'the checkpoint has parameter {where}.{key}, which the model lacks')
      out[key] = _target(value, shardings[model_key], abstract[model_key], f'{where}.{key}')
    return out
  if tuple(saved.shape) != tuple(abstract.shape):
    raise ValueError(
        f'parameter {where} is {tuple(saved.shape)} in the checkpoint but {abstract.shape} in'
        ' the model: the checkpoint is of another model'
    )
  # The model's dtype: a milestone kept in bf16 (checkpoint.milestone_state=params_bf16) is
  # read back as the float32 parameters training holds (orbax casts as it reads).
  return jax.ShapeDtypeStruct(saved.shape, abstract.dtype, sharding=shardings)


def params(abstract_state: nnx.State, state_dir: str, mesh: Mesh) -> nnx.State:
  """The parameters in a checkpoint's `state` directory, as a copy of the model's (abstract)
  state with every array sharded on `mesh` by the logical RULES."""
  # Orbax reads a relative path's metadata as None: `--out runs/mini` failed every checkpoint.
  state_dir = os.path.abspath(state_dir)
  shardings = nnx.to_pure_dict(sharding.state_shardings(abstract_state, mesh))
  abstract = nnx.to_pure_dict(abstract_state)
  checkpointer = ocp.PyTreeCheckpointer()
  saved = checkpointer.metadata(state_dir).item_metadata['params']
  item = {'params': _target(saved, shardings, abstract, 'params')}
  if len(jax.tree.leaves(item)) != len(jax.tree.leaves(abstract)):
    raise ValueError(
        f'{state_dir} holds {len(jax.tree.leaves(item))} parameters but the model has'
        f' {len(jax.tree.leaves(abstract))}: the checkpoint is of another model'
    )
  restored = checkpointer.restore(
      state_dir,
      args=ocp.args.PyTreeRestore(
          item=item,
          restore_args=ocp.checkpoint_utils.construct_restore_args(item),
          partial_restore=True,  # the optimiser state stays on disk
      ),
  )
  state = jax.tree.map(lambda x: x, abstract_state)  # a copy: the abstract state is reused
  nnx.replace_by_pure_dict(state, checkpoints.to_pure(restored['params']))
  return state


def from_host(abstract_state: nnx.State, tree: dict, mesh: Mesh) -> nnx.State:
  """Parameters held on the host (a pure dict in the model's layout, such as an open_clip file
  converted by `convert.ours_from_theirs`), placed on `mesh` as `params` places a
  checkpoint's: each device receives only its own shards."""
  shardings = nnx.to_pure_dict(sharding.state_shardings(abstract_state, mesh))
  abstract = nnx.to_pure_dict(abstract_state)
  arrays = jax.tree.map(
      lambda array, where, like: jax.device_put(np.asarray(array, like.dtype), where),
      tree,
      shardings,
      abstract,
  )
  state = jax.tree.map(lambda x: x, abstract_state)  # a copy: the abstract state is reused
  nnx.replace_by_pure_dict(state, arrays)
  return state
