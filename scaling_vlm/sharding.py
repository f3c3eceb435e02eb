"""The device mesh and the one table that maps logical axis names onto it.

Models name the axes of their parameters (`embed`, `mlp`, `heads`, ...) and know nothing
of devices. This module turns those names into `PartitionSpec`s over a mesh with axes
`data` (pure data parallel: parameters replicated), `fsdp` (batch *and* parameters split:
ZeRO-3) and `tensor` (Megatron-style splits of heads, MLP and vocabulary). Changing the
parallelism of a run means changing the mesh shape, never the model.
"""

from __future__ import annotations

import math

import jax
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ('data', 'fsdp', 'tensor')
BATCH_AXES = ('data', 'fsdp')

# Logical axis -> mesh axes. The batch is split over data and fsdp; parameters are split over
# fsdp along their model width and over tensor along heads / MLP / vocabulary / projection.
RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ('batch', BATCH_AXES),
    ('embed', 'fsdp'),
    ('mlp', 'tensor'),
    ('heads', 'tensor'),
    ('kv', None),
    ('vocab', 'tensor'),
    ('proj', 'tensor'),
    ('layers', None),
)


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices: list | None = None) -> Mesh:
  """A (data, fsdp, tensor) mesh over `devices` (default: all); one size may be -1 (the rest)."""
  devices = list(jax.devices() if devices is None else devices)
  shape = {'data': data, 'fsdp': fsdp, 'tensor': tensor}
  free = [axis for axis, size in shape.items() if size == -1]
  if len(free) > 1 or any(size == 0 or size < -1 for size in shape.values()):
    raise ValueError(
        f'Mesh sizes {shape} are invalid: each must be a positive integer, and '
        'at most one may be -1 (all remaining devices).'
    )
  fixed = math.prod(size for size in shape.values() if size != -1)
  if free:
    if len(devices) % fixed:
      raise ValueError(
          f'Mesh sizes {shape}: {len(devices)} devices are not divisible by '
          f'{fixed}, so -1 for {free[0]!r} has no integer value.'
      )
    shape[free[0]] = len(devices) // fixed
  if math.prod(shape.values()) != len(devices):
    raise ValueError(
        f'Mesh sizes {shape} need {math.prod(shape.values())} devices, but '
        f'{len(devices)} are available.'
    )
  # Auto axes: XLA's partitioner propagates shardings from the annotated inputs and parameters.
  return jax.make_mesh(
      tuple(shape.values()), MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices
  )


def spec_for(names: tuple[str | None, ...], shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
  """The PartitionSpec of an array with these logical axis names, by RULES.

  A dimension that its mesh axes do not divide evenly (6 heads over 4 tensor shards, say) is
  replicated instead, so that any zoo model runs on any mesh.
  """
  rules = dict(RULES)
  spec = []
  for name, size in zip(names, shape):
    axes = rules.get(name) if name is not None else None
    if name is not None and name not in rules:
      raise ValueError(f'Logical axis {name!r} has no rule; known: {sorted(rules)}.')
    axes = (axes,) if isinstance(axes, str) else axes
    if axes and size % math.prod(mesh.shape[a] for a in axes) == 0:
      spec.append(axes[0] if len(axes) == 1 else axes)
    else:
      spec.append(None)
  return PartitionSpec(*spec)


def state_shardings(state: nnx.State, mesh: Mesh) -> nnx.State:
  """NamedShardings for a model's (possibly abstract) state, from each variable's axis names."""

  def sharding(variable):
    names = variable.get_metadata().get('out_sharding') or (None,) * variable.get_value().ndim
    return NamedSharding(mesh, spec_for(tuple(names), variable.get_value().shape, mesh))

  return jax.tree.map(sharding, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def create_sharded(make_model, mesh: Mesh):
  """Builds `make_model()` directly in its sharded layout: each device initialises only its
  own shards, so no full copy of the parameters ever sits on one device."""
  graphdef, abstract_state = nnx.split(nnx.eval_shape(make_model))
  shardings = state_shardings(abstract_state, mesh)

  with jax.set_mesh(mesh):
    state = jax.jit(lambda: nnx.state(make_model()), out_shardings=shardings)()
  return nnx.merge(graphdef, state)


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Leading (batch) axis split over data and fsdp, the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))
