"""The evaluation mesh: `--mesh` sizes over this process's devices.

Evaluation is one process (on a pod slice, one host's chips). By default parameters are
replicated and batches split over every device (`data=-1`); `fsdp=N` splits parameters over N
devices as training does (`sharding.RULES`), for models too big for one; `run` takes the sizes
the run was trained with (its config's `mesh`).
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh

from scaling_vlm import sharding

DEFAULT = 'data=-1'


def parse(text: str, run_sizes: dict[str, int] | None = None) -> dict[str, int]:
  """'fsdp=8' or 'data=2,fsdp=4' (or 'run': `run_sizes`) -> mesh sizes. Axes not named are 1,
  except data, which takes the remaining devices unless another axis does."""
  if text.strip() == 'run':
    if run_sizes is None:
      raise ValueError("--mesh run needs the run's config, which has no mesh sizes")
    return {axis: int(run_sizes.get(axis, 1)) for axis in sharding.MESH_AXES}
  sizes = {}
  for item in filter(None, (part.strip() for part in text.split(','))):
    axis, _, size = item.partition('=')
    if axis not in sharding.MESH_AXES or not size.lstrip('-').isdigit():
      raise ValueError(
          f'--mesh {text!r}: {item!r} is not AXIS=SIZE with AXIS one of {list(sharding.MESH_AXES)}'
          " (or write 'run' for the run's own mesh)"
      )
    sizes[axis] = int(size)
  free = -1 if -1 not in sizes.values() else 1
  return {axis: sizes.get(axis, free if axis == 'data' else 1) for axis in sharding.MESH_AXES}


def make(sizes: dict[str, int]) -> Mesh:
  """The (data, fsdp, tensor) mesh of these sizes over this process's devices."""
  return sharding.make_mesh(**sizes, devices=jax.local_devices())
