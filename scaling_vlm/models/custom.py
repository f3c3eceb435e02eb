"""Models defined by their numbers: a JSON file, or JSON text, in our schema or open_clip's.

Our schema names `ModelConfig`'s fields, and those of its towers (`VisionConfig`, `TextConfig`,
`SSMConfig`); a field with a default may be left out, `arch` too (CLIP):

    {"name": "tiny-bpe", "arch": "clip", "embed_dim": 64,
     "vision": {"width": 64, "layers": 2, "heads": 4, "patch_size": 8, "image_size": 64},
     "text": {"width": 64, "layers": 2, "heads": 4, "context_length": 77, "vocab_size": 49408}}

open_clip's model configs (`open_clip/model_configs/*.json`, and the MaMMUT fork's) read as they
are: {"embed_dim", "vision_cfg": {"image_size", "layers", "width", "patch_size", "head_width"},
"text_cfg": {"context_length", "vocab_size", "width", "heads", "layers"}}; a text_cfg with
`cross_attn_ratio` or `does_full_decoding` is the fork's MaMMUT. A key that would build another
architecture than ours (quick_gelu, another pooling, a text LayerScale, ...) is refused, not
ignored. Either schema becomes a `ModelConfig`, so a custom model passes the checks every zoo
entry passes. Numerics (dtype, attention kernel, layer scan, remat, init) are no part of a
model's numbers: a run's `model.*` keys set them.
"""

from __future__ import annotations

import dataclasses
import json
import os

from scaling_vlm.models.config import ModelConfig, SSMConfig, TextConfig, VisionConfig

# ModelConfig fields that a run's config sets, not the model's numbers.
NUMERICS = ('name', 'dtype', 'attention_impl', 'scan_layers', 'remat', 'init')
GROUPS = {
    'vision': VisionConfig,
    'text': TextConfig,
    'vision_ssm': SSMConfig,
    'text_ssm': SSMConfig,
}

# open_clip's keys -> our field; None: read, but it changes nothing we build.
_OPEN_CLIP_TOP = {
    'embed_dim': 'embed_dim',
    'init_logit_scale': 'init_logit_scale',
    'init_logit_bias': 'init_logit_bias',
    'vision_cfg': None,
    'text_cfg': None,
    'quick_gelu': None,
    'custom_text': None,
    'arch': None,
    'name': None,
    'multimodal_cfg': None,  # refused, with a pointer to what to write instead
}
_OPEN_CLIP_VISION = {
    'image_size': 'image_size',
    'layers': 'layers',
    'width': 'width',
    'patch_size': 'patch_size',
    'mlp_ratio': 'mlp_ratio',
    'ls_init_value': 'layer_scale_init',
    'head_width': None,
    'output_tokens': None,
    'pool_type': None,
    'final_ln_after_pool': None,
}
_OPEN_CLIP_TEXT = {
    'context_length': 'context_length',
    'vocab_size': 'vocab_size',
    'width': 'width',
    'heads': 'heads',
    'layers': 'layers',
    'mlp_ratio': 'mlp_ratio',
    'ls_init_value': None,
    'output_tokens': None,
    'cross_attn_ratio': None,
    'does_full_decoding': None,
    'has_mlp': None,
}
# How open_clip spells the pooling each family does (and whether ln_post follows the pool).
_POOL_TYPE = {'clip': 'tok', 'mammut': 'avg_all'}


def load(path: str) -> ModelConfig:
  """The model a JSON file defines, named by its "name" key or else by the file's stem."""
  where = f'model file {path!r}'
  if not os.path.isfile(path):
    raise ValueError(f'{where} does not exist.')
  with open(path) as file:
    text = file.read()
  stem = os.path.splitext(os.path.basename(path))[0]
  return from_json(text, stem, where, name_from_file=True)


def from_json(text: str, name: str, where: str = 'model.custom', name_from_file=False):
  """The model JSON `text` defines, named `name` (or by its own "name" key when
  `name_from_file`); `where` starts every error."""
  try:
    data = json.loads(text)
  except json.JSONDecodeError as error:
    raise ValueError(f'{where} is not valid JSON ({error}).') from None
  if not isinstance(data, dict):
    raise ValueError(f'{where} must hold a JSON object, not {type(data).__name__}.')
  if name_from_file and 'name' in data:
    name = _typed(where, 'name', data['name'], 'str')
  if not name:
    raise ValueError(f'{where}: the model needs a name.')
  if 'vision_cfg' in data or 'text_cfg' in data or 'multimodal_cfg' in data:
    return _open_clip(data, name, where)
  return _ours(data, name, where)


def to_json(config: ModelConfig) -> str:
  """Its numbers in our schema, one canonical line (the same model gives the same text)."""
  data = dataclasses.asdict(config)
  for key in NUMERICS:
    data.pop(key)
  return json.dumps(data, sort_keys=True, separators=(',', ':'))


def _ours(data: dict, name: str, where: str) -> ModelConfig:
  fields = {f.name: f for f in dataclasses.fields(ModelConfig) if f.name not in NUMERICS}
  values = {'arch': 'clip'}
  for key, value in data.items():
    if key == 'name':
      continue
    if key not in fields:
      raise _unknown(where, key, sorted(fields))
    if key in GROUPS:
      values[key] = _group(where, key, value, GROUPS[key])
    else:
      values[key] = _typed(where, key, value, fields[key].type)
  _require(where, values, ('embed_dim', 'vision', 'text'), '')
  try:  # the checks every zoo entry passes
    return ModelConfig(name=name, **values)
  except ValueError as error:
    raise ValueError(f'{where}: {error}') from None


def _group(where: str, key: str, value, cls):
  if not isinstance(value, dict):
    raise ValueError(f'{where}: {key} must be a JSON object of {cls.__name__} fields.')
  fields = {f.name: f for f in dataclasses.fields(cls)}
  values = {}
  for field, item in value.items():
    if field not in fields:
      raise _unknown(where, f'{key}.{field}', [f'{key}.{f}' for f in fields])
    values[field] = _typed(where, f'{key}.{field}', item, fields[field].type)
  required = [f.name for f in fields.values() if f.default is dataclasses.MISSING]
  _require(where, values, required, f'{key}.')
  try:
    return cls(**values)
  except ValueError as error:
    raise ValueError(f'{where}: {error}') from None


def _open_clip(data: dict, name: str, where: str) -> ModelConfig:
  _known(where, data, _OPEN_CLIP_TOP, '')
  if 'multimodal_cfg' in data:
    raise ValueError(
        f"{where}: multimodal_cfg (open_clip's CoCa) is not an architecture of ours; write "
        'the MaMMUT fork\'s text_cfg (cross_attn_ratio) or our schema with "arch": "mammut".'
    )
  _require(where, data, ('embed_dim', 'vision_cfg', 'text_cfg'), '')
  vision_cfg, text_cfg = data['vision_cfg'], data['text_cfg']
  for key, section in (('vision_cfg', vision_cfg), ('text_cfg', text_cfg)):
    if not isinstance(section, dict):
      raise ValueError(f'{where}: {key} must be a JSON object.')
  _known(where, vision_cfg, _OPEN_CLIP_VISION, 'vision_cfg.')
  _known(where, text_cfg, _OPEN_CLIP_TEXT, 'text_cfg.')
  mammut = 'cross_attn_ratio' in text_cfg or 'does_full_decoding' in text_cfg
  arch = _typed(where, 'arch', data.get('arch', 'mammut' if mammut else 'clip'), 'str')
  # What open_clip can build and we do not: refused, so that no run trains another model
  # than its file describes.
  _fixed(where, 'quick_gelu', data.get('quick_gelu'), (None, False))
  _fixed(where, 'text_cfg.ls_init_value', text_cfg.get('ls_init_value'), (None,))
  _fixed(where, 'text_cfg.does_full_decoding', text_cfg.get('does_full_decoding'), (None, True))
  if arch in _POOL_TYPE:
    pool = vision_cfg.get('pool_type')
    _fixed(where, 'vision_cfg.pool_type', pool, (None, _POOL_TYPE[arch]), f' for arch {arch!r}')
    ln_after = vision_cfg.get('final_ln_after_pool')
    _fixed(where, 'vision_cfg.final_ln_after_pool', ln_after, (None, arch == 'mammut'))

  if isinstance(vision_cfg.get('layers'), list):
    raise ValueError(
        f"{where}: vision_cfg.layers is a list: open_clip's ResNet tower, which we do not have."
    )
  vision = _mapped(vision_cfg, _OPEN_CLIP_VISION)
  _require(where, vision, ('image_size', 'layers', 'width', 'patch_size'), 'vision_cfg.')
  width = _typed(where, 'vision_cfg.width', vision['width'], 'int')
  head_width = _typed(where, 'vision_cfg.head_width', vision_cfg.get('head_width', 64), 'int')
  if head_width < 1 or width % head_width:
    raise ValueError(
        f'{where}: vision_cfg.width {width} is not a multiple of vision_cfg.head_width '
        f'{head_width} (open_clip\'s default 64); set head_width to a divisor of the width.'
    )
  model = {'arch': arch, **_mapped(data, _OPEN_CLIP_TOP)}
  model['vision'] = {**vision, 'heads': width // head_width}
  model['text'] = _mapped(text_cfg, _OPEN_CLIP_TEXT)
  if 'cross_attn_ratio' in text_cfg:
    model['cross_attn_ratio'] = text_cfg['cross_attn_ratio']
  if 'has_mlp' in text_cfg:
    model['mlp_before_cross_attn'] = text_cfg['has_mlp']
  return _ours(model, name, where)


def _mapped(section: dict, table: dict) -> dict:
  return {table[key]: value for key, value in section.items() if table.get(key)}


def _known(where: str, section: dict, table: dict, prefix: str) -> None:
  for key in section:
    if key not in table:
      raise _unknown(where, f'{prefix}{key}', [f'{prefix}{k}' for k in table])


def _fixed(where: str, key: str, value, allowed: tuple, why: str = '') -> None:
  # By type too: JSON's 1 is no `true`.
  if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
    shown = ' or '.join(json.dumps(a) for a in allowed if a is not None)
    raise ValueError(
        f'{where}: {key}={json.dumps(value)} builds a model we do not have; it must be '
        f'{shown}{why} (or left out).'
    )


def _require(where: str, values: dict, keys, prefix: str) -> None:
  missing = [f'{prefix}{key}' for key in keys if key not in values]
  if missing:
    raise ValueError(f'{where}: needs {", ".join(missing)}.')


def _unknown(where: str, key: str, allowed) -> ValueError:
  return ValueError(f'{where}: unknown key {key!r}; allowed: {", ".join(allowed)}.')


def _typed(where: str, key: str, value, kind: str):
  """`value` as a field of type `kind` (as dataclasses spell it) holds it: JSON's numbers,
  strings, booleans, null and lists, checked, never converted from text."""
  optional = kind.endswith(' | None')
  base = kind.removesuffix(' | None')
  if value is None and optional:
    return None
  number = isinstance(value, (int, float)) and not isinstance(value, bool)
  if base == 'int' and number and float(value).is_integer():
    return int(value)
  if base == 'float' and number:
    return float(value)
  if base == 'bool' and isinstance(value, bool):
    return value
  if base == 'str' and isinstance(value, str):
    return value
  strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
  if base == 'tuple[str, ...]' and strings:
    return tuple(value)
  wanted = {'int': 'a whole number', 'float': 'a number', 'bool': 'true or false'}
  wanted['str'] = 'a string'
  expected = wanted.get(base, 'a list of strings') + (' or null' if optional else '')
  raise ValueError(f'{where}: {key}={json.dumps(value)} must be {expected}.')

