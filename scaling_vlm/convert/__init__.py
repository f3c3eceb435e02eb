"""The bridge to open_clip: its checkpoints in, ours out.

    model = from_open_clip('open_clip_model.safetensors', 'ViT-B-32')   # any CLIP / MaMMUT name
    to_open_clip(model, 'model.safetensors')        # loads in open_clip / the MaMMUT fork

`python -m scaling_vlm.convert import|export` does the same with workdirs (see __main__).
The tensor mapping is `layout`; file formats are `files`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling_vlm import models
from scaling_vlm.convert import files, layout
from scaling_vlm.models.config import ModelConfig

# Tensors only a MaMMUT (fork) file has, and only a CLIP (open_clip) file has.
_MAMMUT_MARK, _CLIP_MARK = 'map_viz2txt_kv', 'transformer.resblocks.0.attn.in_proj_weight'


def _listed(keys: list[str]) -> str:
  return ', '.join(keys[:3]) + (f' and {len(keys) - 3} more' if len(keys) > 3 else '')


def check_keys(tensors: dict[str, np.ndarray], config: ModelConfig, where: str) -> None:
  """The file holds exactly the tensors of `config`'s open_clip model, else one clear error."""
  if config.arch == 'clip' and _MAMMUT_MARK in tensors:
    raise ValueError(
        f'{where} is a MaMMUT checkpoint (it has {_MAMMUT_MARK}), not one of the CLIP model '
        f'{config.name}; give a mammut_* name.'
    )
  if config.arch == 'mammut' and _CLIP_MARK in tensors:
    raise ValueError(
        f'{where} is a CLIP checkpoint (it has a text transformer), not one of the MaMMUT model '
        f'{config.name}; give a CLIP name.'
    )
  expected = {rule.theirs for rule in layout.rules(config)}
  missing, unknown = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
  if missing or unknown:
    parts = [f'{len(missing)} missing ({_listed(missing)})'] if missing else []
    parts += [f'{len(unknown)} unexpected ({_listed(unknown)})'] if unknown else []
    raise ValueError(
        f'{where} does not hold the tensors of {config.name}: {"; ".join(parts)}. Is it a '
        'checkpoint of another model?'
    )


def ours_from_theirs(
    tensors: dict[str, np.ndarray], config: ModelConfig, where: str
) -> dict[str, np.ndarray]:
  """Our flat parameters from an open_clip state dict, every shape checked against the zoo's.
  Consumes `tensors`: each is dropped once converted, so a large model is held about once."""
  check_keys(tensors, config, where)
  shapes = {name: s.shape for name, s in flat_params(models.abstract(config)).items()}
  out = {}
  for rule in layout.rules(config):
    given = tensors.pop(rule.theirs)
    try:
      converted = rule.to_ours(given)
    except ValueError:  # a reshape that cannot be: the shape is wrong
      converted = None
    if converted is None or any(a.shape != shapes[n] for n, a in zip(rule.ours, converted)):
      expected = rule.to_theirs(*(np.empty(shapes[n], np.float32) for n in rule.ours)).shape
      raise ValueError(
          f'{where}: {rule.theirs} is {tuple(given.shape)}, but {config.name} needs '
          f'{tuple(expected)}; is it a checkpoint of another model?'
      )
    for name, array in zip(rule.ours, converted):
      out[name] = np.asarray(array, dtype=np.float32, order='C')
  return out


def flatten(tree: dict, prefix: str = '') -> dict:
  """A nested pure dict -> dotted paths (`visual.blocks.layers.0.attn.qkv.kernel`)."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flatten(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def flat_params(model) -> dict[str, np.ndarray]:
  """A model's parameters as dotted paths in the unscanned layout (`...layers.0.attn...`)."""
  pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  return flatten(unstack_layers(pure) if model.config.scan_layers else pure)


def unstack_layers(tree):
  """A scanned tree ('layers' holding arrays with a leading layer axis) -> one entry per layer."""
  if not isinstance(tree, dict):
    return tree
  out = {}
  for key, value in tree.items():
    if key == 'layers' and isinstance(value, dict) and not all(isinstance(k, int) for k in value):
      count = jax.tree.leaves(value)[0].shape[0]
      value = {i: jax.tree.map(lambda a, i=i: _layer(a, i), value) for i in range(count)}
    out[key] = unstack_layers(value)
  return out


def _layer(array, i: int):
  """Layer `i` of a stacked array, or of its shape alone (abstract models)."""
  if isinstance(array, jax.ShapeDtypeStruct):
    return jax.ShapeDtypeStruct(array.shape[1:], array.dtype)
  return array[i]


def _stack_layers(tree):
  """One entry per layer -> the scanned layout (the inverse of `unstack_layers`)."""
  if not isinstance(tree, dict):
    return tree
  if tree and all(isinstance(k, int) for k in tree):
    return jax.tree.map(lambda *a: np.stack(a), *(tree[i] for i in sorted(tree)))
  return {k: _stack_layers(v) for k, v in tree.items()}


def nested(flat: dict[str, np.ndarray], scanned: bool) -> dict:
  """Dotted paths -> the nested pure dict nnx reads (list indices as ints), stacked per layer
  when the model scans its layers."""
  tree: dict = {}
  for path, array in flat.items():
    *parents, leaf = [int(p) if p.isdigit() else p for p in path.split('.')]
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = array
  return _stack_layers(tree) if scanned else tree


def with_params(config: ModelConfig, flat: dict[str, np.ndarray]):
  """The model `config` describes, holding `flat` (our dotted paths) as its parameters."""
  graphdef, state = nnx.split(models.abstract(config))
  tree = nested(flat, config.scan_layers)
  nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, tree))
  return nnx.merge(graphdef, state)


def from_open_clip(path: str, name: str | ModelConfig):
  """A built model of ours (zoo `name`) holding the weights of an open_clip checkpoint."""
  config = models.get_config(name) if isinstance(name, str) else name
  config = config.replace(scan_layers=False)
  state = files.read(path)
  return with_params(config, ours_from_theirs(state.tensors, config, path))


def to_open_clip(model, path: str) -> dict[str, np.ndarray]:
  """Writes `model`'s weights as the open_clip (CLIP) or fork (MaMMUT) state dict of its
  name, to a `.safetensors` file; returns the tensors."""
  tensors = layout.to_theirs(
      {k: np.asarray(v) for k, v in flat_params(model).items()}, model.config
  )
  files.write_safetensors(tensors, path)
  return tensors
